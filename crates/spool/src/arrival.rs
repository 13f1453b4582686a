//! Arrival notices: how the delivery engine learns of each newly durable message.
//!
//! A notice can carry the message's record as it was just written ([`Stored`]), so the first
//! delivery attempt reads neither the envelope nor the content back from disk. The bytes are
//! the writer's own buffer, moved rather than copied; the consumer's budget bounds how many
//! such bytes exist at once, and notices beyond it carry the id alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::envelope::Envelope;
use crate::error::SpoolError;
use crate::id::MessageId;
use crate::record;

/// A newly durable message.
#[derive(Debug)]
pub struct Arrival {
    pub id: MessageId,
    /// The record in memory, when the budget allowed.
    pub stored: Option<Stored>,
}

/// A message record held in memory; dropping it returns its bytes to the budget.
pub struct Stored {
    record: Vec<u8>,
    content_start: usize,
    budget: Arc<Budget>,
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stored")
            .field("bytes", &self.record.len())
            .finish()
    }
}

impl Stored {
    /// The envelope, decoded from the record.
    pub fn envelope(&self) -> Result<Envelope, SpoolError> {
        let payload = &self.record[record::FRAME_HEADER_BYTES..];
        let env_end = self.content_start - record::FRAME_HEADER_BYTES;
        record::decode_message_head(self.record[8], payload, env_end).map(|(_, e)| e)
    }

    /// The message content as stored.
    pub fn content(&self) -> &[u8] {
        &self.record[self.content_start..]
    }
}

impl Drop for Stored {
    fn drop(&mut self) {
        self.budget
            .used
            .fetch_sub(self.record.len(), Ordering::Relaxed);
    }
}

/// Bytes of records that arrival notices may hold in memory at once.
#[derive(Debug)]
pub(crate) struct Budget {
    max: usize,
    used: AtomicUsize,
}

impl Budget {
    pub fn new(max: usize) -> Arc<Budget> {
        Arc::new(Budget {
            max,
            used: AtomicUsize::new(0),
        })
    }

    /// Keeps `record` (a framed message record) when it fits the budget.
    pub fn keep(self: &Arc<Self>, record: Vec<u8>) -> Option<Stored> {
        let payload = record.get(record::FRAME_HEADER_BYTES..)?;
        let content_start = record::message_content_offset(payload)? + record::FRAME_HEADER_BYTES;
        if content_start > record.len() {
            return None;
        }
        let len = record.len();
        let used = self.used.fetch_add(len, Ordering::Relaxed);
        if used + len > self.max {
            self.used.fetch_sub(len, Ordering::Relaxed);
            return None;
        }
        Some(Stored {
            record,
            content_start,
            budget: self.clone(),
        })
    }
}
