//! The server's own counters for an objective: good and total events per slot (a minute
//! for the burn-rate windows, an hour for the budget's period), in a ring, so a window's
//! counts are a sum of slots.

use std::time::Duration;

use crate::budget::Counts;

/// Counts per slot for the last `span`.
#[derive(Debug, Clone)]
pub struct MinuteCounts {
    /// (slot number, counts) per slot; a slot holding an older number is empty.
    slots: Vec<(i64, Counts)>,
    slot_ms: i64,
}

impl MinuteCounts {
    /// Per minute.
    pub fn new(span: Duration) -> MinuteCounts {
        MinuteCounts::with_slot(span, Duration::from_secs(60))
    }

    /// Per `slot`.
    pub fn with_slot(span: Duration, slot: Duration) -> MinuteCounts {
        let slot_ms = (slot.as_millis() as i64).max(1);
        let slots = (span.as_millis() as i64 / slot_ms).max(1) as usize + 1;
        MinuteCounts {
            slots: vec![(i64::MIN, Counts::default()); slots],
            slot_ms,
        }
    }

    /// Adds events at `now_ms`.
    pub fn record(&mut self, now_ms: i64, good: u64, total: u64) {
        let minute = now_ms.div_euclid(self.slot_ms);
        let len = self.slots.len() as i64;
        let slot = &mut self.slots[minute.rem_euclid(len) as usize];
        if slot.0 != minute {
            *slot = (minute, Counts::default());
        }
        slot.1.good += good;
        slot.1.total += total;
    }

    pub fn slot_ms(&self) -> i64 {
        self.slot_ms
    }

    /// The slot holding `now_ms` and the one before, with their counts (what changed
    /// lately, for saving).
    pub fn recent(&self, now_ms: i64) -> Vec<(i64, Counts)> {
        let now = now_ms.div_euclid(self.slot_ms);
        self.slots
            .iter()
            .filter(|(slot, c)| (now - 1..=now).contains(slot) && c.total > 0)
            .copied()
            .collect()
    }

    /// Puts back a saved slot (one older than the ring's span is ignored by `counts`).
    pub fn restore(&mut self, slot: i64, counts: Counts) {
        let len = self.slots.len() as i64;
        self.slots[slot.rem_euclid(len) as usize] = (slot, counts);
    }

    /// The counts of the last `window` up to `now_ms` (whole slots, the current one
    /// included).
    pub fn counts(&self, now_ms: i64, window: Duration) -> Counts {
        let now = now_ms.div_euclid(self.slot_ms);
        let minutes = (window.as_millis() as i64 / self.slot_ms).max(1);
        let oldest = now - minutes + 1;
        let mut out = Counts::default();
        for (minute, counts) in &self.slots {
            if (oldest..=now).contains(minute) {
                out.good += counts.good;
                out.total += counts.total;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE_MS: i64 = 60_000;

    #[test]
    fn windows_sum_their_minutes_and_forget_older_ones() {
        let mut c = MinuteCounts::new(Duration::from_secs(3600));
        let t0 = 1_000 * MINUTE_MS;
        c.record(t0, 10, 10);
        c.record(t0 + 30_000, 5, 6);
        c.record(t0 + 10 * MINUTE_MS, 1, 2);
        let five = Duration::from_secs(300);
        assert_eq!(
            c.counts(t0 + 10 * MINUTE_MS, five),
            Counts { good: 1, total: 2 }
        );
        assert_eq!(
            c.counts(t0 + 10 * MINUTE_MS, Duration::from_secs(3600)),
            Counts {
                good: 16,
                total: 18
            }
        );
        // Two hours on, the slots of t0 are reused: nothing old is counted.
        c.record(t0 + 61 * MINUTE_MS, 1, 1);
        assert_eq!(
            c.counts(t0 + 61 * MINUTE_MS, Duration::from_secs(3600)),
            Counts { good: 2, total: 3 }
        );
        assert_eq!(
            c.counts(t0 + 200 * MINUTE_MS, Duration::from_secs(3600)),
            Counts::default()
        );
    }
}
