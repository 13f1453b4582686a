//! The retry timer: deferred parts by due time. A deferred backlog can be millions of
//! parts, so a waiting part is kept in a compact form ([`Deferred`], 64 bytes: no sender,
//! no record, one recipient inline) in a binary heap (a dense vector grown by a quarter at
//! a time, rather than a B-tree whose append-ordered nodes stay half full). Taking the due
//! parts is O(log n) each; operator commands that pick parts by filter rebuild the heap.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spool::MessageId;

use super::Part;

/// A part's recipient indices: almost always one, kept inline.
#[derive(Debug, Clone)]
enum Rcpts {
    One([u32; 1]),
    Many(Box<[u32]>),
}

impl Rcpts {
    fn from_vec(rcpts: Vec<u32>) -> Rcpts {
        match rcpts.as_slice() {
            [one] => Rcpts::One([*one]),
            _ => Rcpts::Many(rcpts.into_boxed_slice()),
        }
    }

    fn as_slice(&self) -> &[u32] {
        match self {
            Rcpts::One(one) => one,
            Rcpts::Many(many) => many,
        }
    }
}

/// A deferred part as the timer keeps it.
#[derive(Debug, Clone)]
pub struct Deferred {
    pub id: MessageId,
    pub domain: Arc<str>,
    rcpts: Rcpts,
    pub received_ms: u64,
    /// Due, in milliseconds since the timer's origin.
    due_ms: u32,
    attempts: u16,
    delay_warned: bool,
}

impl Deferred {
    /// Indices into the envelope's recipients.
    pub fn rcpts(&self) -> &[u32] {
        self.rcpts.as_slice()
    }

    fn into_part(self) -> Part {
        Part {
            id: self.id,
            domain: self.domain,
            rcpts: match self.rcpts {
                Rcpts::One([one]) => vec![one],
                Rcpts::Many(many) => many.into_vec(),
            },
            attempts: u32::from(self.attempts),
            received_ms: self.received_ms,
            delay_warned: self.delay_warned,
            fresh: None,
        }
    }
}

impl PartialEq for Deferred {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Deferred {}

impl PartialOrd for Deferred {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Deferred {
    /// Reversed, so the heap's top is the earliest; equal times go oldest message first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due_ms, other.id).cmp(&(self.due_ms, self.id))
    }
}

/// The timer.
pub struct Timer {
    heap: BinaryHeap<Deferred>,
    /// What due times count from.
    origin: Instant,
}

impl Default for Timer {
    fn default() -> Self {
        Timer {
            heap: BinaryHeap::new(),
            origin: Instant::now(),
        }
    }
}

impl Timer {
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    fn due_ms(&self, at: Instant) -> u32 {
        let ms = at.saturating_duration_since(self.origin).as_millis();
        // 49 days from the origin; nothing waits that long (retries end after 5 days).
        ms.min(u128::from(u32::MAX)) as u32
    }

    /// When a deferred part is due (to the millisecond: it may come back up to 1 ms early).
    pub fn due(&self, deferred: &Deferred) -> Instant {
        self.origin + Duration::from_millis(u64::from(deferred.due_ms))
    }

    /// Adds a part; true when it is now the earliest.
    pub fn push(&mut self, part: Part, due: Instant) -> bool {
        let due_ms = self.due_ms(due);
        let earliest = self.heap.peek().is_none_or(|top| due_ms < top.due_ms);
        if self.heap.len() == self.heap.capacity() {
            // Grow by a quarter: doubling would leave up to half of a large backlog's
            // memory unused.
            self.heap.reserve_exact((self.heap.len() / 4).max(64));
        }
        self.heap.push(Deferred {
            id: part.id,
            domain: part.domain,
            rcpts: Rcpts::from_vec(part.rcpts),
            received_ms: part.received_ms,
            due_ms,
            attempts: part.attempts.min(u32::from(u16::MAX)) as u16,
            delay_warned: part.delay_warned,
        });
        earliest
    }

    /// Removes and returns every part due by `now`, earliest first.
    pub fn take_due(&mut self, now: Instant) -> Vec<Part> {
        let now_ms = self.due_ms(now);
        let mut due = Vec::new();
        while self.heap.peek().is_some_and(|top| top.due_ms <= now_ms) {
            if let Some(deferred) = self.heap.pop() {
                due.push(deferred.into_part());
            }
        }
        due
    }

    /// When the earliest part is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|top| self.due(top))
    }

    /// Every deferred part, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Deferred> {
        self.heap.iter()
    }

    /// Removes and returns the parts `pick` chooses.
    pub fn take_where(&mut self, mut pick: impl FnMut(&Deferred) -> bool) -> Vec<Part> {
        let all = std::mem::take(&mut self.heap).into_vec();
        let (taken, kept): (Vec<Deferred>, Vec<Deferred>) = all.into_iter().partition(|d| pick(d));
        self.heap = BinaryHeap::from(kept);
        taken.into_iter().map(Deferred::into_part).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compact form is what makes a 10 M backlog fit: keep it at 64 bytes.
    #[test]
    fn a_deferred_part_is_64_bytes() {
        assert_eq!(std::mem::size_of::<Deferred>(), 64);
    }

    #[test]
    fn parts_come_back_whole() {
        let mut timer = Timer::default();
        let due = Instant::now();
        let part = |n: u128, rcpts: Vec<u32>| Part {
            id: MessageId(n),
            domain: Arc::from("example.com"),
            rcpts,
            attempts: 3,
            received_ms: 42,
            delay_warned: true,
            fresh: None,
        };
        timer.push(part(1, vec![7]), due);
        timer.push(part(2, vec![1, 2, 3]), due);
        let back = timer.take_due(due);
        assert_eq!(back.len(), 2);
        assert_eq!(
            (back[0].id, back[0].rcpts.as_slice()),
            (MessageId(1), &[7][..])
        );
        assert_eq!(back[1].rcpts, [1, 2, 3]);
        assert!(
            back.iter()
                .all(|p| p.attempts == 3 && p.delay_warned && p.received_ms == 42)
        );
    }
}
