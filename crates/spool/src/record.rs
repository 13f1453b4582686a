//! On-disk record format. Every record is framed as
//!
//! ```text
//! payload_len: u32 LE | crc32(kind, payload): u32 LE | kind: u8 | payload
//! ```
//!
//! A record whose length runs past the end of the file or whose checksum does not match is a
//! torn or corrupt tail: recovery stops reading that segment there.

use crate::envelope::Envelope;
use crate::error::SpoolError;
use crate::id::MessageId;

/// Bytes before the payload: length, checksum and kind.
pub const FRAME_HEADER_BYTES: usize = 9;

/// Largest payload a record may claim; anything bigger is corruption, not a message.
pub const PAYLOAD_BYTES_MAX: u32 = 1 << 30;

/// What a record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A new message: envelope and content.
    Message {
        id: MessageId,
        envelope: Envelope,
        content: Vec<u8>,
    },
    /// These recipients (indices into the envelope) reached a final state.
    RecipientsDone { id: MessageId, indices: Vec<u32> },
    /// The message is finished and may be forgotten.
    Removed { id: MessageId },
    /// Delivery deferred the message: attempts so far and when to try next (Unix ms). Only
    /// a hint for scheduling after a restart; losing it means an earlier retry, nothing else.
    Deferred {
        id: MessageId,
        attempts: u32,
        next_attempt_ms: u64,
    },
}

const KIND_MESSAGE: u8 = 1;
const KIND_RECIPIENTS_DONE: u8 = 2;
const KIND_REMOVED: u8 = 3;
const KIND_DEFERRED: u8 = 4;

/// Appends the framed record to `out`.
#[cfg(any(test, feature = "fuzzing"))]
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    encode_with_prefix(record, &[], out);
}

/// Like [`encode`], with `prefix` stored in front of a message's content (the ingress's trace
/// headers), so the caller need not build a combined copy of the content first.
pub fn encode_with_prefix(record: &Record, prefix: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
    match record {
        Record::Message {
            id,
            envelope,
            content,
        } => {
            out[start + 8] = KIND_MESSAGE;
            out.extend_from_slice(&id.0.to_le_bytes());
            let env_start = out.len();
            out.extend_from_slice(&[0u8; 4]);
            envelope.encode(out);
            let env_len = (out.len() - env_start - 4) as u32;
            out[env_start..env_start + 4].copy_from_slice(&env_len.to_le_bytes());
            out.extend_from_slice(prefix);
            out.extend_from_slice(content);
        }
        Record::RecipientsDone { id, indices } => {
            out[start + 8] = KIND_RECIPIENTS_DONE;
            out.extend_from_slice(&id.0.to_le_bytes());
            out.extend_from_slice(&(indices.len() as u32).to_le_bytes());
            for index in indices {
                out.extend_from_slice(&index.to_le_bytes());
            }
        }
        Record::Removed { id } => {
            out[start + 8] = KIND_REMOVED;
            out.extend_from_slice(&id.0.to_le_bytes());
        }
        Record::Deferred {
            id,
            attempts,
            next_attempt_ms,
        } => {
            out[start + 8] = KIND_DEFERRED;
            out.extend_from_slice(&id.0.to_le_bytes());
            out.extend_from_slice(&attempts.to_le_bytes());
            out.extend_from_slice(&next_attempt_ms.to_le_bytes());
        }
    }
    let payload_len = (out.len() - start - FRAME_HEADER_BYTES) as u32;
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Result of looking at the bytes at the front of a buffer.
#[derive(Debug)]
pub enum Framed<'a> {
    /// A whole record with a valid checksum: kind, payload and total framed length.
    Ok {
        kind: u8,
        payload: &'a [u8],
        len: usize,
    },
    /// Not enough bytes for the record the header announces (torn write).
    Truncated,
    /// The checksum or length is wrong (corruption or a torn header).
    Corrupt,
}

