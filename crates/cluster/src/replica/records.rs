//! The small bookkeeping records kept beside a message in its shard: which recipients are
//! final (`D`), that a held message was released to delivery (`R`), and that the message is
//! finished (`X`: its records wait for the shard's purge, and nobody may take it over).

use spool::MessageId;

/// Header naming the message a record belongs to.
pub(crate) const ID_HEADER: &str = "Tsubame-Id";

const DONE: u8 = b'D';
const RELEASED: u8 = b'R';
const REMOVED: u8 = b'X';

pub(crate) fn done(id: MessageId, indices: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(17 + indices.len() * 4);
    out.push(DONE);
    out.extend_from_slice(&id.0.to_le_bytes());
    for index in indices {
        out.extend_from_slice(&index.to_le_bytes());
    }
    out
}

pub(crate) fn released(id: MessageId) -> Vec<u8> {
    let mut out = Vec::with_capacity(17);
    out.push(RELEASED);
    out.extend_from_slice(&id.0.to_le_bytes());
    out
}

pub(crate) fn removed(id: MessageId) -> Vec<u8> {
    let mut out = Vec::with_capacity(17);
    out.push(REMOVED);
    out.extend_from_slice(&id.0.to_le_bytes());
    out
}

/// A bookkeeping record read back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Note {
    Done(MessageId, Vec<u32>),
    Released(MessageId),
    Removed(MessageId),
}

pub(crate) fn parse(bytes: &[u8]) -> Option<Note> {
    let (&kind, rest) = bytes.split_first()?;
    let id = MessageId(u128::from_le_bytes(rest.get(..16)?.try_into().ok()?));
    let tail = &rest[16..];
    match kind {
        DONE if tail.len() % 4 == 0 => Some(Note::Done(
            id,
            tail.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )),
        RELEASED if tail.is_empty() => Some(Note::Released(id)),
        REMOVED if tail.is_empty() => Some(Note::Removed(id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_read_back_and_garbage_does_not() {
        let id = MessageId(0x1234_5678_9abc_def0_1122_3344_5566_7788);
        assert_eq!(
            parse(&done(id, &[0, 7, 300])),
            Some(Note::Done(id, vec![0, 7, 300]))
        );
        assert_eq!(parse(&done(id, &[])), Some(Note::Done(id, vec![])));
        assert_eq!(parse(&released(id)), Some(Note::Released(id)));
        assert_eq!(parse(&removed(id)), Some(Note::Removed(id)));
        assert_eq!(parse(b""), None);
        assert_eq!(parse(&done(id, &[1])[..19]), None);
        assert_eq!(parse(b"Q0123456789abcdef"), None);
    }
}
