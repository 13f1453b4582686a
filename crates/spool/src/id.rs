//! Message ids: 128 bits, time-ordered, unique across restarts.
//!
//! Layout: 48 bits of Unix milliseconds, then 80 bits that start at a random value per
//! process and count up. Ids sort by arrival time, so listing the queue in id order is
//! listing it oldest first. Across restarts the generator starts above the largest id
//! recovered from disk, so a clock that stepped back cannot reissue an id.

use std::fmt;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// A spooled message's id. Text form: 26 characters of Crockford base32 (ULID layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub u128);

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl MessageId {
    /// Milliseconds since the Unix epoch at which the id was made.
    pub fn timestamp_ms(self) -> u64 {
        (self.0 >> 80) as u64
    }

    /// Parses the 26-character text form (case-insensitive).
    pub fn parse(text: &str) -> Option<MessageId> {
        if text.len() != 26 {
            return None;
        }
        let mut value: u128 = 0;
        for (i, ch) in text.bytes().enumerate() {
            let digit = ALPHABET
                .iter()
                .position(|&a| a == ch.to_ascii_uppercase())? as u128;
            // The first character carries only 3 bits (26 * 5 = 130 > 128).
            if i == 0 && digit > 7 {
                return None;
            }
            value = (value << 5) | digit;
        }
        Some(MessageId(value))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 26];
        let mut value = self.0;
        for slot in out.iter_mut().rev() {
            *slot = ALPHABET[(value & 31) as usize];
            value >>= 5;
        }
        // The alphabet is ASCII, so this cannot fail.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

/// Hands out strictly increasing ids.
#[derive(Debug)]
pub struct IdGenerator {
    last: Mutex<u128>,
}

impl IdGenerator {
    /// A generator whose ids are all greater than `floor` (the largest id on disk).
    pub fn new(floor: Option<MessageId>) -> Self {
        IdGenerator {
            last: Mutex::new(floor.map_or(0, |id| id.0)),
        }
    }

    /// The next id.
    pub fn next(&self) -> MessageId {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let random: u128 = rand::random::<u128>() & ((1u128 << 79) - 1);
        let candidate = ((now_ms & ((1 << 48) - 1)) << 80) | random;
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let id = if candidate > *last {
            candidate
        } else {
            *last + 1
        };
        *last = id;
        MessageId(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_roundtrip_and_order() {
        let generator = IdGenerator::new(None);
        let ids: Vec<MessageId> = (0..1000).map(|_| generator.next()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(
                pair[0].to_string() < pair[1].to_string(),
                "text form must sort like ids"
            );
        }
        for id in &ids {
            assert_eq!(MessageId::parse(&id.to_string()), Some(*id));
        }
        assert_eq!(MessageId::parse("short"), None);
        assert_eq!(MessageId::parse("8ZZZZZZZZZZZZZZZZZZZZZZZZZ"), None);
    }

    #[test]
    fn floor_from_disk_wins_over_clock() {
        let future = MessageId(u128::MAX - 10);
        let generator = IdGenerator::new(Some(future));
        assert!(generator.next() > future);
    }
}
