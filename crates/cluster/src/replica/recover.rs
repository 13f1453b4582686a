//! Reading back every record a node left in the shards: its messages (with where each record
//! is), their final recipients and releases.

use std::collections::BTreeMap;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::stream;
use futures_util::StreamExt;
use spool::MessageId;

use super::records::{self, Note};
use crate::ClusterError;

/// One message as its node's records tell it.
#[derive(Debug, Default, Clone)]
pub struct StoredCopy {
    /// The spool record (empty when only bookkeeping records were found: the message was
    /// finished and its deletion raced the notes; such entries are dropped).
    pub record: Vec<u8>,
    /// Written held and never released (a campaign batch whose cursor did not commit).
    pub held: bool,
    pub released: bool,
    /// Finished: its records only wait for the shard's purge.
    pub removed: bool,
    /// Recipient indices known final.
    pub done: Vec<u32>,
    /// Every record of the message: (shard, sequence).
    pub locations: Vec<(u32, u64)>,
}

impl StoredCopy {
    /// Held and never released: not to be delivered (its campaign spools it again).
    pub fn still_held(&self) -> bool {
        self.held && !self.released
    }
}

/// A node's records, by message.
#[derive(Debug, Default)]
pub struct NodeCopy {
    pub messages: BTreeMap<MessageId, StoredCopy>,
    /// Records that were neither a message nor a readable note.
    pub unreadable: usize,
    /// Notes left by finished messages whose own deletion raced them: to delete.
    pub leftovers: Vec<(u32, u64)>,
}

pub(super) async fn read_node(
    streams: &[stream::Stream],
    node: &str,
) -> Result<NodeCopy, ClusterError> {
    let mut copy = NodeCopy::default();
    for (shard, stream) in streams.iter().enumerate() {
        // A shard electing its leader (a server just died) does not answer for a moment:
        // read it again, from the start, a few times before giving up.
        let mut attempt = 0;
        let part = loop {
            let mut part = NodeCopy::default();
            match read_shard(stream, shard as u32, node, &mut part).await {
                Ok(()) => break part,
                Err(e) if attempt >= 9 => return Err(e),
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        };
        for (id, found) in part.messages {
            let entry = copy.messages.entry(id).or_default();
            if entry.record.is_empty() {
                entry.record = found.record;
            }
            entry.held |= found.held;
            entry.released |= found.released;
            entry.removed |= found.removed;
            entry.done.extend(found.done);
            entry.locations.extend(found.locations);
        }
        copy.unreadable += part.unreadable;
    }
    // Notes whose message is gone, and finished messages, are not to be taken over.
    let orphans: Vec<MessageId> = copy
        .messages
        .iter()
        .filter(|(_, m)| m.record.is_empty() || m.removed)
        .map(|(id, _)| *id)
        .collect();
    for id in orphans {
        if let Some(orphan) = copy.messages.remove(&id) {
            copy.leftovers.extend(orphan.locations);
        }
    }
    Ok(copy)
}

async fn read_shard(
    stream: &stream::Stream,
    shard: u32,
    node: &str,
    copy: &mut NodeCopy,
) -> Result<(), ClusterError> {
    let name = crate::streams::stream_name(shard);
    let failed = |e: &dyn std::fmt::Display| ClusterError::Stream {
        stream: name.clone(),
        reason: e.to_string(),
    };
    let mut consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: format!("tsubame.spool.{shard}.{node}.>"),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| failed(&e))?;
    let pending = consumer.info().await.map_err(|e| failed(&e))?.num_pending;
    if pending == 0 {
        return Ok(());
    }
    let mut messages = consumer.messages().await.map_err(|e| failed(&e))?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| failed(&e))?;
        let info = message.info().map_err(|e| failed(&e))?;
        let (seq, left) = (info.stream_sequence, info.pending);
        let headers = message.headers.as_ref();
        if message.subject.as_str().ends_with(".m") {
            let id = headers
                .and_then(|h| h.get(records::ID_HEADER))
                .and_then(|v| MessageId::parse(v.as_str()));
            match id {
                Some(id) => {
                    let entry = copy.messages.entry(id).or_default();
                    if entry.record.is_empty() {
                        entry.record = message.payload.to_vec();
                    }
                    entry.held |= headers.and_then(|h| h.get(super::HELD)).is_some();
                    entry.locations.push((shard, seq));
                }
                None => copy.unreadable += 1,
            }
        } else {
            match records::parse(&message.payload) {
                Some(Note::Done(id, indices)) => {
                    let entry = copy.messages.entry(id).or_default();
                    entry.done.extend(indices);
                    entry.locations.push((shard, seq));
                }
                Some(Note::Released(id)) => {
                    let entry = copy.messages.entry(id).or_default();
                    entry.released = true;
                    entry.locations.push((shard, seq));
                }
                Some(Note::Removed(id)) => {
                    let entry = copy.messages.entry(id).or_default();
                    entry.removed = true;
                    entry.locations.push((shard, seq));
                }
                None => copy.unreadable += 1,
            }
        }
        if left == 0 {
            break;
        }
    }
    Ok(())
}
