//! The in-memory index: where each live message is on disk and which of its recipients are
//! done. Bodies and envelopes stay on disk; an entry is a few dozen bytes.
//!
//! It also decides when a segment file may be deleted. A segment can go once it holds no live
//! message **and** every segment its tombstones (Removed / RecipientsDone records) refer to is
//! gone; otherwise deleting it would resurrect finished messages or recipients at the next
//! recovery.

use std::collections::{BTreeMap, BTreeSet};

use crate::id::MessageId;

/// Where a message lives and how far it has got.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub segment: u64,
    pub offset: u64,
    /// Framed record length.
    pub len: u32,
    pub content_bytes: u32,
    pub rcpt_total: u32,
    /// Bit set of finished recipients; `None` until the first one finishes.
    pub done: Option<Box<[u64]>>,
    /// Delivery attempts so far and the next one (Unix ms), from the last Deferred record.
    pub attempts: u32,
    pub next_attempt_ms: u64,
}

impl Entry {
    pub fn rcpt_pending(&self) -> u32 {
        let done: u32 = self
            .done
            .as_ref()
            .map_or(0, |bits| bits.iter().map(|w| w.count_ones()).sum());
        self.rcpt_total - done
    }

    pub fn is_done(&self, index: u32) -> bool {
        self.done
            .as_ref()
            .is_some_and(|bits| bits[(index / 64) as usize] & (1 << (index % 64)) != 0)
    }
}

#[derive(Debug, Default)]
struct SegmentState {
    live: u64,
    /// Older segments holding messages that this segment's tombstones refer to.
    refs: BTreeSet<u64>,
}

/// Totals for the queue view and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Messages in the spool.
    pub messages: u64,
    /// Recipients not yet in a final state.
    pub recipients_pending: u64,
    /// Sum of message content sizes.
    pub content_bytes: u64,
    /// Segment files on disk.
    pub segments: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    pub messages: BTreeMap<MessageId, Entry>,
    segments: BTreeMap<u64, SegmentState>,
    recipients_pending: u64,
    content_bytes: u64,
}

impl Index {
    pub fn add_segment(&mut self, number: u64) {
        self.segments.entry(number).or_default();
    }

    pub fn insert(&mut self, id: MessageId, entry: Entry) {
        self.recipients_pending += u64::from(entry.rcpt_pending());
        self.content_bytes += u64::from(entry.content_bytes);
        self.segments.entry(entry.segment).or_default().live += 1;
        if let Some(old) = self.messages.insert(id, entry) {
            // Ids are unique; a duplicate means a programming error or a replayed record.
            debug_assert!(false, "duplicate message id {id}");
            self.forget(&old);
        }
    }

    fn forget(&mut self, entry: &Entry) {
        self.recipients_pending -= u64::from(entry.rcpt_pending());
        self.content_bytes -= u64::from(entry.content_bytes);
        if let Some(seg) = self.segments.get_mut(&entry.segment) {
            seg.live -= 1;
        }
    }

    fn note_ref(&mut self, record_segment: u64, message_segment: u64) {
        if record_segment != message_segment {
            self.segments
                .entry(record_segment)
                .or_default()
                .refs
                .insert(message_segment);
        }
    }

    /// Applies a RecipientsDone record written in `record_segment`.
    pub fn recipients_done(&mut self, id: MessageId, indices: &[u32], record_segment: u64) {
        let Some(entry) = self.messages.get_mut(&id) else {
            return;
        };
        let words = entry.rcpt_total.div_ceil(64) as usize;
        let bits = entry
            .done
            .get_or_insert_with(|| vec![0u64; words].into_boxed_slice());
        let mut newly = 0u64;
        for &i in indices.iter().filter(|&&i| i < entry.rcpt_total) {
            let (word, bit) = ((i / 64) as usize, 1u64 << (i % 64));
            if bits[word] & bit == 0 {
                bits[word] |= bit;
                newly += 1;
            }
        }
        let segment = entry.segment;
        self.recipients_pending -= newly;
        self.note_ref(record_segment, segment);
    }

    /// Applies a Deferred record. It pins no segment: if its segment is reclaimed first the
    /// message is merely retried sooner after a restart.
    pub fn deferred(&mut self, id: MessageId, attempts: u32, next_attempt_ms: u64) {
        if let Some(entry) = self.messages.get_mut(&id) {
            entry.attempts = attempts;
            entry.next_attempt_ms = next_attempt_ms;
        }
    }

    /// Applies a Removed record written in `record_segment`.
    pub fn remove(&mut self, id: MessageId, record_segment: u64) {
        let Some(entry) = self.messages.remove(&id) else {
            return;
        };
        self.forget(&entry);
        self.note_ref(record_segment, entry.segment);
    }

    /// Segments that may be deleted now, ascending (the order they must be unlinked in).
    pub fn reclaimable(&self, active: u64) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        for (&number, state) in &self.segments {
            if number == active || state.live > 0 {
                continue;
            }
            let refs_gone = state
                .refs
                .iter()
                .all(|r| !self.segments.contains_key(r) || out.contains(r));
            if refs_gone {
                out.push(number);
            }
        }
        out
    }

    pub fn drop_segment(&mut self, number: u64) {
        self.segments.remove(&number);
    }

    pub fn totals(&self) -> Totals {
        Totals {
            messages: self.messages.len() as u64,
            recipients_pending: self.recipients_pending,
            content_bytes: self.content_bytes,
            segments: self.segments.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(segment: u64, rcpts: u32) -> Entry {
        Entry {
            segment,
            offset: 0,
            len: 10,
            content_bytes: 5,
            rcpt_total: rcpts,
            done: None,
            attempts: 0,
            next_attempt_ms: 0,
        }
    }

    #[test]
    fn tombstone_segment_outlives_the_segment_it_refers_to() {
        let mut index = Index::default();
        index.add_segment(1);
        index.add_segment(2);
        index.add_segment(3);
        index.insert(MessageId(1), entry(1, 1));
        index.insert(MessageId(2), entry(1, 1));
        // Segment 2 holds the tombstone of message 1; message 2 still pins segment 1.
        index.remove(MessageId(1), 2);
        assert_eq!(index.reclaimable(3), Vec::<u64>::new());
        index.remove(MessageId(2), 3);
        assert_eq!(index.reclaimable(3), vec![1, 2]);
    }

    #[test]
    fn recipients_done_counts_once() {
        let mut index = Index::default();
        index.insert(MessageId(1), entry(1, 70));
        index.recipients_done(MessageId(1), &[0, 65, 65, 99], 1);
        assert_eq!(index.totals().recipients_pending, 68);
        let e = &index.messages[&MessageId(1)];
        assert!(e.is_done(65) && !e.is_done(64));
    }
}
