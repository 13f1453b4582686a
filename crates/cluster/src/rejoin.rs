//! A node's start in cluster mode: its local spool is reconciled with its copy in the shards
//! before anything is delivered, the copy being the truth. A message only on the local disk
//! was never acknowledged (its copy did not land), or was finished, or was taken over while
//! the node was away: dropped. A message only in the copy (a lost or replaced disk) is
//! restored. Recipients the copy knows final are marked so locally. Then the replica is
//! attached and follows the spool from here on.

use std::collections::HashSet;
use std::sync::Arc;

use spool::{MessageId, Spool};

use crate::ClusterError;
use crate::replica::JetStreamReplica;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rejoined {
    /// Messages in both: kept.
    pub kept: usize,
    /// Local only: dropped.
    pub dropped: usize,
    /// Copy only: restored to the local spool.
    pub restored: usize,
    /// Held, never-released batches only in the copy: their records deleted.
    pub dropped_held: usize,
}

/// Reconciles `spool` (open, nothing attached, delivery not started) with `replica`'s
/// records of this node, then attaches the replica.
pub async fn rejoin(spool: &Spool, replica: &JetStreamReplica) -> Result<Rejoined, ClusterError> {
    let node = replica.node().to_string();
    let mut copy = replica.recover(&node).await?;
    let failed = |id: MessageId, e: spool::SpoolError| ClusterError::Stream {
        stream: format!("local spool, message {id}"),
        reason: e.to_string(),
    };
    let mut report = Rejoined::default();
    let mut local = HashSet::new();
    let mut after = None;
    loop {
        let page = spool.list(after, 4096);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        local.extend(page.iter().map(|m| m.id));
    }
    for id in &local {
        if copy.messages.contains_key(id) {
            report.kept += 1;
        } else {
            spool.remove(*id).await.map_err(|e| failed(*id, e))?;
            report.dropped += 1;
        }
    }
    let mut gone = Vec::new();
    for (id, stored) in &copy.messages {
        if !local.contains(id) {
            if stored.still_held() {
                replica.delete(&stored.locations).await;
                gone.push(*id);
                report.dropped_held += 1;
                continue;
            }
            spool
                .import(&stored.record, false)
                .await
                .map_err(|e| failed(*id, e))?;
            report.restored += 1;
        }
        if !stored.done.is_empty() {
            spool
                .recipients_done(*id, stored.done.clone())
                .await
                .map_err(|e| failed(*id, e))?;
        }
    }
    for id in gone {
        copy.messages.remove(&id);
    }
    replica.delete(&copy.leftovers).await;
    replica.track(&copy);
    spool.attach_replica(Arc::new(replica.clone()));
    Ok(report)
}
