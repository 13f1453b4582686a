//! What the sink saw: counts by stage and outcome, and latencies. Kept in atomics and
//! merged histograms for the summary printed on exit, and mirrored to the `metrics` facade
//! for /metrics.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::policy::Outcome;

/// Counters for one stage, by outcome.
#[derive(Debug, Default)]
pub struct StageCounts {
    pub accepted: AtomicU64,
    pub tempfail: AtomicU64,
    pub permfail: AtomicU64,
}

impl StageCounts {
    pub(crate) fn add(&self, outcome: Outcome) {
        match outcome {
            Outcome::Accepted => &self.accepted,
            Outcome::Tempfail => &self.tempfail,
            Outcome::Permfail => &self.permfail,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> [u64; 3] {
        [
            self.accepted.load(Ordering::Relaxed),
            self.tempfail.load(Ordering::Relaxed),
            self.permfail.load(Ordering::Relaxed),
        ]
    }
}

/// Everything counted since the sink started.
#[derive(Debug)]
pub struct Stats {
    /// Connections by the connect-stage decision.
    pub connections: StageCounts,
    /// Connections refused because `connections_max` were open.
    pub connections_over_limit: AtomicU64,
    /// Connections closed with 421 after `messages_per_connection` messages.
    pub connections_recycled: AtomicU64,
    pub open: AtomicU64,
    pub open_max: AtomicU64,
    pub recipients: StageCounts,
    /// Messages by the end-of-data decision.
    pub messages: StageCounts,
    /// Messages the SMTP session itself refused (bare CR/LF, too big).
    pub messages_malformed: AtomicU64,
    pub bytes: AtomicU64,
    pub tls_sessions: AtomicU64,
    /// Microseconds from the first byte of a transaction to its end of data, as the sink
    /// sees it (the client's pacing and the network; the reply latency is not included).
    transaction_us: Mutex<Histogram<u64>>,
    /// Connection lifetimes, in milliseconds.
    connection_ms: Mutex<Histogram<u64>>,
}

impl Default for Stats {
    fn default() -> Self {
        let histogram = || {
            Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 3)
                    .expect("static histogram bounds are valid"),
            )
        };
        Stats {
            connections: StageCounts::default(),
            connections_over_limit: AtomicU64::new(0),
            connections_recycled: AtomicU64::new(0),
            open: AtomicU64::new(0),
            open_max: AtomicU64::new(0),
            recipients: StageCounts::default(),
            messages: StageCounts::default(),
            messages_malformed: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            tls_sessions: AtomicU64::new(0),
            transaction_us: histogram(),
            connection_ms: histogram(),
        }
    }
}

/// Per-connection latencies, merged into [`Stats`] when the connection ends so that
/// connections never contend on a lock per message.
pub(crate) struct Local {
    pub transaction_us: Histogram<u64>,
}

impl Local {
    pub fn new() -> Local {
        Local {
            transaction_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("static histogram bounds are valid"),
        }
    }

    pub fn transaction(&mut self, took: Duration) {
        let _ = self
            .transaction_us
            .record(took.as_micros().clamp(1, 3_600_000_000) as u64);
        metrics::histogram!("tsubame_sink_transaction_seconds").record(took.as_secs_f64());
    }
}

impl Stats {
    pub(crate) fn opened(&self) {
        let now = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.open_max.fetch_max(now, Ordering::Relaxed);
        metrics::gauge!("tsubame_sink_connections_open").increment(1.0);
    }

    pub(crate) fn closed(&self, local: Local, lifetime: Duration) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("tsubame_sink_connections_open").decrement(1.0);
        if let Ok(mut h) = self.transaction_us.lock() {
            let _ = h.add(&local.transaction_us);
        }
        if let Ok(mut h) = self.connection_ms.lock() {
            let _ = h.record(lifetime.as_millis().clamp(1, 3_600_000_000) as u64);
        }
    }

    pub(crate) fn count(&self, stage: &'static str, outcome: Outcome) {
        match stage {
            "connect" => &self.connections,
            "rcpt" => &self.recipients,
            _ => &self.messages,
        }
        .add(outcome);
        metrics::counter!("tsubame_sink_replies_total", "stage" => stage, "outcome" => outcome.label())
            .increment(1);
    }

    /// A copy of the counts and percentiles, for printing.
    pub fn summary(&self) -> Summary {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let percentiles = |h: &Mutex<Histogram<u64>>, scale: f64| -> Percentiles {
            let h = match h.lock() {
                Ok(h) => h.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            };
            let q = |q: f64| h.value_at_quantile(q) as f64 / scale;
            Percentiles {
                count: h.len(),
                p50: q(0.5),
                p99: q(0.99),
                p99_9: q(0.999),
                p99_999: q(0.99999),
                max: h.max() as f64 / scale,
            }
        };
        Summary {
            connections: self.connections.snapshot(),
            connections_over_limit: load(&self.connections_over_limit),
            connections_recycled: load(&self.connections_recycled),
            open_max: load(&self.open_max),
            tls_sessions: load(&self.tls_sessions),
            recipients: self.recipients.snapshot(),
            messages: self.messages.snapshot(),
            messages_malformed: load(&self.messages_malformed),
            bytes: load(&self.bytes),
            transaction_ms: percentiles(&self.transaction_us, 1000.0),
            connection_s: percentiles(&self.connection_ms, 1000.0),
        }
    }
}

/// Latency percentiles in the unit their field name says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub p99_999: f64,
    pub max: f64,
}

/// Counts are `[accepted, tempfail, permfail]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub connections: [u64; 3],
    pub connections_over_limit: u64,
    pub connections_recycled: u64,
    pub open_max: u64,
    pub tls_sessions: u64,
    pub recipients: [u64; 3],
    pub messages: [u64; 3],
    pub messages_malformed: u64,
    pub bytes: u64,
    pub transaction_ms: Percentiles,
    pub connection_s: Percentiles,
}
