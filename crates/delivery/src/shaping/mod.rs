//! Traffic shaping: how hard each site may be pushed, and how provider replies change that.
//!
//! Limits come from `shaping.toml` (the shipped file documents the defaults for the major
//! providers; an operator's file overlays it, provider by provider). A site gets the limits of
//! the provider whose MX suffix matches its hosts, else the defaults. Response rules match a
//! reply (code prefix and a regular expression on its text) and suspend or throttle the site.

pub mod bucket;

use std::collections::BTreeMap;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

pub use bucket::{Bucket, Rate};

/// The shipped defaults.
pub const SHIPPED: &str = include_str!("../../shaping.toml");

/// Limits for one site.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Open connections at once.
    pub connections_max: u32,
    /// New connections per second (a bucket).
    pub connection_rate: Option<Rate>,
    /// Messages per second across the site's connections.
    pub message_rate: Option<Rate>,
    /// Messages on one connection before it is closed and a fresh one opened.
    pub messages_per_connection: u32,
    /// An idle connection waits this long for more mail before QUIT.
    pub idle_timeout: Duration,
    /// Consecutive connection failures before the site backs off.
    pub connect_failures_max: u32,
    /// The first back-off; it doubles per further failure, capped at `backoff_max`.
    pub backoff: Duration,
    pub backoff_max: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections_max: 32,
            connection_rate: None,
            message_rate: None,
            messages_per_connection: 1000,
            idle_timeout: Duration::from_secs(5),
            connect_failures_max: 3,
            backoff: Duration::from_secs(30),
            backoff_max: Duration::from_secs(600),
        }
    }
}

/// What a response rule does to the site.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// No new messages or connections for the duration.
    Suspend(Duration),
    /// Cap the message rate for the duration.
    Throttle { rate: Rate, duration: Duration },
}

/// A rule on replies from a provider.
#[derive(Debug, Clone)]
pub struct ResponseRule {
    /// Matches the start of "CODE X.Y.Z text" (e.g. "421", "4.7.", "421 4.7.0").
    pub code_prefix: String,
    pub pattern: Regex,
    pub action: Action,
    /// Written by the operator: shown in logs and the queue view.
    pub name: String,
}

impl ResponseRule {
    /// True when the reply (as "CODE X.Y.Z text") matches.
    pub fn matches(&self, code: u16, enhanced: Option<(u8, u16, u16)>, text: &str) -> bool {
        let enhanced = enhanced.map(|(a, b, c)| format!("{a}.{b}.{c}"));
        let full = match &enhanced {
            Some(e) => format!("{code} {e}"),
            None => code.to_string(),
        };
        let prefix_ok = full.starts_with(&self.code_prefix)
            || enhanced.is_some_and(|e| e.starts_with(&self.code_prefix));
        prefix_ok && self.pattern.is_match(text)
    }
}

/// A mailbox provider: sites whose MX hosts end in one of its suffixes.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub mx_suffixes: Vec<String>,
    /// Open connections across all of this provider's sites together.
    pub connections_max_total: Option<u32>,
    pub limits: Limits,
    pub rules: Vec<ResponseRule>,
}

/// The whole shaping configuration, validated.
#[derive(Debug, Clone)]
pub struct Shaping {
    pub default: Limits,
    /// Rules for every site, checked after the provider's own.
    pub rules: Vec<ResponseRule>,
    pub providers: Vec<Provider>,
}

impl Default for Shaping {
    fn default() -> Self {
        Shaping::from_files(&[]).unwrap_or(Shaping {
            default: Limits::default(),
            rules: Vec::new(),
            providers: Vec::new(),
        })
    }
}

impl Shaping {
    /// The shipped file with each of `overlays` (file text) applied in order.
    pub fn from_files(overlays: &[&str]) -> Result<Shaping, String> {
        let mut merged: RawShaping =
            toml::from_str(SHIPPED).map_err(|e| format!("shipped shaping.toml: {e}"))?;
        for text in overlays {
            let overlay: RawShaping = toml::from_str(text).map_err(|e| e.to_string())?;
            merged.overlay(overlay);
        }
        merged.validate()
    }

