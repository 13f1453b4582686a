//! The replicated spool's streams: `shards` JetStream streams named `TSUBAME_SPOOL_<k>`, each
//! holding subjects `tsubame.spool.<k>.<node>.<kind>`, so a node's records can be found (and
//! taken over) by subject, and a stream's leader election stalls only its share of ingest.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::ClusterError;

/// Where the shards live and how they are replicated.
#[derive(Debug, Clone)]
pub struct Layout {
    pub shards: u32,
    pub replicas: usize,
}

pub fn stream_name(shard: u32) -> String {
    format!("TSUBAME_SPOOL_{shard}")
}

/// The subject of a node's message records in a shard.
pub fn message_subject(shard: u32, node: &str) -> String {
    format!("tsubame.spool.{shard}.{node}.m")
}

/// The subject of a node's "recipients final" records in a shard.
pub fn done_subject(shard: u32, node: &str) -> String {
    format!("tsubame.spool.{shard}.{node}.d")
}

/// Creates the shards when missing; refuses existing ones replicated differently. A cluster
/// that is still electing its leaders answers with timeouts: retried for up to 30 s.
pub async fn ensure(
    js: &jetstream::Context,
    layout: &Layout,
) -> Result<Vec<stream::Stream>, ClusterError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut streams = Vec::new();
    for shard in 0..layout.shards {
        loop {
            match ensure_one(js, layout, shard).await {
                Ok(stream) => {
                    streams.push(stream);
                    break;
                }
                Err(Ensure::Refused(e)) => return Err(e),
                Err(Ensure::Unanswered(e)) if std::time::Instant::now() >= deadline => {
                    return Err(e);
                }
                Err(Ensure::Unanswered(e)) => {
                    tracing::info!(error = %e, "spool streams: waiting for the servers");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }
    Ok(streams)
}

enum Ensure {
    /// The stream exists but not as configured: retrying will not help.
    Refused(ClusterError),
    Unanswered(ClusterError),
}

async fn ensure_one(
    js: &jetstream::Context,
    layout: &Layout,
    shard: u32,
) -> Result<stream::Stream, Ensure> {
    let name = stream_name(shard);
    let unanswered = |e: &dyn std::fmt::Display| {
        Ensure::Unanswered(ClusterError::Stream {
            stream: name.clone(),
            reason: e.to_string(),
        })
    };
    let config = stream::Config {
        name: name.clone(),
        subjects: vec![format!("tsubame.spool.{shard}.>")],
        storage: stream::StorageType::File,
        num_replicas: layout.replicas,
        retention: stream::RetentionPolicy::Limits,
        // Retries with the same message id inside this window are stored once.
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    let mut stream = js
        .get_or_create_stream(config)
        .await
        .map_err(|e| unanswered(&e))?;
    let info = stream.info().await.map_err(|e| unanswered(&e))?;
    if info.config.num_replicas != layout.replicas {
        return Err(Ensure::Refused(ClusterError::Stream {
            stream: name,
            reason: format!(
                "has {} replicas, the configuration asks for {}",
                info.config.num_replicas, layout.replicas
            ),
        }));
    }
    Ok(stream)
}
