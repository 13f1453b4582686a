//! Removing finished messages' records in bulk. Deleting each record through JetStream's API
//! (a replicated operation the stream's leader handles one at a time) starves the copies of
//! new messages, so each shard keeps a watermark instead: the lowest sequence of this node
//! that may still be needed (a live message's record, or a record still being published,
//! whose sequence will be above what was acknowledged when it was sent). Everything of this
//! node below the watermark is purged in one request per shard, twice a second.
//!
//! A long-lived message (deferred for days) holds its shard's watermark back; records that
//! finished above it are deleted one by one after `STUCK_AFTER`, as before.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// How often the shards are purged.
pub(super) const PURGE_EVERY: Duration = Duration::from_millis(500);
/// Finished records above a watermark held this long are deleted one by one.
pub(super) const STUCK_AFTER: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(super) struct Marks {
    /// Sequences of live records (a count, in case a sequence is tracked twice).
    live: BTreeMap<u64, u32>,
    /// For each publish in flight: the shard's highest acknowledged sequence when it left.
    in_flight: BTreeMap<u64, u32>,
    last_acked: u64,
    purged_to: u64,
    /// Records that finished above the watermark, oldest first.
    finished: VecDeque<(u64, Instant)>,
}

fn take(map: &mut BTreeMap<u64, u32>, key: u64) {
    if let Some(n) = map.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            map.remove(&key);
        }
    }
}

impl Marks {
    /// A publish leaves: returns its floor (its sequence will be above it).
    pub(super) fn sending(&mut self) -> u64 {
        let floor = self.last_acked;
        *self.in_flight.entry(floor).or_default() += 1;
        floor
    }

    /// A publish ended: stored at `seq`, or not at all.
    pub(super) fn sent(&mut self, floor: u64, seq: Option<u64>) {
        take(&mut self.in_flight, floor);
        if let Some(seq) = seq {
            self.last_acked = self.last_acked.max(seq);
        }
    }

    pub(super) fn live(&mut self, seq: u64) {
        *self.live.entry(seq).or_default() += 1;
    }

    pub(super) fn finished(&mut self, seq: u64, now: Instant) {
        take(&mut self.live, seq);
        if seq >= self.watermark() {
            self.finished.push_back((seq, now));
        }
    }

    /// Everything of this node below it can go.
    pub(super) fn watermark(&self) -> u64 {
        let mut mark = self.last_acked + 1;
        if let Some((&seq, _)) = self.live.first_key_value() {
            mark = mark.min(seq);
        }
        if let Some((&floor, _)) = self.in_flight.first_key_value() {
            mark = mark.min(floor + 1);
        }
        mark
    }

    /// The watermark, when it moved past what was purged.
    pub(super) fn to_purge(&self) -> Option<u64> {
        let mark = self.watermark();
        (mark > self.purged_to.max(1)).then_some(mark)
    }

    pub(super) fn purged(&mut self, mark: u64) {
        self.purged_to = self.purged_to.max(mark);
        self.finished.retain(|(seq, _)| *seq >= mark);
    }

    /// Finished records held above the watermark for too long: to delete one by one.
    pub(super) fn stuck(&mut self, now: Instant) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some(&(seq, at)) = self.finished.front() {
            if now.duration_since(at) < STUCK_AFTER {
                break;
            }
            self.finished.pop_front();
            out.push(seq);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_never_passes_a_live_record_or_a_publish_in_flight() {
        let now = Instant::now();
        let mut marks = Marks::default();
        assert_eq!(marks.to_purge(), None, "nothing published yet");
        // Three records land at 10, 11, 12; 10 finishes, 11 stays live.
        for seq in [10, 11, 12] {
            let floor = marks.sending();
            marks.sent(floor, Some(seq));
            marks.live(seq);
        }
        marks.finished(10, now);
        assert_eq!(marks.watermark(), 11);
        marks.finished(12, now);
        assert_eq!(marks.watermark(), 11, "11 is live: 12 waits above it");
        // A publish leaves while 11 finishes: its record will land above 12.
        let floor = marks.sending();
        marks.finished(11, now);
        assert_eq!(marks.watermark(), 13);
        assert_eq!(marks.to_purge(), Some(13));
        marks.purged(13);
        assert_eq!(marks.to_purge(), None);
        marks.sent(floor, Some(20));
        marks.live(20);
        assert_eq!(marks.watermark(), 20);
        // A long-lived record holds the mark; what finishes above it goes one by one later.
        let floor = marks.sending();
        marks.sent(floor, Some(21));
        marks.live(21);
        marks.finished(21, now);
        assert!(marks.stuck(now).is_empty());
        assert_eq!(marks.stuck(now + STUCK_AFTER), vec![21]);
        assert_eq!(marks.watermark(), 20);
    }
}
