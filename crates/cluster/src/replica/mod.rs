//! The spool's replicated copy in JetStream ([`spool::Replica`]).
//!
//! Each message record goes to one shard, under this node's subject; the publish
//! acknowledgement (a majority of the stream's replicas have fsynced it) resolves the copy.
//! A shard that does not answer within `shard_wait` (its leader is being elected) is left
//! for the next one; the late acknowledgement, if it comes, is still followed so the copy
//! is removed with the message. Final recipients and releases are small records beside the
//! message; a removal deletes every record of the message by sequence.

mod purge;
mod records;
mod recover;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use spool::{MessageId, Replica, ReplicaFuture};

use crate::ClusterError;
use crate::streams::{self, Layout};

pub use recover::{NodeCopy, StoredCopy};

/// JetStream's de-duplication header: `<node>/<message id>`. The node is part of it so that
/// a node taking over another's message (same id, same stream, within the duplicate window)
/// stores a record of its own instead of being handed back the one it is about to delete.
const DEDUP: &str = "Nats-Msg-Id";
/// How long final recipients wait before they are noted beside a message still queued.
const DONE_NOTE_DELAY: Duration = Duration::from_secs(1);

/// Header marking a message written held (a campaign batch not yet committed).
pub(crate) const HELD: &str = "Tsubame-Held";

/// How the replica behaves.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// This node's name: its records' subjects.
    pub node: String,
    pub layout: Layout,
    /// Waiting this long on one shard before the copy goes to another.
    pub shard_wait: Duration,
    /// Giving up on a copy altogether (the sender is told to try again).
    pub store_deadline: Duration,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            node: "node".into(),
            layout: Layout {
                shards: 6,
                replicas: 3,
            },
            shard_wait: Duration::from_millis(400),
            store_deadline: Duration::from_secs(10),
        }
    }
}

/// Where a message's records are: (shard, stream sequence).
type Locations = HashMap<MessageId, Vec<(u32, u64)>>;

struct Shared {
    js: jetstream::Context,
    config: ReplicaConfig,
    streams: Vec<stream::Stream>,
    next: AtomicU32,
    locations: Mutex<Locations>,
    /// Per shard: what of this node may be purged.
    marks: Mutex<Vec<purge::Marks>>,
    /// Deletions in flight, bounded so a burst of removals cannot flood the servers.
    deleting: Arc<tokio::sync::Semaphore>,
}

/// The replicated copy of one node's spool.
#[derive(Clone)]
pub struct JetStreamReplica {
    shared: Arc<Shared>,
}

impl JetStreamReplica {
    /// Creates the shards when missing (checking their replication) and starts empty; call
    /// [`JetStreamReplica::recover`] for this node's existing records.
    pub async fn open(
        js: jetstream::Context,
        config: ReplicaConfig,
    ) -> Result<JetStreamReplica, ClusterError> {
        let streams = streams::ensure(&js, &config.layout).await?;
        let marks = (0..streams.len())
            .map(|_| purge::Marks::default())
            .collect();
        let shared = Arc::new(Shared {
            js,
            config,
            streams,
            next: AtomicU32::new(0),
            locations: Mutex::new(HashMap::new()),
            marks: Mutex::new(marks),
            deleting: Arc::new(tokio::sync::Semaphore::new(64)),
        });
        tokio::spawn(purge_loop(Arc::downgrade(&shared)));
        Ok(JetStreamReplica { shared })
    }

    pub fn node(&self) -> &str {
        &self.shared.config.node
    }

    /// Messages whose records this replica tracks (live in the spool).
    pub fn tracked(&self) -> usize {
        self.shared.locations().len()
    }

    /// Reads every record a node left in the shards (this node's own at start, or a dead
    /// node's being taken over).
    pub async fn recover(&self, node: &str) -> Result<NodeCopy, ClusterError> {
        recover::read_node(&self.shared.streams, node).await
    }

    /// Follows this node's own recovered records: they are deleted with their messages.
    pub fn track(&self, copy: &NodeCopy) {
        let mut locations = self.shared.locations();
        let mut marks = self.shared.marks();
        for (id, stored) in &copy.messages {
            locations
                .entry(*id)
                .or_default()
                .extend_from_slice(&stored.locations);
            for &(shard, seq) in &stored.locations {
                if let Some(marks) = marks.get_mut(shard as usize) {
                    marks.live(seq);
                }
            }
        }
    }

