//! The platform's live rates for the operators' overview: messages accepted per second
//! (from the spool's id counter, which counts every stored message), recipients delivered
//! per second (fed by the delivery event listener), and accept→delivered latency
//! percentiles over the last minutes. Sampled every 5 s into a ring of the last 10 minutes.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use store::rollups::{latency_bucket, quantile};

pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
const SAMPLES_KEPT: usize = 120;

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    at_ms: i64,
    accepted: u64,
    delivered: u64,
}

#[derive(Debug, Default)]
struct Inner {
    samples: VecDeque<Sample>,
    delivered: u64,
    /// Latency observations since the last sample, and per sample after.
    current: Vec<(i64, i64)>,
    latency: VecDeque<Vec<(i64, i64)>>,
}

/// Shared between the delivery event listener, the sampler and the pages.
#[derive(Debug, Default)]
pub struct Rates {
    inner: Mutex<Inner>,
}

fn add(histogram: &mut Vec<(i64, i64)>, bucket: i64) {
    match histogram.iter_mut().find(|(b, _)| *b == bucket) {
        Some((_, count)) => *count += 1,
        None => histogram.push((bucket, 1)),
    }
}

impl Rates {
    /// A recipient was delivered `queued_ms` after its message was accepted.
    pub fn delivered(&self, queued_ms: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.delivered += 1;
        add(&mut inner.current, latency_bucket(queued_ms as i64));
    }

    /// Takes a sample: `accepted` is the spool's message counter now.
    pub fn sample_now(&self, at_ms: i64, accepted: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let delivered = inner.delivered;
        inner.samples.push_back(Sample {
            at_ms,
            accepted,
            delivered,
        });
        let current = std::mem::take(&mut inner.current);
        inner.latency.push_back(current);
        while inner.samples.len() > SAMPLES_KEPT {
            inner.samples.pop_front();
        }
        while inner.latency.len() > SAMPLES_KEPT {
            inner.latency.pop_front();
        }
    }

    /// Rates over the last minute, the per-sample series for the sparkline, and latency
    /// percentiles over the samples kept.
    pub fn sample(&self) -> minijinja::Value {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let per_second = |a: &Sample, b: &Sample| -> (f64, f64) {
            let seconds = ((b.at_ms - a.at_ms) as f64 / 1000.0).max(0.001);
            (
                b.accepted.saturating_sub(a.accepted) as f64 / seconds,
                b.delivered.saturating_sub(a.delivered) as f64 / seconds,
            )
        };
        let last = inner.samples.back().copied();
        let minute_ago = inner
            .samples
            .iter()
            .rev()
            .find(|s| last.is_some_and(|l| l.at_ms - s.at_ms >= 60_000))
            .or(inner.samples.front())
            .copied();
        let (accepted, delivered) = match (minute_ago, last) {
            (Some(a), Some(b)) if b.at_ms > a.at_ms => per_second(&a, &b),
            _ => (0.0, 0.0),
        };
        let mut histogram = Vec::new();
        for slot in &inner.latency {
            for &(bucket, count) in slot {
                match histogram
                    .iter_mut()
                    .find(|(b, _): &&mut (i64, i64)| *b == bucket)
                {
                    Some((_, c)) => *c += count,
                    None => histogram.push((bucket, count)),
                }
            }
        }
        minijinja::context! {
            accepted_per_s => format!("{accepted:.1}"),
            delivered_per_s => format!("{delivered:.1}"),
            p50 => quantile(&histogram, 0.5),
            p99 => quantile(&histogram, 0.99),
            p9999 => quantile(&histogram, 0.9999),
            window_minutes => inner.samples.len() as u64 * SAMPLE_EVERY.as_secs() / 60,
        }
    }
}
