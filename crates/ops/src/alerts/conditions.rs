//! The built-in conditions: from what the server observes (samples of the queue, the spool
//! and each site taken at every evaluation, the objectives' status, certificates, webhooks
//! and tenants' rates) to [`Signal`]s. No I/O: the runner gathers the observations.

use std::collections::VecDeque;
use std::time::Duration;

use crate::alerts::engine::Signal;
use crate::alerts::priority::Impact;
use crate::alerts::rule::Rule;
use crate::budget::Severity;
use crate::tracker::SloStatus;

/// Where the conditions start to fire (docs/operations.md lists them).
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// The spool's disk: alert below this free share (mail at risk below half of it).
    pub disk_free_min: f64,
    /// Alert when the disk fills up within this, at the last 30 minutes' growth.
    pub disk_full_within: Duration,
    pub oldest_message: Duration,
    /// A site's deferral share over the last 5 minutes …
    pub deferral_share: f64,
    /// … at this many times its share over the hour before …
    pub deferral_jump: f64,
    /// … over at least this many attempts.
    pub deferral_min_attempts: u64,
    /// DNS failures in 5 minutes.
    pub dns_failures: u64,
    pub tls_warn: Duration,
    pub webhook_failing: Duration,
    /// A tenant's hard bounces over messages sent in the last day.
    pub bounce_rate: f64,
    /// A tenant's complaints over messages delivered in the last day (Gmail's and
    /// Yahoo's bulk-sender rules ask for under 0.3 %, aiming for 0.1 %).
    pub complaint_rate: f64,
    /// Messages a tenant must have sent for its rates to count.
    pub tenant_min_sent: u64,
    /// Queue growth over 15 minutes, rising at every sample.
    pub backlog_growth: u64,
    /// An objective whose budget would be gone within this (and not already paging).
    pub exhaustion_within: Duration,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            disk_free_min: 0.10,
            disk_full_within: Duration::from_secs(6 * 3600),
            oldest_message: Duration::from_secs(3600),
            deferral_share: 0.20,
            deferral_jump: 3.0,
            deferral_min_attempts: 50,
            dns_failures: 20,
            tls_warn: Duration::from_secs(30 * 86_400),
            webhook_failing: Duration::from_secs(3600),
            bounce_rate: 0.05,
            complaint_rate: 0.001,
            tenant_min_sent: 100,
            backlog_growth: 1_000,
            exhaustion_within: Duration::from_secs(86_400),
        }
    }
}

/// One site's counters since start-up, and its state, at a sample.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SiteSample {
    pub site: String,
    pub provider: String,
    pub delivered: u64,
    pub deferred: u64,
    pub dns_failures: u64,
    /// Recipients waiting for it.
    pub ready: u64,
    /// The reply rule that suspended it, while it is suspended.
    pub suspended: Option<String>,
    /// Attempts with a measured transaction time, and their total (ms).
    pub attempts_timed: u64,
    pub attempt_ms_total: u64,
}

/// What the server looked like at one evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sample {
    pub at_ms: i64,
    pub sites: Vec<SiteSample>,
    /// Recipients queued (ready, deferred, held).
    pub queued: u64,
    pub oldest_ms: Option<i64>,
    pub disk_total: u64,
    pub disk_free: u64,
    /// Spool inserts stored and refused since start-up.
    pub stored: u64,
    pub refused: u64,
}

/// The samples of the last two hours, oldest first.
#[derive(Debug, Default)]
pub struct History {
    samples: VecDeque<Sample>,
}

const KEPT_MS: i64 = 2 * 3_600_000;

impl History {
    pub fn push(&mut self, sample: Sample) {
        let now = sample.at_ms;
        self.samples.push_back(sample);
        while self
            .samples
            .front()
            .is_some_and(|s| s.at_ms < now - KEPT_MS)
        {
            self.samples.pop_front();
        }
    }

    pub fn latest(&self) -> Option<&Sample> {
        self.samples.back()
    }

    /// The oldest sample taken at or after `now - window`.
    fn since(&self, window: Duration) -> Option<&Sample> {
        let now = self.latest()?.at_ms;
        let from = now - window.as_millis() as i64;
        self.samples.iter().find(|s| s.at_ms >= from)
    }

