//! What deliveries did, counted as they happen (fed by the delivery event listener): per
//! site since start-up (delivered, deferred, DNS failures, its provider) for the alert
//! conditions, and per sampling period (outcomes and an accept→delivered latency
//! histogram) for the reports' trends.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::alerts::conditions::SiteSample;
use crate::slo::LATENCY_BUCKETS_SECONDS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Deferred,
    Bounced,
}

/// One sampling period's deliveries.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Period {
    pub delivered: u64,
    pub deferred: u64,
    pub bounced: u64,
    /// Delivered recipients per latency bucket ([`LATENCY_BUCKETS_SECONDS`], then one
    /// beyond the last).
    pub latency: Vec<u64>,
    /// Per provider: (delivered, deferred).
    pub providers: BTreeMap<String, (u64, u64)>,
}

impl Period {
    /// The latency below which `q` of the delivered recipients went (a bucket's bound).
    pub fn percentile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let want = (q * total as f64).ceil() as u64;
        let mut seen = 0;
        for (i, n) in self.latency.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(
                    LATENCY_BUCKETS_SECONDS
                        .get(i)
                        .copied()
                        .unwrap_or(f64::INFINITY),
                );
            }
        }
        None
    }

    pub fn add(&mut self, other: &Period) {
        self.delivered += other.delivered;
        self.deferred += other.deferred;
        self.bounced += other.bounced;
        if self.latency.len() < other.latency.len() {
            self.latency.resize(other.latency.len(), 0);
        }
        for (i, n) in other.latency.iter().enumerate() {
            self.latency[i] += n;
        }
        for (p, (d, f)) in &other.providers {
            let e = self.providers.entry(p.clone()).or_default();
            e.0 += d;
            e.1 += f;
        }
    }
}

#[derive(Default)]
struct Inner {
    sites: BTreeMap<String, SiteSample>,
    period: Period,
}

#[derive(Default)]
pub struct Activity {
    inner: Mutex<Inner>,
}

impl Activity {
    pub fn record(&self, site: &str, provider: &str, outcome: Outcome, dns: bool, queued_ms: u64) {
        self.record_attempt(site, provider, outcome, dns, queued_ms, 0);
    }

    /// [`Activity::record`] with the attempt's own time (its SMTP transaction), for the
    /// site's mean transaction time.
    pub fn record_attempt(
        &self,
        site: &str,
        provider: &str,
        outcome: Outcome,
        dns: bool,
        queued_ms: u64,
        attempt_ms: u64,
    ) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let s = inner
            .sites
            .entry(site.to_string())
            .or_insert_with(|| SiteSample {
                site: site.to_string(),
                provider: provider.to_string(),
                ..Default::default()
            });
        match outcome {
            Outcome::Delivered => s.delivered += 1,
            Outcome::Deferred => s.deferred += 1,
            Outcome::Bounced => {}
        }
        if dns {
            s.dns_failures += 1;
        }
        if attempt_ms > 0 {
            s.attempts_timed += 1;
            s.attempt_ms_total += attempt_ms;
        }
        let p = &mut inner.period;
        let e = p.providers.entry(provider.to_string()).or_default();
        match outcome {
            Outcome::Delivered => {
                e.0 += 1;
                p.delivered += 1;
                if p.latency.is_empty() {
                    p.latency = vec![0; LATENCY_BUCKETS_SECONDS.len() + 1];
                }
                let seconds = queued_ms as f64 / 1000.0;
                let i = LATENCY_BUCKETS_SECONDS
                    .iter()
                    .position(|b| seconds <= *b)
                    .unwrap_or(LATENCY_BUCKETS_SECONDS.len());
                p.latency[i] += 1;
            }
            Outcome::Deferred => {
                e.1 += 1;
                p.deferred += 1;
            }
            Outcome::Bounced => p.bounced += 1,
        }
    }

    /// Every site's counters since start-up.
    pub fn sites(&self) -> Vec<SiteSample> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.sites.values().cloned().collect()
    }

    /// The period since the last call (and a new one begins).
    pub fn take_period(&self) -> Period {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut inner.period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_periods_and_percentiles() {
        let a = Activity::default();
        for i in 0..100 {
            a.record(
                "mx.gmail",
                "gmail",
                Outcome::Delivered,
                false,
                if i < 95 { 400 } else { 8_000 },
            );
        }
        a.record("mx.gmail", "gmail", Outcome::Deferred, true, 1);
        let sites = a.sites();
        assert_eq!(
            (sites[0].delivered, sites[0].deferred, sites[0].dns_failures),
            (100, 1, 1)
        );
        let p = a.take_period();
        assert_eq!(p.percentile(0.5), Some(0.5));
        assert_eq!(p.percentile(0.99), Some(10.0));
        assert_eq!(p.providers["gmail"], (100, 1));
        assert_eq!(a.take_period().delivered, 0, "a new period");
        assert_eq!(a.sites()[0].delivered, 100, "sites keep counting");
    }
}
