//! One membership bucket ("lane"): a JetStream key-value bucket holding every node's record
//! under `node.<name>`. Each lane is its own replicated stream with its own leader, so a
//! spool server's death stalls the writes of at most the lanes it led.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;

use super::record::NodeRecord;
use crate::ClusterError;

pub(super) struct Lane {
    pub bucket: String,
    pub kv: kv::Store,
}

impl Lane {
    /// Opens (creating when missing) the bucket, retrying for up to 30 s while the servers
    /// elect the leaders they need to create it.
    pub async fn open(
        js: &jetstream::Context,
        bucket: &str,
        replicas: usize,
    ) -> Result<Lane, ClusterError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let attempt = match js.get_key_value(bucket).await {
                Ok(kv) => Ok(kv),
                Err(_) => js
                    .create_key_value(kv::Config {
                        bucket: bucket.into(),
                        history: 1,
                        num_replicas: replicas,
                        storage: jetstream::stream::StorageType::File,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| e.to_string()),
            };
            match attempt {
                Ok(kv) => {
                    return Ok(Lane {
                        bucket: bucket.into(),
                        kv,
                    });
                }
                Err(reason) if Instant::now() >= deadline => {
                    return Err(ClusterError::Stream {
                        stream: bucket.into(),
                        reason,
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    pub fn failed(&self, reason: impl std::fmt::Display) -> ClusterError {
        ClusterError::Stream {
            stream: self.bucket.clone(),
            reason: reason.to_string(),
        }
    }

    /// The names of the nodes with a record (needs the stream's leader: it reads through a
    /// consumer).
    pub async fn names(&self) -> Result<Vec<String>, ClusterError> {
        let mut keys = self.kv.keys().await.map_err(|e| self.failed(e))?;
        let mut names = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| self.failed(e))?;
            if let Some(name) = key.strip_prefix("node.") {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    /// A node's record and its revision (a direct read, which any replica answers).
    pub async fn record(&self, key: &str) -> Result<Option<(NodeRecord, u64)>, ClusterError> {
        Ok(self.raw(key).await?.and_then(|(value, revision)| {
            let record = serde_json::from_slice::<NodeRecord>(&value).ok()?;
            Some((record, revision))
        }))
    }

    pub async fn raw(&self, key: &str) -> Result<Option<(bytes::Bytes, u64)>, ClusterError> {
        let entry = self
            .kv
            .entry(key.to_string())
            .await
            .map_err(|e| self.failed(e))?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .map(|e| (e.value, e.revision)))
    }
}

/// A compare-and-set that lost: someone wrote the key since the revision given. The server
/// says so with a "wrong last sequence" API error, which the client does not always map to
/// its own kind.
pub(super) fn lost_race(e: &kv::UpdateError) -> bool {
    e.kind() == kv::UpdateErrorKind::WrongLastRevision
        || e.to_string().contains("wrong last sequence")
}
