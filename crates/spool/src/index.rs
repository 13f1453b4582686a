//! The in-memory index: where each live message is on disk and which of its recipients are
//! done. Bodies and envelopes stay on disk; an entry is a few dozen bytes.
//!
//! It also decides when a segment file may be deleted. A segment can go once it holds no live
//! message **and** every segment its tombstones (Removed / RecipientsDone records) refer to is
//! gone; otherwise deleting it would resurrect finished messages or recipients at the next
//! recovery.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::id::MessageId;
use crate::id_map::IdMap;

/// Where a message lives and how far it has got. Kept small (40 bytes): one per queued
/// message, millions of them.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Delivery's next attempt (Unix ms), from the last Deferred record.
    pub next_attempt_ms: u64,
    /// Finished recipients as a bit set, for messages of up to 64 recipients; larger ones
    /// keep theirs in [`Index::wide_done`].
    done: u64,
    pub segment: u32,
    /// Position in the segment file; segments stay below 4 GiB (the configuration caps
    /// them at 2 GiB).
    pub offset: u32,
    /// Framed record length.
    pub len: u32,
    pub content_bytes: u32,
    pub rcpt_total: u32,
    /// Delivery attempts so far, from the last Deferred record.
    pub attempts: u16,
    /// An arrival notice was sent for it (it was inserted while delivery was subscribed):
    /// delivery's start-up listing leaves it to the notice, so it is admitted once.
    pub announced: bool,
}

/// Recipients a message's inline bit set covers.
const INLINE_RECIPIENTS: u32 = 64;

impl Entry {
    pub fn new(segment: u64, offset: u64, len: u32, content_bytes: u32, rcpt_total: u32) -> Entry {
        debug_assert!(offset <= u64::from(u32::MAX) && segment <= u64::from(u32::MAX));
        Entry {
            next_attempt_ms: 0,
            done: 0,
            segment: segment as u32,
            offset: offset as u32,
            len,
            content_bytes,
            rcpt_total,
            attempts: 0,
            announced: false,
        }
    }

    fn is_wide(&self) -> bool {
        self.rcpt_total > INLINE_RECIPIENTS
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
    pub messages: IdMap<Entry>,
    /// Finished-recipient bit sets of messages with more than 64 recipients.
    wide_done: HashMap<MessageId, Box<[u64]>>,
    segments: BTreeMap<u64, SegmentState>,
    recipients_pending: u64,
    content_bytes: u64,
}

impl Index {
    pub fn add_segment(&mut self, number: u64) {
        self.segments.entry(number).or_default();
    }

    /// Recipients of `entry` (message `id`) not yet final.
    pub fn rcpt_pending(&self, id: MessageId, entry: &Entry) -> u32 {
        let done = if entry.is_wide() {
            self.wide_done
                .get(&id)
                .map_or(0, |bits| bits.iter().map(|w| w.count_ones()).sum())
        } else {
            entry.done.count_ones()
        };
        entry.rcpt_total - done
    }

    /// Which of the message's recipients are final, in order.
    pub fn done_flags(&self, id: MessageId, entry: &Entry) -> Vec<bool> {
        let wide = if entry.is_wide() {
            self.wide_done.get(&id)
        } else {
            None
        };
        (0..entry.rcpt_total)
            .map(|i| match wide {
                Some(bits) => bits[(i / 64) as usize] & (1 << (i % 64)) != 0,
                None => !entry.is_wide() && entry.done & (1 << i) != 0,
            })
            .collect()
    }

    pub fn insert(&mut self, id: MessageId, entry: Entry) {
        self.recipients_pending += u64::from(entry.rcpt_total);
        self.content_bytes += u64::from(entry.content_bytes);
        self.segments
            .entry(u64::from(entry.segment))
            .or_default()
            .live += 1;
        if let Some(old) = self.messages.insert(id, entry) {
            // Ids are unique; a duplicate means a programming error or a replayed record.
            debug_assert!(false, "duplicate message id {id}");
            self.forget(id, &old);
        }
    }

    fn forget(&mut self, id: MessageId, entry: &Entry) {
        self.recipients_pending -= u64::from(self.rcpt_pending(id, entry));
        self.content_bytes -= u64::from(entry.content_bytes);
        if let Some(seg) = self.segments.get_mut(&u64::from(entry.segment)) {
            seg.live -= 1;
        }
        self.wide_done.remove(&id);
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
        let total = entry.rcpt_total;
        let bits: &mut [u64] = if entry.is_wide() {
            let words = total.div_ceil(64) as usize;
            self.wide_done
                .entry(id)
                .or_insert_with(|| vec![0u64; words].into_boxed_slice())
        } else {
            std::slice::from_mut(&mut entry.done)
        };
        let mut newly = 0u64;
        for &i in indices.iter().filter(|&&i| i < total) {
            let (word, bit) = ((i / 64) as usize, 1u64 << (i % 64));
            if bits[word] & bit == 0 {
                bits[word] |= bit;
                newly += 1;
            }
        }
        let segment = u64::from(entry.segment);
        self.recipients_pending -= newly;
        self.note_ref(record_segment, segment);
    }

    /// Marks a queued message announced (or not, for a later listing to find). False when
    /// it is not queued.
    pub fn set_announced(&mut self, id: MessageId, announced: bool) -> bool {
        match self.messages.get_mut(&id) {
            Some(entry) => {
                entry.announced = announced;
                true
            }
            None => false,
        }
    }

    /// Applies a Deferred record. It pins no segment: if its segment is reclaimed first the
    /// message is merely retried sooner after a restart.
    pub fn deferred(&mut self, id: MessageId, attempts: u32, next_attempt_ms: u64) {
        if let Some(entry) = self.messages.get_mut(&id) {
            entry.attempts = attempts.min(u32::from(u16::MAX)) as u16;
            entry.next_attempt_ms = next_attempt_ms;
        }
    }

    /// Applies a Removed record written in `record_segment`.
    pub fn remove(&mut self, id: MessageId, record_segment: u64) {
        let Some(entry) = self.messages.remove(&id) else {
            return;
        };
        self.forget(id, &entry);
        self.note_ref(record_segment, u64::from(entry.segment));
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
        Entry::new(segment, 0, 10, 5, rcpts)
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
        let e = index.messages.get(&MessageId(1)).expect("entry").clone();
        let flags = index.done_flags(MessageId(1), &e);
        assert!(flags[65] && !flags[64] && flags[0] && !flags[1]);
        // Up to 64 recipients the bit set is inline; the 64th is the last bit.
        index.insert(MessageId(2), entry(1, 64));
        index.recipients_done(MessageId(2), &[63, 64], 1);
        let e = index.messages.get(&MessageId(2)).expect("entry").clone();
        assert_eq!(index.rcpt_pending(MessageId(2), &e), 63);
        assert!(index.done_flags(MessageId(2), &e)[63]);
        index.remove(MessageId(1), 1);
        assert!(
            index.wide_done.is_empty(),
            "a wide bit set goes with its message"
        );
    }
}