    fn between(&self, from_ms: i64, to_ms: i64) -> impl Iterator<Item = &Sample> {
        self.samples
            .iter()
            .filter(move |s| s.at_ms >= from_ms && s.at_ms <= to_ms)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingWebhook {
    pub tenant: String,
    pub url: String,
    pub since_ms: i64,
}

/// A tenant's mail over the last day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantMail {
    pub tenant: String,
    pub sent: u64,
    pub delivered: u64,
    pub bounced: u64,
    pub complained: u64,
}

/// Everything one evaluation looks at.
pub struct Observations<'a> {
    pub now_ms: i64,
    pub history: &'a History,
    pub slos: &'a [SloStatus],
    /// When the server's TLS certificate expires, Unix ms.
    pub tls_not_after_ms: Option<i64>,
    pub webhooks: &'a [FailingWebhook],
    pub tenants: &'a [TenantMail],
}

const FIVE_MINUTES: Duration = Duration::from_secs(300);

/// Every built-in condition that holds.
pub fn evaluate(obs: &Observations<'_>, t: &Thresholds) -> Vec<Signal> {
    let mut out = Vec::new();
    slo_signals(obs, t, &mut out);
    if let Some(now) = obs.history.latest() {
        spool_signals(obs.history, now, t, &mut out);
        site_signals(obs.history, now, t, &mut out);
    }
    if let Some(not_after) = obs.tls_not_after_ms {
        let left = not_after - obs.now_ms;
        if left < t.tls_warn.as_millis() as i64 {
            let days = left as f64 / 86_400_000.0;
            out.push(Signal::new(
                Rule::TlsExpiry,
                &[],
                format!("the TLS certificate expires in {days:.1} days"),
                Impact {
                    all_tenants: true,
                    starts_in: Some(Duration::from_millis(left.max(0) as u64)),
                    ..Default::default()
                },
            ));
        }
    }
    for w in obs.webhooks {
        let failing = obs.now_ms - w.since_ms;
        if failing >= t.webhook_failing.as_millis() as i64 {
            out.push(Signal::new(
                Rule::WebhookFailing,
                &[("tenant", &w.tenant), ("url", &w.url)],
                format!(
                    "tenant {}'s webhook {} has failed for {} min",
                    w.tenant,
                    w.url,
                    failing / 60_000
                ),
                Impact {
                    tenants: 1,
                    ..Default::default()
                },
            ));
        }
    }
    for m in obs.tenants.iter().filter(|m| m.sent >= t.tenant_min_sent) {
        let bounce = m.bounced as f64 / m.sent as f64;
        if bounce > t.bounce_rate {
            out.push(tenant_signal(
                Rule::TenantBounceRate,
                m,
                "bounces",
                bounce,
                m.bounced,
            ));
        }
        let complaints = m.complained as f64 / m.delivered.max(1) as f64;
        if complaints > t.complaint_rate {
            out.push(tenant_signal(
                Rule::TenantComplaintRate,
                m,
                "complaints",
                complaints,
                m.complained,
            ));
        }
    }
    out
}

fn tenant_signal(rule: Rule, m: &TenantMail, what: &str, rate: f64, count: u64) -> Signal {
    Signal::new(
        rule,
        &[("tenant", &m.tenant)],
        format!(
            "tenant {}: {:.2} % {what} over the last day ({count} of {})",
            m.tenant,
            rate * 100.0,
            m.sent
        ),
        Impact {
            tenants: 1,
            messages: count,
            ..Default::default()
        },
    )
}

