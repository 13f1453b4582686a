//! The objectives evaluated inside the server: deliveries and acceptances are counted per
//! objective as they happen (a minute ring for the burn-rate windows, an hour ring for the
//! budget's period), and [`Tracker::status`] answers each objective's budget left, burn
//! rates and the alert the policy calls for. The binary saves the recent slots every few
//! seconds and restores them at start-up ([`Tracker::recent`], [`Tracker::restore`]).

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::budget::{self, Burn, Counts, WINDOWS};
use crate::duration::prometheus;
use crate::slo::{Sli, Slo};
use crate::window::MinuteCounts;

/// Late recipients remembered per objective (8 bytes each).
const LATE_REMEMBERED: usize = 1 << 20;

/// One delivery attempt's outcome, for the latency objectives.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub now_ms: i64,
    pub tenant: Option<&'a str>,
    /// From acceptance to this attempt.
    pub queued: Duration,
    /// A hash of the message and recipient (0: unknown), so a recipient counted late at a
    /// deferral is not counted again at its delivery.
    pub recipient: u64,
    /// Delivered (else deferred).
    pub delivered: bool,
}

struct Tracked {
    slo: Slo,
    late: std::collections::HashSet<u64>,
    /// The id of the tenant `slo.tenant` names, once known (events carry ids).
    tenant_id: Option<String>,
    minutes: MinuteCounts,
    hours: MinuteCounts,
}

/// Every configured objective with its counters.
pub struct Tracker {
    tracked: Mutex<Vec<Tracked>>,
    /// The kinds some objective measures: events of other kinds cost no lock (deliveries
    /// and API requests are on hot paths).
    kinds: Vec<&'static str>,
}

/// One objective's state, as the admin API and `tsubame ops slo` show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SloStatus {
    pub name: String,
    pub kind: &'static str,
    pub tenant: Option<String>,
    /// Percent.
    pub objective: f64,
    pub period: String,
    pub good: u64,
    pub total: u64,
    /// The share of the period's budget left (1 untouched; negative: overspent).
    pub budget_left: f64,
    /// Window → burn rate (`None`: fewer events than the objective's minimum).
    pub burn_rates: Vec<(String, Option<f64>)>,
    /// `page` or `ticket` when the policy fires, with the factor that did.
    pub alert: Option<(&'static str, f64)>,
    /// The exhaustion forecast: hours until the budget left is spent at the last hour's
    /// burn rate (none when it is not burning or already spent).
    pub exhausted_in_hours: Option<f64>,
}

impl Tracker {
    pub fn new(slos: &[Slo]) -> Tracker {
        let longest = WINDOWS[WINDOWS.len() - 1];
        let mut kinds: Vec<&'static str> = slos.iter().map(|s| s.sli.kind()).collect();
        kinds.dedup();
        Tracker {
            kinds,
            tracked: Mutex::new(
                slos.iter()
                    .map(|slo| Tracked {
                        slo: slo.clone(),
                        tenant_id: None,
                        late: Default::default(),
                        minutes: MinuteCounts::new(longest),
                        hours: MinuteCounts::with_slot(slo.period, Duration::from_secs(3600)),
                    })
                    .collect(),
            ),
        }
    }

    /// The tightest server-wide delivery latency threshold (forecasts check against it).
    pub fn delivery_threshold(&self) -> Option<Duration> {
        let tracked = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        tracked
            .iter()
            .filter(|t| t.slo.tenant.is_none())
            .filter_map(|t| match t.slo.sli {
                Sli::DeliveryLatency { threshold } => Some(threshold),
                _ => None,
            })
            .min()
    }

    /// Whether some objective measures `kind` (an [`Sli::kind`]).
    pub fn measures(&self, kind: &str) -> bool {
        self.kinds.contains(&kind)
    }

    fn each(&self, mut f: impl FnMut(&mut Tracked)) {
        let mut tracked = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        for t in tracked.iter_mut() {
            f(t);
        }
    }