    /// The provider whose suffix matches any of the site's hosts, and the limits to apply.
    pub fn for_hosts<'a>(
        &'a self,
        hosts: impl Iterator<Item = &'a str> + Clone,
    ) -> (Option<&'a Provider>, &'a Limits) {
        let provider = self.providers.iter().find(|p| {
            hosts.clone().any(|host| {
                p.mx_suffixes
                    .iter()
                    .any(|suffix| host.ends_with(suffix.as_str()) || host == &suffix[1..])
            })
        });
        match provider {
            Some(p) => (Some(p), &p.limits),
            None => (None, &self.default),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShaping {
    #[serde(default)]
    default: RawLimits,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    provider: BTreeMap<String, RawProvider>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    connections_max: Option<u32>,
    connection_rate: Option<String>,
    message_rate: Option<String>,
    messages_per_connection: Option<u32>,
    idle_timeout: Option<String>,
    connect_failures_max: Option<u32>,
    backoff: Option<String>,
    backoff_max: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    mx_suffixes: Option<Vec<String>>,
    provider_connections_max: Option<u32>,
    #[serde(flatten)]
    limits: RawLimits,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<String>,
    #[serde(default)]
    code: String,
    pattern: String,
    action: String,
    duration: String,
    message_rate: Option<String>,
}

impl RawLimits {
    fn overlay(&mut self, other: RawLimits) {
        macro_rules! take {
            ($($field:ident),*) => { $( if other.$field.is_some() { self.$field = other.$field; } )* };
        }
        take!(
            connections_max,
            connection_rate,
            message_rate,
            messages_per_connection,
            idle_timeout,
            connect_failures_max,
            backoff,
            backoff_max
        );
    }

    fn validate(&self, base: &Limits, at: &str) -> Result<Limits, String> {
        let duration = |v: &Option<String>, key: &str, fallback: Duration| match v {
            None => Ok(fallback),
            Some(text) => {
                humantime::parse_duration(text).map_err(|e| format!("{at}.{key}: {text:?}: {e}"))
            }
        };
        let rate = |v: &Option<String>, key: &str, fallback: Option<Rate>| match v.as_deref() {
            None => Ok(fallback),
            Some("unlimited") => Ok(None),
            Some(text) => Rate::parse(text)
                .map(Some)
                .map_err(|e| format!("{at}.{key}: {e}")),
        };
        let limits = Limits {
            connections_max: self.connections_max.unwrap_or(base.connections_max),
            connection_rate: rate(
                &self.connection_rate,
                "connection_rate",
                base.connection_rate,
            )?,
            message_rate: rate(&self.message_rate, "message_rate", base.message_rate)?,
            messages_per_connection: self
                .messages_per_connection
                .unwrap_or(base.messages_per_connection),
            idle_timeout: duration(&self.idle_timeout, "idle_timeout", base.idle_timeout)?,
            connect_failures_max: self
                .connect_failures_max
                .unwrap_or(base.connect_failures_max),
            backoff: duration(&self.backoff, "backoff", base.backoff)?,
            backoff_max: duration(&self.backoff_max, "backoff_max", base.backoff_max)?,
        };
        if limits.connections_max == 0 {
            return Err(format!("{at}.connections_max must be at least 1"));
        }
        if limits.messages_per_connection == 0 {
            return Err(format!("{at}.messages_per_connection must be at least 1"));
        }
        Ok(limits)
    }
}

impl RawRule {
    fn validate(&self, at: &str) -> Result<ResponseRule, String> {
        let pattern = Regex::new(&self.pattern).map_err(|e| format!("{at}.pattern: {e}"))?;
        let duration = humantime::parse_duration(&self.duration)
            .map_err(|e| format!("{at}.duration: {:?}: {e}", self.duration))?;
        let action = match (self.action.as_str(), &self.message_rate) {
            ("suspend", None) => Action::Suspend(duration),
            ("throttle", Some(rate)) => Action::Throttle {
                rate: Rate::parse(rate).map_err(|e| format!("{at}.message_rate: {e}"))?,
                duration,
            },
            ("throttle", None) => return Err(format!("{at}: throttle needs message_rate")),
            ("suspend", Some(_)) => {
                return Err(format!(
                    "{at}: message_rate only goes with action = \"throttle\""
                ));
            }
            (other, _) => {
                return Err(format!(
                    "{at}.action: {other:?} is not \"suspend\" or \"throttle\""
                ));
            }
        };
        Ok(ResponseRule {
            code_prefix: self.code.trim().to_string(),
            pattern,
            action,
            name: self.name.clone().unwrap_or_else(|| at.to_string()),
        })
    }
}

impl RawShaping {
    fn overlay(&mut self, other: RawShaping) {
        self.default.overlay(other.default);
        self.rules.extend(other.rules);
        for (name, provider) in other.provider {
            let entry = self.provider.entry(name).or_default();
            if provider.mx_suffixes.is_some() {
                entry.mx_suffixes = provider.mx_suffixes;
            }
            if provider.provider_connections_max.is_some() {
                entry.provider_connections_max = provider.provider_connections_max;
            }
            entry.limits.overlay(provider.limits);
            // An operator's rules come first: they are the more specific knowledge.
            let mut rules = provider.rules;
            rules.append(&mut entry.rules);
            entry.rules = rules;
        }
    }

    fn validate(&self) -> Result<Shaping, String> {
        let default = self.default.validate(&Limits::default(), "default")?;
        let rules = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| r.validate(&format!("rules[{i}]")))
            .collect::<Result<_, _>>()?;
        let mut providers = Vec::new();
        for (name, raw) in &self.provider {
            let at = format!("provider.{name}");
            let mx_suffixes: Vec<String> = raw
                .mx_suffixes
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|s| {
                    let s = s.trim().to_ascii_lowercase();
                    if s.starts_with('.') {
                        s
                    } else {
                        format!(".{s}")
                    }
                })
                .collect();
            if mx_suffixes.iter().any(|s| s.len() < 2) || mx_suffixes.is_empty() {
                return Err(format!(
                    "{at}.mx_suffixes: give at least one suffix like \".google.com\""
                ));
            }
            if raw.provider_connections_max == Some(0) {
                return Err(format!("{at}.provider_connections_max must be at least 1"));
            }
            providers.push(Provider {
                name: name.clone(),
                mx_suffixes,
                connections_max_total: raw.provider_connections_max,
                limits: raw.limits.validate(&default, &at)?,
                rules: raw
                    .rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| r.validate(&format!("{at}.rules[{i}]")))
                    .collect::<Result<_, _>>()?,
            });
        }
        Ok(Shaping {
            default,
            rules,
            providers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_file_is_valid_and_matches_providers_by_suffix() {
        let shaping = Shaping::from_files(&[]).unwrap();
        let (gmail, _) = shaping.for_hosts(["alt1.gmail-smtp-in.l.google.com"].into_iter());
        assert_eq!(gmail.map(|p| p.name.as_str()), Some("gmail"));
        let (yahoo, _) = shaping.for_hosts(["mta7.am0.yahoodns.net"].into_iter());
        assert_eq!(yahoo.map(|p| p.name.as_str()), Some("yahoo"));
        let (none, limits) = shaping.for_hosts(["mx.example.net"].into_iter());
        assert!(none.is_none());
        assert_eq!(limits, &shaping.default);
        // A suffix must match at a label boundary.
        let (fake, _) = shaping.for_hosts(["mx.notgoogle.com"].into_iter());
        assert!(fake.is_none());
    }

    #[test]
    fn overlay_changes_one_field_and_keeps_the_rest() {
        let shipped = Shaping::from_files(&[]).unwrap();
        let mine = Shaping::from_files(&["[provider.gmail]\nconnections_max = 3\n"]).unwrap();
        let gmail = |s: &Shaping| {
            s.providers
                .iter()
                .find(|p| p.name == "gmail")
                .cloned()
                .unwrap()
        };
        assert_eq!(gmail(&mine).limits.connections_max, 3);
        assert_eq!(
            gmail(&mine).limits.messages_per_connection,
            gmail(&shipped).limits.messages_per_connection
        );
        assert_eq!(gmail(&mine).mx_suffixes, gmail(&shipped).mx_suffixes);
    }

    #[test]
    fn errors_name_the_key() {
        let err = Shaping::from_files(&["[default]\nmessage_rate = \"fast\"\n"]).unwrap_err();
        assert!(err.contains("default.message_rate"), "{err}");
        let err = Shaping::from_files(&[
            "[[provider.x.rules]]\npattern = \"(\"\naction = \"suspend\"\nduration = \"1m\"\n",
        ])
        .unwrap_err();
        assert!(err.contains("provider.x"), "{err}");
        let err = Shaping::from_files(&["[default]\nconections_max = 3\n"]).unwrap_err();
        assert!(err.contains("conections_max"), "{err}");
        let err = Shaping::from_files(&["[provider.gmail]\nconections_max = 3\n"]).unwrap_err();
        assert!(err.contains("conections_max"), "{err}");
    }

    #[test]
    fn rules_match_code_prefix_and_text() {
        let shaping = Shaping::from_files(&[]).unwrap();
        let yahoo = shaping
            .providers
            .iter()
            .find(|p| p.name == "yahoo")
            .unwrap();
        let text = "[TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume";
        assert!(
            yahoo
                .rules
                .iter()
                .any(|r| r.matches(421, Some((4, 7, 0)), text))
        );
        assert!(
            !yahoo
                .rules
                .iter()
                .any(|r| r.matches(250, Some((2, 0, 0)), "ok"))
        );
        let rule = ResponseRule {
            code_prefix: "4.7.".into(),
            pattern: Regex::new("(?i)rate").unwrap(),
            action: Action::Suspend(Duration::from_secs(1)),
            name: "t".into(),
        };
        assert!(rule.matches(421, Some((4, 7, 28)), "Rate limited"));
        assert!(!rule.matches(421, Some((4, 2, 1)), "Rate limited"));
        assert!(!rule.matches(550, Some((5, 7, 1)), "rate"));
    }
}