    /// Removes a taken-over node's records in bulk: in each shard, everything of `node` up to
    /// and including the highest sequence read (`read_to`). Records that landed after the
    /// reading (a frozen node's last publishes) stay for its own rejoin.
    pub async fn purge_node(&self, node: &str, read_to: &[(u32, u64)]) -> Result<(), ClusterError> {
        for &(shard, seq) in read_to {
            let Some(stream) = self.shared.streams.get(shard as usize) else {
                continue;
            };
            let filter = format!("tsubame.spool.{shard}.{node}.>");
            let mut attempt = 0;
            loop {
                match stream
                    .purge()
                    .filter(filter.clone())
                    .sequence(seq + 1)
                    .await
                {
                    Ok(_) => break,
                    Err(e) if attempt >= 9 => {
                        return Err(ClusterError::Stream {
                            stream: streams::stream_name(shard),
                            reason: e.to_string(),
                        });
                    }
                    Err(_) => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
        Ok(())
    }

    /// Deletes records by location (a taken-over node's, once imported elsewhere).
    pub async fn delete(&self, locations: &[(u32, u64)]) {
        for &(shard, seq) in locations {
            self.shared.delete_now(shard, seq).await;
        }
    }
}

impl Shared {
    fn locations(&self) -> std::sync::MutexGuard<'_, Locations> {
        self.locations.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn marks(&self) -> std::sync::MutexGuard<'_, Vec<purge::Marks>> {
        self.marks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_marks(&self, shard: u32, f: impl FnOnce(&mut purge::Marks)) {
        if let Some(marks) = self.marks().get_mut(shard as usize) {
            f(marks);
        }
    }

    /// A record of this node is no longer needed: purged with the shard's watermark.
    fn finished(&self, shard: u32, seq: u64) {
        self.with_marks(shard, |m| m.finished(seq, Instant::now()));
    }

    fn shard_of(&self, id: MessageId) -> u32 {
        self.locations()
            .get(&id)
            .and_then(|l| l.first())
            .map(|&(shard, _)| shard)
            .unwrap_or((id.0 % self.config.layout.shards as u128) as u32)
    }

    /// A record of `id` landed at `(shard, seq)`: followed when the message is live,
    /// deleted at once when it is already gone (removed, or its copy given up).
    fn landed(self: &Arc<Self>, id: MessageId, shard: u32, seq: u64, live_only: bool) {
        let mut locations = self.locations();
        match locations.get_mut(&id) {
            Some(at) => at.push((shard, seq)),
            None if !live_only => {
                locations.insert(id, vec![(shard, seq)]);
            }
            None => {
                drop(locations);
                self.finished(shard, seq);
                return;
            }
        }
        drop(locations);
        self.with_marks(shard, |m| m.live(seq));
    }

    fn delete_later(self: &Arc<Self>, shard: u32, seq: u64) {
        let shared = self.clone();
        tokio::spawn(async move { shared.delete_now(shard, seq).await });
    }

    async fn delete_now(&self, shard: u32, seq: u64) {
        let Ok(_permit) = self.deleting.clone().acquire_owned().await else {
            return;
        };
        let Some(stream) = self.streams.get(shard as usize) else {
            return;
        };
        // A failed delete leaves a record of a finished message: a takeover would deliver it
        // again. Tried a few times; what stays is logged.
        for attempt in 0..5u32 {
            match stream.delete_message(seq).await {
                Ok(_) => return,
                Err(e) if e.to_string().contains("no message found") => return,
                Err(e) if attempt == 4 => {
                    tracing::warn!(shard, seq, error = %e, "replica: record not deleted");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200 << attempt)).await,
            }
        }
    }

    /// Publishes a record to a shard and waits up to `wait` for its acknowledgement. A late
    /// acknowledgement is followed in the background (the record is kept only if live).
    async fn publish(
        self: &Arc<Self>,
        id: MessageId,
        shard: u32,
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
        wait: Duration,
    ) -> Result<u64, String> {
        let mut floor = 0;
        self.with_marks(shard, |m| floor = m.sending());
        let ack = match self
            .js
            .publish_with_headers(subject, headers, payload)
            .await
        {
            Ok(ack) => ack,
            Err(e) => {
                self.with_marks(shard, |m| m.sent(floor, None));
                return Err(e.to_string());
            }
        };
        let mut ack = std::future::IntoFuture::into_future(ack);
        match tokio::time::timeout(wait, ack.as_mut()).await {
            Ok(Ok(ack)) => {
                self.with_marks(shard, |m| m.sent(floor, Some(ack.sequence)));
                Ok(ack.sequence)
            }
            Ok(Err(e)) => {
                self.with_marks(shard, |m| m.sent(floor, None));
                Err(e.to_string())
            }
            Err(_) => {
                let shared = self.clone();
                tokio::spawn(async move {
                    match ack.await {
                        Ok(ack) => {
                            shared.with_marks(shard, |m| m.sent(floor, Some(ack.sequence)));
                            shared.landed(id, shard, ack.sequence, true);
                        }
                        Err(_) => shared.with_marks(shard, |m| m.sent(floor, None)),
                    }
                });
                Err(format!("shard {shard} did not answer within {wait:?}"))
            }
        }
    }

    async fn store(
        self: Arc<Self>,
        id: MessageId,
        record: Bytes,
        held: bool,
    ) -> Result<(), String> {
        let shards = self.config.layout.shards.max(1);
        let deadline = Instant::now() + self.config.store_deadline;
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last = String::new();
        for attempt in 0u32.. {
            let shard = first.wrapping_add(attempt) % shards;
            let mut headers = HeaderMap::new();
            headers.insert(DEDUP, format!("{}/{id}", self.config.node).as_str());
            headers.insert(records::ID_HEADER, id.to_string().as_str());
            if held {
                headers.insert(HELD, "1");
            }
            let subject = streams::message_subject(shard, &self.config.node);
            let wait = self
                .config
                .shard_wait
                .min(deadline.saturating_duration_since(Instant::now()));
            match self
                .publish(id, shard, subject, headers, record.clone(), wait)
                .await
            {
                Ok(seq) => {
                    self.landed(id, shard, seq, false);
                    return Ok(());
                }
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                break;
            }
            if (attempt + 1) % shards == 0 {
                // Every shard tried: give the elections a moment.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Err(format!("no shard stored the copy: {last}"))
    }

    /// Publishes a "finished" note in `shard` for a message no longer tracked; nobody waits.
    fn note_in(self: &Arc<Self>, shard: u32, id: MessageId, payload: Vec<u8>) {
        let shared = self.clone();
        tokio::spawn(async move {
            let subject = streams::done_subject(shard, &shared.config.node);
            let mut headers = HeaderMap::new();
            headers.insert(records::ID_HEADER, id.to_string().as_str());
            let wait = shared.config.store_deadline;
            match shared
                .publish(id, shard, subject, headers, payload.into(), wait)
                .await
            {
                Ok(seq) => shared.landed(id, shard, seq, true),
                Err(e) => tracing::warn!(%id, error = %e, "replica: finished note lost"),
            }
        });
    }

    /// Publishes a small bookkeeping record beside the message; nobody waits. With `delay`,
    /// only if the message is still queued after it: most messages are finished (and their
    /// records deleted) within moments of their first final recipients, and a note for them
    /// would be two more writes to the servers for nothing. A node lost within the delay
    /// costs those recipients a second delivery by the node that takes over.
    fn note(self: &Arc<Self>, id: MessageId, payload: Vec<u8>, delay: Option<Duration>) {
        let shared = self.clone();
        tokio::spawn(async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
                if !shared.locations().contains_key(&id) {
                    return;
                }
            }
            let shard = shared.shard_of(id);
            let subject = streams::done_subject(shard, &shared.config.node);
            let mut headers = HeaderMap::new();
            headers.insert(records::ID_HEADER, id.to_string().as_str());
            let wait = shared.config.store_deadline;
            match shared
                .publish(id, shard, subject, headers, payload.into(), wait)
                .await
            {
                Ok(seq) => shared.landed(id, shard, seq, true),
                Err(e) => tracing::warn!(%id, error = %e, "replica: bookkeeping record lost"),
            }
        });
    }
}

impl Replica for JetStreamReplica {
    fn store(&self, id: MessageId, record: Vec<u8>, held: bool) -> ReplicaFuture {
        Box::pin(self.shared.clone().store(id, Bytes::from(record), held))
    }

    fn recipients_done(&self, id: MessageId, indices: &[u32]) {
        self.shared
            .note(id, records::done(id, indices), Some(DONE_NOTE_DELAY));
    }

    fn release(&self, ids: &[MessageId]) {
        for &id in ids {
            self.shared.note(id, records::released(id), None);
        }
    }

    fn remove(&self, id: MessageId) {
        let at = self.shared.locations().remove(&id);
        let Some(at) = at else { return };
        // Said at once, so that no takeover delivers it again while its records wait for
        // the purge (the note is purged with them).
        if let Some(&(shard, _)) = at.first() {
            self.shared.note_in(shard, id, records::removed(id));
        }
        for (shard, seq) in at {
            self.shared.finished(shard, seq);
        }
    }
}

/// Purges each shard of this node's finished records up to its watermark, twice a second;
/// deletes one by one what a long-lived record holds back. Ends with the replica.
async fn purge_loop(shared: std::sync::Weak<Shared>) {
    loop {
        tokio::time::sleep(purge::PURGE_EVERY).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let now = Instant::now();
        let work: Vec<(u32, Option<u64>, Vec<u64>)> = shared
            .marks()
            .iter_mut()
            .enumerate()
            .map(|(shard, m)| (shard as u32, m.to_purge(), m.stuck(now)))
            .collect();
        for (shard, mark, stuck) in work {
            for seq in stuck {
                shared.delete_later(shard, seq);
            }
            let (Some(mark), Some(stream)) = (mark, shared.streams.get(shard as usize)) else {
                continue;
            };
            let filter = format!("tsubame.spool.{shard}.{}.>", shared.config.node);
            match stream.purge().filter(filter).sequence(mark).await {
                Ok(_) => shared.with_marks(shard, |m| m.purged(mark)),
                Err(e) => tracing::debug!(shard, error = %e, "replica: purge failed; retried"),
            }
        }
    }
}
