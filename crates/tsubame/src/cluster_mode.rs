//! Cluster mode's wiring: joining before anything is delivered, the cluster loop beside the
//! server, the handover at the end of a drain.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cluster::node::{ClusterConfig, ClusterNode};
use spool::Spool;

/// How long a drained node waits for another to take what it still holds.
const HANDOVER_WAIT: Duration = Duration::from_secs(30);

/// Joins the cluster when configured: the spool is reconciled with its replicated copy and
/// copies every message from here on.
pub async fn join(
    config: Option<ClusterConfig>,
    spool: &Spool,
) -> anyhow::Result<Option<Arc<ClusterNode>>> {
    let Some(config) = config else {
        return Ok(None);
    };
    let node = config.membership.node.clone();
    let (joined, rejoined) = ClusterNode::join(config, spool.clone())
        .await
        .with_context(|| format!("joining the cluster as {node}"))?;
    tracing::info!(
        node = %node,
        kept = rejoined.kept,
        dropped = rejoined.dropped,
        restored = rejoined.restored,
        dropped_held = rejoined.dropped_held,
        "joined the cluster; spool reconciled with its replicated copy"
    );
    Ok(Some(joined))
}

/// Runs the cluster loop; resolves only when this node's work was taken over (the server
/// must then stop). Never resolves outside cluster mode.
pub async fn run(
    node: Option<Arc<ClusterNode>>,
    engine: Option<delivery::Engine>,
) -> anyhow::Error {
    let Some(node) = node else {
        return std::future::pending().await;
    };
    let set = {
        let engine = engine.clone();
        Arc::new(move |fenced: bool| {
            metrics::gauge!("tsubame_cluster_fenced").set(if fenced { 1.0 } else { 0.0 });
            if let Some(engine) = &engine {
                engine.set_fenced(fenced);
            }
        })
    };
    let lease = Arc::new(move |until: std::time::Instant| {
        if let Some(engine) = &engine {
            engine.extend_lease(until);
        }
    });
    let fence = cluster::node::Fence { set, lease };
    anyhow::Error::new(node.run(fence).await)
}

/// Keeps this node's share of cluster-wide limits (tenants' rates and quotas, delivery's
/// connections and rates) in step with the live membership. Out of touch, the node falls
/// back to the smallest share it ever had (the most nodes it has seen), never to the whole.
pub fn follow_shares(
    node: Option<Arc<ClusterNode>>,
    tenants: shares::Shares,
    engine: Option<delivery::Engine>,
) {
    let Some(node) = node else { return };
    tokio::spawn(async move {
        let (mut peak, mut last_rank) = (1u32, 0u32);
        loop {
            let share = match node.share() {
                Some((rank, count)) => {
                    peak = peak.max(count);
                    last_rank = rank;
                    shares::Share { rank, count }
                }
                None => shares::Share {
                    rank: last_rank,
                    count: peak,
                },
            };
            tenants.set(share);
            if let Some(engine) = &engine {
                engine.set_share(share);
            }
            metrics::gauge!("tsubame_cluster_share").set(share.fraction());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}

/// A drain's last step: what is still queued goes to the other nodes.
pub async fn hand_over(node: &ClusterNode) {
    match node.hand_over(HANDOVER_WAIT).await {
        Ok(true) => tracing::info!("drained: the remaining queue was taken over by another node"),
        Ok(false) => tracing::warn!(
            "drained, but no node took the remaining queue within 30 s; it stays in this node's replicated copy"
        ),
        Err(e) => {
            tracing::error!(error = %e, "handing the queue over failed; it stays in this node's replicated copy")
        }
    }
}