/// Checks the frame at the start of `buf`.
pub fn frame(buf: &[u8]) -> Framed<'_> {
    if buf.len() < FRAME_HEADER_BYTES {
        return Framed::Truncated;
    }
    let payload_len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if payload_len > PAYLOAD_BYTES_MAX {
        return Framed::Corrupt;
    }
    let len = FRAME_HEADER_BYTES + payload_len as usize;
    if buf.len() < len {
        return Framed::Truncated;
    }
    if crc32fast::hash(&buf[8..len]) != crc {
        return Framed::Corrupt;
    }
    Framed::Ok {
        kind: buf[8],
        payload: &buf[FRAME_HEADER_BYTES..len],
        len,
    }
}

/// Decodes a checksummed payload. `with_content` false skips copying message content.
pub fn decode(kind: u8, payload: &[u8], with_content: bool) -> Result<Record, SpoolError> {
    let id_bytes: [u8; 16] = payload
        .get(..16)
        .and_then(|b| b.try_into().ok())
        .ok_or(SpoolError::Corrupt("short id"))?;
    let id = MessageId(u128::from_le_bytes(id_bytes));
    let rest = &payload[16..];
    match kind {
        KIND_MESSAGE => {
            let env_len = rest
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
            let env_len = env_len.ok_or(SpoolError::Corrupt("short envelope length"))?;
            let env_bytes = rest
                .get(4..4 + env_len)
                .ok_or(SpoolError::Corrupt("short envelope"))?;
            let envelope = Envelope::decode(env_bytes)?;
            let content = if with_content {
                rest[4 + env_len..].to_vec()
            } else {
                Vec::new()
            };
            Ok(Record::Message {
                id,
                envelope,
                content,
            })
        }
        KIND_RECIPIENTS_DONE => {
            let count = rest
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
            let count = count.ok_or(SpoolError::Corrupt("short index count"))?;
            let body = &rest[4..];
            if body.len() != count * 4 {
                return Err(SpoolError::Corrupt("index count mismatch"));
            }
            let indices = body
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok(Record::RecipientsDone { id, indices })
        }
        KIND_REMOVED if rest.is_empty() => Ok(Record::Removed { id }),
        KIND_REMOVED => Err(SpoolError::Corrupt("trailing bytes in a removal")),
        KIND_DEFERRED => {
            let fields: [u8; 12] = rest
                .try_into()
                .map_err(|_| SpoolError::Corrupt("deferral length"))?;
            let mut attempts = [0u8; 4];
            attempts.copy_from_slice(&fields[..4]);
            let mut next = [0u8; 8];
            next.copy_from_slice(&fields[4..]);
            Ok(Record::Deferred {
                id,
                attempts: u32::from_le_bytes(attempts),
                next_attempt_ms: u64::from_le_bytes(next),
            })
        }
        _ => Err(SpoolError::Corrupt("unknown record kind")),
    }
}

/// The id and envelope of a message record from the start of its payload; `env_end` is
/// [`message_content_offset`] of that payload.
pub fn decode_message_head(
    kind: u8,
    payload: &[u8],
    env_end: usize,
) -> Result<(MessageId, Envelope), SpoolError> {
    if kind != KIND_MESSAGE {
        return Err(SpoolError::Corrupt(
            "index points at a record that is not a message",
        ));
    }
    let id_bytes: [u8; 16] = payload
        .get(..16)
        .and_then(|b| b.try_into().ok())
        .ok_or(SpoolError::Corrupt("short id"))?;
    let envelope = Envelope::decode(
        payload
            .get(20..env_end)
            .ok_or(SpoolError::Corrupt("short envelope"))?,
    )?;
    Ok((MessageId(u128::from_le_bytes(id_bytes)), envelope))
}

/// Offset of the content inside a message record's payload, for reading the body alone.
pub fn message_content_offset(payload_prefix: &[u8]) -> Option<usize> {
    let b = payload_prefix.get(16..20)?;
    Some(20 + u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}