fn slo_signals(obs: &Observations<'_>, t: &Thresholds, out: &mut Vec<Signal>) {
    for s in obs.slos {
        let mut labels = vec![("slo", s.name.as_str())];
        if let Some(tenant) = &s.tenant {
            labels.push(("tenant", tenant));
        }
        let tenants = u64::from(s.tenant.is_some());
        if let Some((severity, factor)) = s.alert {
            let severity = if severity == "page" {
                Severity::Page
            } else {
                Severity::Ticket
            };
            let rate = s
                .burn_rates
                .iter()
                .find(|(w, _)| w == "1h")
                .and_then(|(_, r)| *r)
                .unwrap_or(factor);
            out.push(Signal::new(
                Rule::SloBurn,
                &labels,
                format!(
                    "objective {} burns its error budget at {rate:.1}× ({} policy at {factor}×); {:.1} % left",
                    s.name,
                    severity.as_str(),
                    s.budget_left * 100.0
                ),
                Impact {
                    burn: Some((severity, factor)),
                    tenants,
                    // Which objective: acceptance paging means mail is being refused now.
                    loss: s.kind == "acceptance" && severity == Severity::Page,
                    ..Default::default()
                },
            ));
        } else if let Some(hours) = s.exhausted_in_hours
            && hours * 3600.0 < t.exhaustion_within.as_secs_f64()
        {
            out.push(Signal::new(
                Rule::BudgetExhaustion,
                &labels,
                format!(
                    "objective {}: at the last hour's burn rate its budget is gone in {hours:.1} h",
                    s.name
                ),
                Impact {
                    tenants,
                    starts_in: Some(Duration::from_secs_f64(hours * 3600.0)),
                    ..Default::default()
                },
            ));
        }
    }
}

fn spool_signals(history: &History, now: &Sample, t: &Thresholds, out: &mut Vec<Signal>) {
    if let Some(before) = history.since(Duration::from_secs(60)) {
        let refused = now.refused - before.refused.min(now.refused);
        let stored = now.stored - before.stored.min(now.stored);
        if refused > 0 && stored == 0 {
            out.push(Signal::new(
                Rule::SpoolUnavailable,
                &[],
                format!("the spool refused {refused} messages and stored none in the last minute"),
                Impact {
                    loss: true,
                    all_tenants: true,
                    messages: refused,
                    ..Default::default()
                },
            ));
        }
    }
    if now.disk_total > 0 {
        let free = now.disk_free as f64 / now.disk_total as f64;
        if free < t.disk_free_min {
            out.push(Signal::new(
                Rule::DiskNearlyFull,
                &[],
                format!("the spool's disk has {:.1} % free", free * 100.0),
                Impact {
                    loss: free < t.disk_free_min / 2.0,
                    all_tenants: true,
                    messages: now.queued,
                    ..Default::default()
                },
            ));
        }
        if let Some(before) = history.since(Duration::from_secs(30 * 60)) {
            let used = before.disk_free.saturating_sub(now.disk_free) as f64;
            let ms = (now.at_ms - before.at_ms) as f64;
            if used > 0.0 && ms >= 60_000.0 {
                let full_in_ms = now.disk_free as f64 / (used / ms);
                if full_in_ms < t.disk_full_within.as_millis() as f64 {
                    out.push(Signal::new(
                        Rule::DiskFilling,
                        &[],
                        format!(
                            "the spool's disk fills up in {:.1} h at its last 30 minutes' growth",
                            full_in_ms / 3_600_000.0
                        ),
                        Impact {
                            all_tenants: true,
                            starts_in: Some(Duration::from_millis(full_in_ms as u64)),
                            ..Default::default()
                        },
                    ));
                }
            }
        }
    }
    if let Some(oldest) = now.oldest_ms {
        let age = now.at_ms - oldest;
        if age > t.oldest_message.as_millis() as i64 {
            out.push(Signal::new(
                Rule::OldestMessage,
                &[],
                format!("the oldest queued message has waited {} min", age / 60_000),
                Impact {
                    all_tenants: true,
                    messages: now.queued,
                    ..Default::default()
                },
            ));
        }
    }
    // Backlog growth: up by the threshold over 15 minutes, and never down in between.
    let from = now.at_ms - 15 * 60_000;
    if let Some(first) = history.since(Duration::from_secs(15 * 60))
        && first.at_ms - from < 60_000
        && now.queued >= first.queued + t.backlog_growth
    {
        let rising = history
            .between(first.at_ms, now.at_ms)
            .collect::<Vec<_>>()
            .windows(2)
            .all(|w| w[1].queued >= w[0].queued);
        if rising {
            out.push(Signal::new(
                Rule::BacklogGrowth,
                &[],
                format!(
                    "the queue grew from {} to {} recipients in 15 min",
                    first.queued, now.queued
                ),
                Impact {
                    all_tenants: true,
                    messages: now.queued,
                    ..Default::default()
                },
            ));
        }
    }
}

