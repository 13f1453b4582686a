//! Start-up recovery: replays every segment into a fresh index.
//!
//! Records are replayed in write order (segments ascending, records in file order), so a
//! Removed record always follows the Message it removes. Reading a segment stops at the first
//! record that is truncated or fails its checksum: everything before it is kept, the tail is
//! dropped (and cut off the newest segment, the only one a crash can tear).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::SpoolError;
use crate::id::MessageId;
use crate::index::{Entry, Index};
use crate::record::{self, Framed, Record};
use crate::segment;

/// What recovery found, for the start-up log line and the benchmark.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    /// Segment files read.
    pub segments: u64,
    /// Records replayed.
    pub records: u64,
    /// Messages still queued after replay.
    pub messages: u64,
    /// Bytes dropped from torn or corrupt tails.
    pub dropped_bytes: u64,
    /// Segment files that were empty or had no valid header and were deleted.
    pub discarded_segments: u64,
    /// Wall time of the scan.
    pub duration: Duration,
}

pub(crate) struct Recovered {
    pub index: Index,
    pub max_id: Option<MessageId>,
    pub last_segment: u64,
    pub report: RecoveryReport,
}

pub(crate) fn recover(dir: &Path) -> Result<Recovered, SpoolError> {
    let started = Instant::now();
    let numbers = segment::list(dir)?;
    let mut index = Index::default();
    let mut report = RecoveryReport::default();
    let mut max_id = None;
    let newest = numbers.last().copied();
    for &number in &numbers {
        let path = segment::path(dir, number);
        let data = std::fs::read(&path)?;
        if data.len() < segment::MAGIC.len() || &data[..segment::MAGIC.len()] != segment::MAGIC {
            // Only a crash during creation leaves a segment without its header, and no record
            // was ever acknowledged from it.
            tracing::warn!(
                segment = number,
                bytes = data.len(),
                "discarding segment without header"
            );
            std::fs::remove_file(&path)?;
            report.discarded_segments += 1;
            continue;
        }
        index.add_segment(number);
        report.segments += 1;
        let valid_end = replay(&data, number, &mut index, &mut max_id, &mut report)?;
        if valid_end < data.len() {
            let dropped = data.len() - valid_end;
            report.dropped_bytes += dropped as u64;
            tracing::warn!(
                segment = number,
                offset = valid_end,
                dropped,
                "dropping torn or corrupt spool tail"
            );
            if Some(number) == newest {
                let file = std::fs::OpenOptions::new().write(true).open(&path)?;
                file.set_len(valid_end as u64)?;
                file.sync_all()?;
            }
        }
    }
    report.messages = index.totals().messages;
    report.duration = started.elapsed();
    Ok(Recovered {
        index,
        max_id,
        last_segment: newest.unwrap_or(0),
        report,
    })
}

/// Replays one segment; returns the offset where valid records end.
fn replay(
    data: &[u8],
    number: u64,
    index: &mut Index,
    max_id: &mut Option<MessageId>,
    report: &mut RecoveryReport,
) -> Result<usize, SpoolError> {
    let mut offset = segment::MAGIC.len();
    while offset < data.len() {
        let Framed::Ok { kind, payload, len } = record::frame(&data[offset..]) else {
            return Ok(offset);
        };
        // A record with a good checksum that does not decode was written by a different
        // version or a bug; stop here rather than guess.
        let Ok(decoded) = record::decode(kind, payload, false) else {
            return Ok(offset);
        };
        match decoded {
            Record::Message { id, envelope, .. } => {
                let content_offset =
                    record::message_content_offset(payload).unwrap_or(payload.len());
                let entry = Entry::new(
                    number,
                    offset as u64,
                    len as u32,
                    (payload.len() - content_offset.min(payload.len())) as u32,
                    envelope.recipients.len() as u32,
                );
                *max_id = (*max_id).max(Some(id));
                index.insert(id, entry);
            }
            Record::RecipientsDone { id, indices } => index.recipients_done(id, &indices, number),
            Record::Removed { id } => index.remove(id, number),
            Record::Deferred {
                id,
                attempts,
                next_attempt_ms,
            } => index.deferred(id, attempts, next_attempt_ms),
        }
        report.records += 1;
        offset += len;
    }
    Ok(offset)
}
