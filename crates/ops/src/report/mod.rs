//! Reports: the data they are made of ([`Facts`]), the scheduled chat reports ([`chat`])
//! and the monthly operations report, a self-contained HTML page with SVG charts
//! ([`monthly`]). No I/O: the runner gathers the facts from the store and the objectives.

pub mod chat;
pub mod monthly;
pub mod period;
mod svg;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::activity::Period;
use crate::lifecycle::{Alert, MissReason, Priority, RESPONSE_TARGET};

/// One stored sample (every 5 minutes): deliveries in the period and the server's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    pub period: Period,
    pub queued: u64,
    pub oldest_age_s: f64,
    pub disk_used_pct: f64,
    pub cpu_pct: f64,
}

/// An objective over the report's period.
#[derive(Debug, Clone, PartialEq)]
pub struct SloFacts {
    pub name: String,
    /// Percent.
    pub objective: f64,
    pub good: u64,
    pub total: u64,
    /// Of the objective's whole period, 1 = untouched.
    pub budget_left: f64,
}

impl SloFacts {
    /// Percent of good events (100 with none).
    pub fn attained(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            self.good as f64 * 100.0 / self.total as f64
        }
    }

    pub fn met(&self) -> bool {
        self.attained() >= self.objective
    }
}

/// An alert of the period with its timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub life: Alert,
    pub rule: String,
    pub summary: String,
    /// (when, action, who, text).
    pub timeline: Vec<(i64, String, String, String)>,
}

/// Everything a report says.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub kind: String,
    /// `2026-W49`, `2026-11`, `2026-12-04`.
    pub label: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub source: String,
    pub slos: Vec<SloFacts>,
    pub incidents: Vec<Incident>,
    /// (sample time, sample), oldest first.
    pub samples: Vec<(i64, SampleRecord)>,
}

/// Response attainment of one priority.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    pub alerts: usize,
    pub answered: usize,
    pub in_time: usize,
    pub misses: BTreeMap<&'static str, usize>,
}

impl Response {
    /// Percent in time of those answered or overdue (100 with none).
    pub fn attainment(&self) -> f64 {
        if self.answered == 0 {
            100.0
        } else {
            self.in_time as f64 * 100.0 / self.answered as f64
        }
    }

    pub fn met(&self) -> bool {
        self.attainment() >= RESPONSE_TARGET * 100.0
    }
}

impl Facts {
    /// Per priority: alerts, answered (or overdue at the report's end), in time, and the
    /// miss reasons given.
    pub fn response(&self) -> BTreeMap<Priority, Response> {
        let mut out: BTreeMap<Priority, Response> =
            [Priority::P1, Priority::P2, Priority::P3, Priority::P4]
                .into_iter()
                .map(|p| (p, Response::default()))
                .collect();
        for i in &self.incidents {
            let r = out.entry(i.life.priority).or_default();
            r.alerts += 1;
            match i.life.in_time_at(self.to_ms) {
                Some(true) => {
                    r.answered += 1;
                    r.in_time += 1;
                }
                Some(false) => {
                    r.answered += 1;
                    let reason = i
                        .life
                        .miss
                        .as_ref()
                        .map(|(m, _)| m.label())
                        .unwrap_or("not given yet");
                    *r.misses.entry(reason).or_default() += 1;
                }
                None => {}
            }
        }
        out
    }

    /// Deliveries over the whole period.
    pub fn volume(&self) -> Period {
        let mut total = Period::default();
        for (_, s) in &self.samples {
            total.add(&s.period);
        }
        total
    }

    /// Providers by volume, with their deferral share: (provider, attempts, deferred %).
    pub fn providers(&self, top: usize) -> Vec<(String, u64, f64)> {
        let mut v: Vec<(String, u64, f64)> = self
            .volume()
            .providers
            .into_iter()
            .map(|(p, (d, f))| {
                let attempts = d + f;
                (
                    p,
                    attempts,
                    if attempts == 0 {
                        0.0
                    } else {
                        f as f64 * 100.0 / attempts as f64
                    },
                )
            })
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(top);
        v
    }
}

/// The file name a report downloads as (`tsubame-monthly-2026-11.html`).
pub fn file_name(kind: &str, period: &str, content_type: &str) -> String {
    let ext = if content_type.starts_with("text/html") {
        "html"
    } else {
        "txt"
    };
    format!("tsubame-{kind}-{period}.{ext}")
}

/// A report's security policy when served: nothing runs, nothing is fetched.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

/// Miss reason codes in the order reports list them.
pub fn reasons() -> impl Iterator<Item = MissReason> {
    MissReason::ALL.into_iter()
}
