//! A survivor takes a dead node's work: wins the dead node's record (one compare-and-set),
//! reads its copy from the shards, stores each message in its own spool (which copies it
//! under the survivor's name before delivery hears of it), applies the recipients already
//! final, then removes the dead node's records in bulk (up to what it read) and forgets it.
//!
//! A held batch never released (a campaign batch whose cursor did not commit) is dropped:
//! its campaign spools it again. A retry schedule is not replicated: taken-over deferred mail
//! is tried again at once.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use spool::Spool;

use crate::ClusterError;
use crate::membership::{Member, Membership, NodeState};
use crate::replica::JetStreamReplica;

/// Messages imported at once during a takeover.
const IMPORTS_IN_FLIGHT: usize = 128;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Takeover {
    pub node: String,
    pub imported: usize,
    /// Held, never-released campaign batches dropped (spooled again by their campaign).
    pub dropped_held: usize,
    pub took: Duration,
}

/// Whether `member` is this node's to take over now: handing its work over, or silent for
/// `dead_after` and not being taken over by another live node.
pub fn due(me: &str, member: &Member, members: &[Member]) -> bool {
    if member.record.name == me {
        return false;
    }
    if member.record.state == NodeState::HandingOver {
        return true;
    }
    if member.alive {
        return false;
    }
    match &member.record.state {
        NodeState::TakenOver { by } => {
            by == me || !members.iter().any(|m| &m.record.name == by && m.alive)
        }
        _ => true,
    }
}

/// Takes `member`'s work over. `Ok(None)`: another node won it, or it came back.
pub async fn take_over(
    membership: &Membership,
    replica: &JetStreamReplica,
    spool: &Spool,
    member: &Member,
) -> Result<Option<Takeover>, ClusterError> {
    let started = Instant::now();
    let node = member.record.name.clone();
    if !membership.mark_taken_over(member).await? {
        return Ok(None);
    }
    tracing::warn!(node = %node, silent_ms = member.silent_for.as_millis() as u64, "taking over a dead node's spool");
    let copy = replica.recover(&node).await?;
    let mut report = Takeover {
        node: node.clone(),
        ..Takeover::default()
    };
    // Many at a time: each import waits for a local fsync and a replicated copy, which
    // batch well; one by one, a large queue would take minutes.
    // The highest sequence read in each shard: what the bulk removal below may cover.
    let mut read_to: std::collections::BTreeMap<u32, u64> = std::collections::BTreeMap::new();
    for &(shard, seq) in copy
        .messages
        .values()
        .flat_map(|m| m.locations.iter())
        .chain(copy.leftovers.iter())
    {
        let top = read_to.entry(shard).or_default();
        *top = (*top).max(seq);
    }
    let mut imports = futures_util::stream::iter(copy.messages)
        .map(|(id, stored)| {
            let spool = spool.clone();
            async move {
                if stored.still_held() {
                    return Ok(false);
                }
                spool
                    .import(&stored.record, false)
                    .await
                    .map_err(|e| ClusterError::Stream {
                        stream: format!("import of {id}"),
                        reason: e.to_string(),
                    })?;
                if !stored.done.is_empty() {
                    // Lazy: at worst these recipients are delivered again.
                    let _ = spool.recipients_done_detached(id, stored.done);
                }
                Ok(true)
            }
        })
        .buffer_unordered(IMPORTS_IN_FLIGHT);
    while let Some(imported) = imports.next().await {
        if imported? {
            report.imported += 1;
        } else {
            report.dropped_held += 1;
        }
    }
    // Everything is imported: the dead node's records go in one request per shard.
    let read_to: Vec<(u32, u64)> = read_to.into_iter().collect();
    replica.purge_node(&node, &read_to).await?;
    membership.forget(&node).await?;
    report.took = started.elapsed();
    tracing::warn!(node = %node, imported = report.imported, dropped_held = report.dropped_held, took_ms = report.took.as_millis() as u64, "took over a dead node's spool");
    Ok(Some(report))
}