    /// Tenant names of per-tenant objectives whose tenant id is not known yet.
    pub fn unresolved_tenants(&self) -> Vec<String> {
        let tracked = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<String> = tracked
            .iter()
            .filter(|t| t.tenant_id.is_none())
            .filter_map(|t| t.slo.tenant.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The tenant named `name` has the id `id` (per-tenant objectives count its events
    /// from now on).
    pub fn resolve_tenant(&self, name: &str, id: &str) {
        self.each(|t| {
            if t.slo.tenant.as_deref() == Some(name) {
                t.tenant_id = Some(id.to_string());
            }
        });
    }

    /// A recipient delivered `queued` after its acceptance, for `tenant` (if a tenant's).
    pub fn delivered(&self, now_ms: i64, tenant: Option<&str>, queued: Duration) {
        self.outcomes(&[Attempt {
            now_ms,
            tenant,
            queued,
            recipient: 0,
            delivered: true,
        }]);
    }

    /// Delivery attempts, under one lock. Each recipient counts once against a latency
    /// objective: good when delivered within the threshold, bad as soon as it is known to
    /// be late — at its delivery, or at the first deferral past the threshold (so an outage
    /// burns the budget while it lasts, not hours later when the mail finally goes).
    pub fn outcomes(&self, attempts: &[Attempt<'_>]) {
        if attempts.is_empty() || !self.measures("delivery_latency") {
            return;
        }
        self.each(|t| {
            let Sli::DeliveryLatency { threshold } = t.slo.sli else {
                return;
            };
            for a in attempts {
                if t.slo.tenant.is_some()
                    && (t.tenant_id.is_none() || t.tenant_id.as_deref() != a.tenant)
                {
                    continue;
                }
                let late = a.queued > threshold;
                let counted = a.recipient != 0 && t.late.contains(&a.recipient);
                if a.delivered {
                    if counted {
                        t.late.remove(&a.recipient);
                        continue;
                    }
                } else if !late || counted {
                    continue;
                } else {
                    if t.late.len() >= LATE_REMEMBERED {
                        // Beyond this many late recipients at once, the oldest are forgotten:
                        // one of those delivered later counts a second time.
                        t.late.clear();
                    }
                    t.late.insert(a.recipient);
                }
                let good = u64::from(!late);
                t.minutes.record(a.now_ms, good, 1);
                t.hours.record(a.now_ms, good, 1);
            }
        });
    }

    /// Events delivered to a tenant's webhook, each `ages` (ms) after it happened.
    pub fn webhook_delivered(&self, now_ms: i64, tenant: &str, ages: &[i64]) {
        if !self.measures("webhook_freshness") {
            return;
        }
        self.each(|t| {
            let Sli::WebhookFreshness { threshold } = t.slo.sli else {
                return;
            };
            if t.slo.tenant.is_some() && t.tenant_id.as_deref() != Some(tenant) {
                return;
            }
            let limit = threshold.as_millis() as i64;
            let good = ages.iter().filter(|a| **a <= limit).count() as u64;
            t.minutes.record(now_ms, good, ages.len() as u64);
            t.hours.record(now_ms, good, ages.len() as u64);
        });
    }

    /// An API request answered after `took`.
    pub fn api_answered(&self, now_ms: i64, took: Duration) {
        if !self.measures("api_latency") {
            return;
        }
        self.each(|t| {
            let Sli::ApiLatency { threshold } = t.slo.sli else {
                return;
            };
            if t.slo.tenant.is_some() {
                return;
            }
            let good = u64::from(took <= threshold);
            t.minutes.record(now_ms, good, 1);
            t.hours.record(now_ms, good, 1);
        });
    }

    /// Messages offered: `refused` of `total` refused by our fault.
    pub fn offered(&self, now_ms: i64, total: u64, refused: u64) {
        if total == 0 || !self.measures("acceptance") {
            return;
        }
        self.each(|t| {
            if t.slo.sli != Sli::Acceptance || t.slo.tenant.is_some() {
                return;
            }
            let good = total.saturating_sub(refused);
            t.minutes.record(now_ms, good, total);
            t.hours.record(now_ms, good, total);
        });
    }

    pub fn status(&self, now_ms: i64) -> Vec<SloStatus> {
        let tracked = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        tracked
            .iter()
            .map(|t| {
                let period = t.hours.counts(now_ms, t.slo.period);
                let burn = Burn::of(&t.slo, |w| t.minutes.counts(now_ms, w));
                SloStatus {
                    name: t.slo.name.clone(),
                    kind: t.slo.sli.kind(),
                    tenant: t.slo.tenant.clone(),
                    objective: t.slo.objective * 100.0,
                    period: prometheus(t.slo.period),
                    good: period.good,
                    total: period.total,
                    budget_left: budget::budget_left(&t.slo, period),
                    burn_rates: burn
                        .rates
                        .iter()
                        .map(|(w, r)| (prometheus(*w), *r))
                        .collect(),
                    alert: burn.firing().map(|r| (r.severity.as_str(), r.factor)),
                    exhausted_in_hours: budget::exhaustion(&t.slo, period, &burn)
                        .map(|d| d.as_secs_f64() / 3600.0),
                }
            })
            .collect()
    }

    /// The recent slots of every objective's rings, to save: (objective, slot length,
    /// slot number, counts).
    pub fn recent(&self, now_ms: i64) -> Vec<(String, i64, i64, Counts)> {
        let tracked = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for t in tracked.iter() {
            for ring in [&t.minutes, &t.hours] {
                for (slot, counts) in ring.recent(now_ms) {
                    out.push((t.slo.name.clone(), ring.slot_ms(), slot, counts));
                }
            }
        }
        out
    }

    /// Puts back saved slots of objectives that still exist (by name), after a restart.
    pub fn restore(&self, saved: &[(String, i64, i64, Counts)]) {
        let mut tracked = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        for (name, slot_ms, slot, counts) in saved {
            let Some(t) = tracked.iter_mut().find(|t| &t.slo.name == name) else {
                continue;
            };
            for ring in [&mut t.minutes, &mut t.hours] {
                if ring.slot_ms() == *slot_ms {
                    ring.restore(*slot, *counts);
                }
            }
        }
    }

    /// Counts of one objective over `window` from its hour slots (reports: up to its
    /// period).
    pub fn period_counts(&self, name: &str, now_ms: i64, window: Duration) -> Option<Counts> {
        let tracked = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        tracked
            .iter()
            .find(|t| t.slo.name == name)
            .map(|t| t.hours.counts(now_ms, window))
    }

    /// Counts of one objective over `window` (tests and reports).
    pub fn counts(&self, name: &str, now_ms: i64, window: Duration) -> Option<Counts> {
        let tracked = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        tracked
            .iter()
            .find(|t| t.slo.name == name)
            .map(|t| t.minutes.counts(now_ms, window))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(name: &str, sli: Sli, tenant: Option<&str>) -> Slo {
        Slo {
            name: name.into(),
            sli,
            objective: 0.999,
            period: Duration::from_secs(30 * 86_400),
            min_events: 100,
            tenant: tenant.map(str::to_string),
            description: String::new(),
        }
    }

    #[test]
    fn a_recipient_counts_late_once_at_its_first_late_deferral() {
        let two = Sli::DeliveryLatency {
            threshold: Duration::from_secs(2),
        };
        let tracker = Tracker::new(&[slo("all", two, None)]);
        let at = |now_ms, queued_s, recipient, delivered| Attempt {
            now_ms,
            tenant: None,
            queued: Duration::from_secs(queued_s),
            recipient,
            delivered,
        };
        let now = 1_000_000_000;
        tracker.outcomes(&[
            at(now, 1, 7, false), // deferred in time: not known yet
            at(now, 3, 7, false), // late: bad now
            at(now, 9, 7, false), // still late: already counted
            at(now, 1, 8, true),  // another, in time
        ]);
        let c = tracker
            .counts("all", now, Duration::from_secs(300))
            .unwrap();
        assert_eq!((c.good, c.total), (1, 2));
        tracker.outcomes(&[at(now, 20, 7, true)]);
        let c = tracker
            .counts("all", now, Duration::from_secs(300))
            .unwrap();
        assert_eq!(
            (c.good, c.total),
            (1, 2),
            "its delivery is not counted again"
        );
        tracker.outcomes(&[at(now, 20, 7, true)]);
        let c = tracker
            .counts("all", now, Duration::from_secs(300))
            .unwrap();
        assert_eq!((c.good, c.total), (1, 3), "forgotten once delivered");
    }

    #[test]
    fn deliveries_count_for_their_objectives_and_late_ones_burn() {
        let seven = Sli::DeliveryLatency {
            threshold: Duration::from_secs(7),
        };
        let tracker = Tracker::new(&[
            slo("all", seven, None),
            slo("acme", seven, Some("acme")),
            slo("accept", Sli::Acceptance, None),
        ]);
        assert_eq!(tracker.unresolved_tenants(), ["acme"]);
        tracker.resolve_tenant("acme", "t_acme");
        assert!(tracker.unresolved_tenants().is_empty());
        let now = 1_000_000_000;
        for i in 0..1000 {
            let late = i % 50 == 0; // 2 %: 20× a 0.1 % budget
            let queued = Duration::from_secs(if late { 30 } else { 1 });
            tracker.delivered(
                now + i,
                Some(if i % 2 == 0 { "t_acme" } else { "t_beta" }),
                queued,
            );
        }
        tracker.offered(now, 500, 0);
        let status = tracker.status(now + 1000);
        let all = &status[0];
        assert_eq!((all.good, all.total), (980, 1000));
        assert!(
            (all.burn_rates[0].1.unwrap() - 20.0).abs() < 1e-9,
            "{all:?}"
        );
        assert_eq!(all.alert, Some(("page", 14.4)));
        assert!(all.budget_left < 0.0, "2 % late overspends a 0.1 % budget");
        let acme = &status[1];
        assert_eq!(acme.total, 500, "only acme's deliveries");
        let accept = &status[2];
        assert_eq!((accept.good, accept.total, accept.alert), (500, 500, None));
        assert_eq!(accept.budget_left, 1.0);
    }

    #[test]
    fn webhook_ages_and_api_times_count_for_their_objectives() {
        let tracker = Tracker::new(&[
            slo(
                "hooks",
                Sli::WebhookFreshness {
                    threshold: Duration::from_secs(60),
                },
                Some("acme"),
            ),
            slo(
                "api",
                Sli::ApiLatency {
                    threshold: Duration::from_millis(250),
                },
                None,
            ),
        ]);
        let now = 2_000_000_000;
        tracker.webhook_delivered(now, "t_acme", &[1_000]);
        assert_eq!(
            tracker.status(now)[0].total,
            0,
            "the tenant is not known yet"
        );
        tracker.resolve_tenant("acme", "t_acme");
        tracker.webhook_delivered(now, "t_acme", &[1_000, 59_000, 61_000]);
        tracker.webhook_delivered(now, "t_beta", &[1_000]);
        tracker.api_answered(now, Duration::from_millis(10));
        tracker.api_answered(now, Duration::from_millis(900));
        let status = tracker.status(now);
        assert_eq!((status[0].good, status[0].total), (2, 3));
        assert_eq!((status[1].good, status[1].total), (1, 2));
    }

    #[test]
    fn saved_slots_restore_the_counts() {
        let seven = Sli::DeliveryLatency {
            threshold: Duration::from_secs(7),
        };
        let before = Tracker::new(&[slo("d", seven, None)]);
        let now = 3_000_000_000;
        for i in 0..10 {
            before.delivered(
                now + i,
                None,
                Duration::from_secs(if i < 8 { 1 } else { 9 }),
            );
        }
        let saved = before.recent(now);
        assert_eq!(
            saved.len(),
            2,
            "one minute slot and one hour slot: {saved:?}"
        );
        let after = Tracker::new(&[slo("d", seven, None), slo("new", seven, None)]);
        after.restore(&saved);
        after.restore(&[("gone".into(), 60_000, 1, Counts { good: 1, total: 1 })]);
        let status = after.status(now + 30_000);
        assert_eq!((status[0].good, status[0].total), (8, 10));
        assert_eq!(status[1].total, 0);
    }
}