fn site_signals(history: &History, now: &Sample, t: &Thresholds, out: &mut Vec<Signal>) {
    let Some(recent) = history.since(FIVE_MINUTES) else {
        return;
    };
    let baseline_from = recent.at_ms - 3_600_000;
    let baseline = history.between(baseline_from, recent.at_ms).next();
    let find = |sample: &Sample, site: &str| sample.sites.iter().find(|s| s.site == site).cloned();
    let (mut tried_sites, mut delivered_all, mut deferred_all, mut dns_all) = (0, 0, 0, 0);
    let mut dns_share_base = 0;
    for site in &now.sites {
        let before = find(recent, &site.site).unwrap_or_default();
        let delivered = site.delivered.saturating_sub(before.delivered);
        let deferred = site.deferred.saturating_sub(before.deferred);
        let dns = site.dns_failures.saturating_sub(before.dns_failures);
        if delivered + deferred > 0 {
            tried_sites += 1;
        }
        delivered_all += delivered;
        deferred_all += deferred;
        dns_all += dns;
        dns_share_base += delivered + deferred;
        let labels = [
            ("site", site.site.as_str()),
            ("provider", site.provider.as_str()),
        ];
        if let Some(rule) = &site.suspended {
            out.push(Signal::new(
                Rule::ProviderSuspended,
                &labels,
                format!(
                    "{} suspended sending to site {} (rule {rule}); {} recipients wait",
                    site.provider, site.site, site.ready
                ),
                Impact {
                    all_tenants: true,
                    messages: site.ready,
                    ..Default::default()
                },
            ));
        }
        let attempts = delivered + deferred;
        if attempts < t.deferral_min_attempts {
            continue;
        }
        let share = deferred as f64 / attempts as f64;
        let base_share = baseline
            .and_then(|b| find(b, &site.site).map(|then| (then, b)))
            .map(|(then, _)| {
                let d = before.deferred.saturating_sub(then.deferred);
                let a = d + before.delivered.saturating_sub(then.delivered);
                if a == 0 { 0.0 } else { d as f64 / a as f64 }
            })
            .unwrap_or(0.0);
        if share >= t.deferral_share && share >= t.deferral_jump * base_share {
            out.push(Signal::new(
                Rule::DeferralJump,
                &labels,
                format!(
                    "site {} ({}) deferred {:.0} % of {attempts} attempts in 5 min (was {:.0} %)",
                    site.site,
                    site.provider,
                    share * 100.0,
                    base_share * 100.0
                ),
                Impact {
                    all_tenants: true,
                    messages: site.ready + deferred,
                    ..Default::default()
                },
            ));
        }
    }
    if tried_sites >= 2 && delivered_all == 0 && deferred_all >= t.deferral_min_attempts {
        out.push(Signal::new(
            Rule::RouteDown,
            &[],
            format!(
                "no delivery in 5 min: {deferred_all} attempts at {tried_sites} sites all failed"
            ),
            Impact {
                all_tenants: true,
                messages: now.queued,
                ..Default::default()
            },
        ));
    }
    if dns_all >= t.dns_failures && dns_all * 2 >= dns_share_base {
        out.push(Signal::new(
            Rule::DnsFailures,
            &[],
            format!("{dns_all} DNS lookups failed in 5 min"),
            Impact {
                all_tenants: true,
                messages: now.queued,
                ..Default::default()
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn site(name: &str, delivered: u64, deferred: u64) -> SiteSample {
        SiteSample {
            site: name.into(),
            provider: "yahoo".into(),
            delivered,
            deferred,
            ready: 40,
            ..Default::default()
        }
    }

    fn rules(obs: &Observations<'_>) -> Vec<&'static str> {
        evaluate(obs, &Thresholds::default())
            .iter()
            .map(|s| s.rule.name())
            .collect()
    }

    fn observe<'a>(history: &'a History, now_ms: i64) -> Observations<'a> {
        Observations {
            now_ms,
            history,
            slos: &[],
            tls_not_after_ms: None,
            webhooks: &[],
            tenants: &[],
        }
    }

    #[test]
    fn deferral_jumps_suspensions_and_a_dead_route() {
        let mut h = History::default();
        // An hour of 2 % deferrals, then 5 minutes of 90 %.
        for m in 0..=60 {
            h.push(Sample {
                at_ms: m * MIN,
                sites: vec![site("mx.yahoo", m as u64 * 98, m as u64 * 2)],
                ..Default::default()
            });
        }
        assert!(rules(&observe(&h, 60 * MIN)).is_empty());
        for m in 61..=65 {
            let k = (m - 60) as u64;
            let mut s = site("mx.yahoo", 60 * 98 + k * 10, 120 + k * 90);
            if m == 65 {
                s.suspended = Some("yahoo-tss04".into());
            }
            h.push(Sample {
                at_ms: m * MIN,
                sites: vec![s],
                ..Default::default()
            });
        }
        let signals = evaluate(&observe(&h, 65 * MIN), &Thresholds::default());
        let names: Vec<_> = signals.iter().map(|s| s.rule.name()).collect();
        assert_eq!(names, ["provider_suspended", "deferral_jump"]);
        assert!(
            signals[1].summary.contains("90 %"),
            "{}",
            signals[1].summary
        );

        // Two sites, every attempt failing: the route is down.
        let mut h = History::default();
        for m in 0..=5 {
            let k = m as u64 * 20;
            h.push(Sample {
                at_ms: m * MIN,
                sites: vec![site("a", 5, k), site("b", 7, k)],
                queued: 500,
                ..Default::default()
            });
        }
        assert_eq!(
            rules(&observe(&h, 5 * MIN)),
            ["deferral_jump", "deferral_jump", "route_down"]
        );
    }

    #[test]
    fn spool_disk_queue_and_the_rest() {
        let mut h = History::default();
        for m in 0..=30 {
            h.push(Sample {
                at_ms: m * MIN,
                queued: 100 + m as u64 * 100,
                oldest_ms: Some(-2 * 3_600_000),
                disk_total: 1000,
                // 2 units a minute from 150: full in 30 minutes at the end.
                disk_free: 150 - m as u64 * 2,
                stored: 10,
                refused: if m == 30 { 5 } else { 0 },
                ..Default::default()
            });
        }
        let webhooks = [FailingWebhook {
            tenant: "acme".into(),
            url: "https://hooks.acme.example/".into(),
            since_ms: -31 * MIN, // an hour and a minute before now
        }];
        let tenants = [TenantMail {
            tenant: "acme".into(),
            sent: 1000,
            delivered: 900,
            bounced: 100,
            complained: 2,
        }];
        let obs = Observations {
            tls_not_after_ms: Some(30 * MIN + 3 * 86_400_000),
            webhooks: &webhooks,
            tenants: &tenants,
            ..observe(&h, 30 * MIN)
        };
        let signals = evaluate(&obs, &Thresholds::default());
        let names: Vec<_> = signals.iter().map(|s| s.rule.name()).collect();
        assert_eq!(
            names,
            [
                "spool_unavailable",
                "disk_nearly_full",
                "disk_filling",
                "oldest_message",
                "backlog_growth",
                "tls_expiry",
                "webhook_failing",
                "tenant_bounce_rate",
                "tenant_complaint_rate"
            ]
        );
        let p: Vec<_> = signals
            .iter()
            .map(|s| crate::alerts::priority(&s.impact).as_str())
            .collect();
        assert_eq!(
            p,
            ["P1", "P2", "P2", "P2", "P2", "P3", "P3", "P3", "P3"],
            "9 % free: P2; under 5 %: P1"
        );
    }

    #[test]
    fn which_objective_burns_sets_the_priority() {
        let status = |name: &str, kind: &'static str| SloStatus {
            name: name.into(),
            kind,
            tenant: None,
            objective: 99.9,
            period: "30d".into(),
            good: 900,
            total: 1000,
            budget_left: -99.0,
            burn_rates: vec![("1h".into(), Some(8.0))],
            alert: Some(("page", 6.0)),
            exhausted_in_hours: None,
        };
        let slos = [
            status("accept", "acceptance"),
            status("fast", "delivery_latency"),
        ];
        let history = History::default();
        let obs = Observations {
            slos: &slos,
            ..observe(&history, 0)
        };
        let p: Vec<_> = evaluate(&obs, &Thresholds::default())
            .iter()
            .map(|s| crate::alerts::priority(&s.impact).as_str())
            .collect();
        assert_eq!(p, ["P1", "P2"], "acceptance paging means mail refused now");
    }
}
