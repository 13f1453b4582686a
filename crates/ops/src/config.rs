//! `[ops]` in the config, checked once: how often alerts are evaluated, the on-call
//! rotation and its people, the notification channels, maintenance windows, when chat
//! reports go out, and threshold overrides. Errors name the field (`ops.notify[1].url`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::alerts::Maintenance;
use crate::alerts::conditions::Thresholds;
use crate::duration;
use crate::lifecycle::Priority;
use crate::oncall::{Person, Rotation};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OpsSpec {
    pub evaluate_every: Option<String>,
    /// Where runbook links point (docs/operations.md of this version by default).
    pub runbook_base: Option<String>,
    #[serde(default)]
    pub person: Vec<PersonSpec>,
    pub oncall: Option<RotationSpec>,
    #[serde(default)]
    pub notify: Vec<ChannelSpec>,
    #[serde(default)]
    pub maintenance: Vec<MaintenanceSpec>,
    pub reports: Option<ReportsSpec>,
    pub thresholds: Option<ThresholdSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonSpec {
    pub name: String,
    pub email: Option<String>,
    /// A Slack member id, mentioned in Slack messages.
    pub slack: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationSpec {
    /// First line in turn: each shift the next person is L1 and the one after L2.
    pub people: Vec<String>,
    /// L3.
    #[serde(default)]
    pub managers: Vec<String>,
    /// When the first shift began (RFC 3339).
    pub start: String,
    pub shift: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub name: Option<String>,
    pub kind: String,
    pub url: Option<String>,
    pub routing_key: Option<String>,
    pub secret: Option<String>,
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    /// Only alerts at least this urgent (default P4: all).
    pub min_priority: Option<String>,
    /// Chat reports this channel gets (`daily`, `weekly`, `monthly`).
    #[serde(default)]
    pub reports: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSpec {
    pub name: String,
    pub days: Vec<String>,
    /// `HH:MM` UTC.
    pub start: String,
    pub duration: String,
    #[serde(default)]
    pub matchers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsSpec {
    /// `HH:MM` UTC.
    pub daily: Option<String>,
    /// `mon HH:MM` UTC.
    pub weekly: Option<String>,
    /// The monthly report on the 1st at 00:00 UTC, for the month before.
    pub monthly: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSpec {
    pub disk_free_min: Option<f64>,
    pub oldest_message: Option<String>,
    pub deferral_share: Option<f64>,
    pub deferral_min_attempts: Option<u64>,
    pub webhook_failing: Option<String>,
    pub bounce_rate: Option<f64>,
    pub complaint_rate: Option<f64>,
    pub tls_warn: Option<String>,
    pub disk_full_within: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelKind {
    Slack {
        url: String,
    },
    PagerDuty {
        url: String,
        routing_key: String,
    },
    Webhook {
        url: String,
        secret: String,
    },
    /// `to`: addresses, or `oncall` for the person at the alert's level.
    Mail {
        from: String,
        to: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    pub min_priority: Priority,
    pub reports: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportTimes {
    /// Minutes past midnight UTC.
    pub daily: Option<u32>,
    /// (weekday 0 = Monday, minutes past midnight).
    pub weekly: Option<(u8, u32)>,
    pub monthly: bool,
}

#[derive(Debug, Clone)]
pub struct OpsConfig {
    pub evaluate_every: Duration,
    pub runbook_base: String,
    pub people: Vec<Person>,
    pub rotation: Option<Rotation>,
    pub channels: Vec<Channel>,
    pub maintenance: Vec<Maintenance>,
    pub reports: ReportTimes,
    pub thresholds: Thresholds,
}

impl Default for OpsConfig {
    fn default() -> OpsConfig {
        read(&OpsSpec::default()).unwrap_or_else(|_| unreachable!("the defaults are valid"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ops.{field}: {message}")]
pub struct OpsError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> OpsError {
    OpsError {
        field: field.into(),
        message: message.into(),
    }
}

pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// The runbooks as shipped beside the binary; `runbook_base` points links at a copy your
/// team can open (a wiki, the docs site).
pub const DEFAULT_RUNBOOK_BASE: &str =
    "https://github.com/tsubame-mail/tsubame/blob/main/docs/operations.md";

fn parse_duration(field: &str, text: &str) -> Result<Duration, OpsError> {
    duration::parse(text).ok_or_else(|| err(field, format!("{text:?} is not a duration")))
}

/// `HH:MM` as minutes past midnight.
fn parse_clock(field: &str, text: &str) -> Result<u32, OpsError> {
    let bad = || err(field, format!("{text:?} is not HH:MM"));
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn parse_day(field: &str, text: &str) -> Result<u8, OpsError> {
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let lower = text.trim().to_ascii_lowercase();
    days.iter()
        .position(|d| lower.starts_with(d))
        .map(|i| i as u8)
        .ok_or_else(|| err(field, format!("{text:?} is not a weekday (mon … sun)")))
}

fn check_url(field: &str, url: Option<&str>) -> Result<String, OpsError> {
    let url = url.ok_or_else(|| err(field, "is required for this kind"))?;
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "https" || u.scheme() == "http" => Ok(url.to_string()),
        _ => Err(err(field, format!("{url:?} is not an http(s) URL"))),
    }
}

pub fn read(spec: &OpsSpec) -> Result<OpsConfig, OpsError> {
    let evaluate_every = match &spec.evaluate_every {
        Some(t) => parse_duration("evaluate_every", t)?,
        None => Duration::from_secs(15),
    };
    if evaluate_every < Duration::from_millis(200) || evaluate_every > Duration::from_secs(300) {
        return Err(err("evaluate_every", "must be between 200ms and 5m"));
    }
    let mut people = Vec::new();
    for (i, p) in spec.person.iter().enumerate() {
        if p.name.trim().is_empty() || people.iter().any(|q: &Person| q.name == p.name) {
            return Err(err(format!("person[{i}].name"), "must be set and unique"));
        }
        if let Some(e) = &p.email
            && !e.contains('@')
        {
            return Err(err(
                format!("person[{i}].email"),
                format!("{e:?} is not an address"),
            ));
        }
        people.push(Person {
            name: p.name.clone(),
            email: p.email.clone(),
            slack: p.slack.clone(),
        });
    }
    let known = |field: String, name: &str| {
        if people.iter().any(|p| p.name == name) {
            Ok(())
        } else {
            Err(err(field, format!("{name:?} is not an [[ops.person]]")))
        }
    };
    let rotation = match &spec.oncall {
        None => None,
        Some(r) => {
            if r.people.is_empty() {
                return Err(err("oncall.people", "names at least one person"));
            }
            for (i, n) in r.people.iter().enumerate() {
                known(format!("oncall.people[{i}]"), n)?;
            }
            for (i, n) in r.managers.iter().enumerate() {
                known(format!("oncall.managers[{i}]"), n)?;
            }
            let start: jiff::Timestamp = r.start.parse().map_err(|_| {
                err(
                    "oncall.start",
                    format!("{:?} is not an RFC 3339 time", r.start),
                )
            })?;
            let shift = match &r.shift {
                Some(t) => parse_duration("oncall.shift", t)?,
                None => Duration::from_secs(7 * 86_400),
            };
            Some(Rotation {
                people: r.people.clone(),
                managers: r.managers.clone(),
                start_ms: start.as_millisecond(),
                shift,
            })
        }
    };
    let mut channels = Vec::new();
    for (i, c) in spec.notify.iter().enumerate() {
        let f = |name: &str| format!("notify[{i}].{name}");
        let kind = match c.kind.as_str() {
            "slack" => ChannelKind::Slack {
                url: check_url(&f("url"), c.url.as_deref())?,
            },
            "pagerduty" => {
                let key = c
                    .routing_key
                    .clone()
                    .ok_or_else(|| err(f("routing_key"), "is required for pagerduty"))?;
                if key.len() != 32 || !key.chars().all(|ch| ch.is_ascii_alphanumeric()) {
                    return Err(err(
                        f("routing_key"),
                        "must be the 32-character integration key",
                    ));
                }
                ChannelKind::PagerDuty {
                    url: check_url(
                        &f("url"),
                        Some(c.url.as_deref().unwrap_or(PAGERDUTY_EVENTS_URL)),
                    )?,
                    routing_key: key,
                }
            }
            "webhook" => {
                let secret = c.secret.clone().unwrap_or_default();
                if secret.len() < 16 {
                    return Err(err(f("secret"), "must be at least 16 characters"));
                }
                ChannelKind::Webhook {
                    url: check_url(&f("url"), c.url.as_deref())?,
                    secret,
                }
            }
            "mail" => {
                let from = c.from.clone().unwrap_or_default();
                if !from.contains('@') {
                    return Err(err(f("from"), "must be an address"));
                }
                if c.to.is_empty() {
                    return Err(err(f("to"), "names addresses or \"oncall\""));
                }
                for (j, t) in c.to.iter().enumerate() {
                    if t != "oncall" && !t.contains('@') {
                        return Err(err(
                            format!("notify[{i}].to[{j}]"),
                            format!("{t:?} is not an address or \"oncall\""),
                        ));
                    }
                }
                if c.to.iter().any(|t| t == "oncall") && rotation.is_none() {
                    return Err(err(f("to"), "\"oncall\" needs [ops.oncall]"));
                }
                ChannelKind::Mail {
                    from,
                    to: c.to.clone(),
                }
            }
            other => {
                return Err(err(
                    f("kind"),
                    format!("{other:?} is not slack, pagerduty, webhook or mail"),
                ));
            }
        };
        let min_priority = match c.min_priority.as_deref() {
            None => Priority::P4,
            Some(p) => Priority::parse(p).ok_or_else(|| err(f("min_priority"), "is P1 … P4"))?,
        };
        for (j, r) in c.reports.iter().enumerate() {
            if !["daily", "weekly", "monthly"].contains(&r.as_str()) {
                return Err(err(
                    format!("notify[{i}].reports[{j}]"),
                    "is daily, weekly or monthly",
                ));
            }
        }
        channels.push(Channel {
            name: c.name.clone().unwrap_or_else(|| format!("{}-{i}", c.kind)),
            kind,
            min_priority,
            reports: c.reports.clone(),
        });
    }
    let mut maintenance = Vec::new();
    for (i, m) in spec.maintenance.iter().enumerate() {
        let f = |name: &str| format!("maintenance[{i}].{name}");
        let mut days = Vec::new();
        for (j, d) in m.days.iter().enumerate() {
            days.push(parse_day(&format!("maintenance[{i}].days[{j}]"), d)?);
        }
        maintenance.push(Maintenance {
            name: m.name.clone(),
            matchers: m.matchers.clone(),
            days,
            start_minute: parse_clock(&f("start"), &m.start)?,
            length: parse_duration(&f("duration"), &m.duration)?,
        });
    }
    let mut reports = ReportTimes::default();
    if let Some(r) = &spec.reports {
        if let Some(d) = &r.daily {
            reports.daily = Some(parse_clock("reports.daily", d)?);
        }
        if let Some(w) = &r.weekly {
            let (day, time) = w
                .trim()
                .split_once(' ')
                .ok_or_else(|| err("reports.weekly", "is \"mon 08:00\""))?;
            reports.weekly = Some((
                parse_day("reports.weekly", day)?,
                parse_clock("reports.weekly", time)?,
            ));
        }
        reports.monthly = r.monthly.unwrap_or(false);
    }
    let mut thresholds = Thresholds::default();
    if let Some(t) = &spec.thresholds {
        let share = |field: &str, v: Option<f64>, into: &mut f64| -> Result<(), OpsError> {
            if let Some(v) = v {
                if !(v > 0.0 && v < 1.0) {
                    return Err(err(
                        format!("thresholds.{field}"),
                        "is a share between 0 and 1",
                    ));
                }
                *into = v;
            }
            Ok(())
        };
        share(
            "disk_free_min",
            t.disk_free_min,
            &mut thresholds.disk_free_min,
        )?;
        share(
            "deferral_share",
            t.deferral_share,
            &mut thresholds.deferral_share,
        )?;
        share("bounce_rate", t.bounce_rate, &mut thresholds.bounce_rate)?;
        share(
            "complaint_rate",
            t.complaint_rate,
            &mut thresholds.complaint_rate,
        )?;
        if let Some(n) = t.deferral_min_attempts {
            thresholds.deferral_min_attempts = n.max(1);
        }
        if let Some(d) = &t.oldest_message {
            thresholds.oldest_message = parse_duration("thresholds.oldest_message", d)?;
        }
        if let Some(d) = &t.webhook_failing {
            thresholds.webhook_failing = parse_duration("thresholds.webhook_failing", d)?;
        }
        if let Some(d) = &t.tls_warn {
            thresholds.tls_warn = parse_duration("thresholds.tls_warn", d)?;
        }
        if let Some(d) = &t.disk_full_within {
            thresholds.disk_full_within = parse_duration("thresholds.disk_full_within", d)?;
        }
    }
    Ok(OpsConfig {
        evaluate_every,
        runbook_base: spec
            .runbook_base
            .clone()
            .unwrap_or_else(|| DEFAULT_RUNBOOK_BASE.to_string()),
        people,
        rotation,
        channels,
        maintenance,
        reports,
        thresholds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<OpsConfig, OpsError> {
        read(&toml_spec(text))
    }

    fn toml_spec(text: &str) -> OpsSpec {
        serde_json::from_value(serde_json::from_str(text).unwrap()).unwrap()
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(r#"{"notify":[{"kind":"slack"}]}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ops.notify[0].url: is required for this kind"
        );
        let e = parse(r#"{"notify":[{"kind":"pagerduty","routing_key":"short"}]}"#).unwrap_err();
        assert_eq!(e.field, "notify[0].routing_key");
        let e =
            parse(r#"{"oncall":{"people":["ann"],"start":"2026-11-30T09:00:00Z"}}"#).unwrap_err();
        assert_eq!(e.field, "oncall.people[0]");
        let e = parse(r#"{"notify":[{"kind":"mail","from":"a@b","to":["oncall"]}]}"#).unwrap_err();
        assert_eq!(e.field, "notify[0].to");
        let e = parse(r#"{"reports":{"weekly":"someday 08:00"}}"#).unwrap_err();
        assert_eq!(e.field, "reports.weekly");
        let ok = parse(
            r#"{"person":[{"name":"ann","email":"ann@ops.example"},{"name":"bob"}],
                "oncall":{"people":["ann","bob"],"start":"2026-11-30T09:00:00Z","shift":"7d"},
                "notify":[{"kind":"mail","from":"alerts@ops.example","to":["oncall"],"min_priority":"P2"}],
                "maintenance":[{"name":"patch","days":["sun"],"start":"02:00","duration":"2h"}],
                "reports":{"daily":"08:00","weekly":"mon 08:30","monthly":true}}"#,
        )
        .unwrap();
        assert_eq!(ok.channels[0].min_priority, Priority::P2);
        assert_eq!(ok.reports.weekly, Some((0, 8 * 60 + 30)));
        assert_eq!(ok.maintenance[0].days, [6]);
    }
}
