//! Who is in the cluster. Each node keeps a record under `node.<name>` in the `TSUBAME_NODES`
//! bucket and rewrites it every heartbeat, always as a compare-and-set on the revision it
//! wrote last. A node whose record has not changed for `dead_after`, measured on the
//! observer's own clock (clocks need not agree), is dead.
//!
//! Taking a dead node's work over starts with one compare-and-set: its record becomes
//! "taken over by X" at the revision seen stale. Only one survivor can win it, and the dead
//! node, should it come back, finds its next heartbeat refused and knows its spool went
//! elsewhere. A node also stops delivering (fences itself) when its heartbeats have failed
//! for `fence_after`, shorter than `dead_after`, so it is quiet before anyone takes over.
//! Silence is counted only while the observer's own heartbeats are being stored: when the
//! bucket takes no writes at all (its leader being elected), nobody is judged dead for it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::ClusterError;

pub const BUCKET: &str = "TSUBAME_NODES";

/// What a node says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum NodeState {
    /// Reconciling its spool with its copy; not yet accepting.
    Starting,
    Up,
    /// Accepting nothing new, finishing or handing back its work.
    Draining,
    /// Drained: its remaining work is for the others to take now.
    HandingOver,
    /// Its work went to `by` (it died, was cut off too long, or handed it over).
    TakenOver {
        by: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: String,
    #[serde(flatten)]
    pub state: NodeState,
    /// Unix ms, the node's own clock (for display).
    pub started_ms: u64,
    pub beat_ms: u64,
    /// Where it listens, for operators.
    #[serde(default)]
    pub smtp: Vec<String>,
    #[serde(default)]
    pub http: String,
    /// Messages in its spool.
    #[serde(default)]
    pub queued: u64,
}

impl NodeRecord {
    pub fn new(name: &str, state: NodeState) -> NodeRecord {
        NodeRecord {
            name: name.to_string(),
            state,
            started_ms: now_ms(),
            beat_ms: now_ms(),
            smtp: Vec::new(),
            http: String::new(),
            queued: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MembershipConfig {
    pub node: String,
    pub heartbeat: Duration,
    /// No heartbeat seen for this long: dead, its work is taken over.
    pub dead_after: Duration,
    /// No heartbeat of ours stored for this long: stop delivering.
    pub fence_after: Duration,
    pub replicas: usize,
}

impl MembershipConfig {
    pub fn new(node: &str, replicas: usize) -> MembershipConfig {
        MembershipConfig {
            node: node.to_string(),
            heartbeat: Duration::from_millis(500),
            dead_after: Duration::from_millis(3000),
            fence_after: Duration::from_millis(2000),
            replicas,
        }
    }
}

/// One node as this node sees it.
#[derive(Debug, Clone)]
pub struct Member {
    pub record: NodeRecord,
    pub revision: u64,
    /// Heard from within `dead_after` (this node: not fenced).
    pub alive: bool,
    /// Since its record last changed, on this node's clock.
    pub silent_for: Duration,
}

impl Member {
    /// Counts toward the shares of cluster-wide limits.
    pub fn active(&self) -> bool {
        self.alive && matches!(self.record.state, NodeState::Up | NodeState::Draining)
    }
}

struct Seen {
    revision: u64,
    changed: Instant,
}

/// Why a heartbeat was not stored.
#[derive(Debug, thiserror::Error)]
pub enum BeatError {
    /// The record changed under us: another node took our work over.
    #[error("this node's work was taken over by {0} while it was cut off")]
    TakenOver(String),
    #[error("heartbeat: {0}")]
    Unreachable(String),
}

pub struct Membership {
    kv: kv::Store,
    config: MembershipConfig,
    seen: Mutex<HashMap<String, Seen>>,
    /// Our record's revision and when the heartbeat that wrote it was sent.
    mine: Mutex<Option<(u64, Instant)>>,
    /// Since when this node's heartbeats have all been stored (None after a failure). Others'
    /// silence counts only from then: when the bucket cannot take writes (its leader being
    /// elected after a server died), nobody can beat, and nobody is judged dead for it.
    streak: Mutex<Option<Instant>>,
    /// The last record written (or tried) and when: a heartbeat whose answer was lost may
    /// still have been stored.
    last_try: Mutex<Option<(bytes::Bytes, Instant)>>,
    /// Records written by the heartbeats before it, for the same check.
    recent: Mutex<std::collections::VecDeque<(bytes::Bytes, Instant)>>,
}

impl Membership {
    /// Opens (creating when missing) the membership bucket.
    pub async fn open(
        js: &jetstream::Context,
        config: MembershipConfig,
    ) -> Result<Membership, ClusterError> {
        let failed = |e: &dyn std::fmt::Display| ClusterError::Stream {
            stream: BUCKET.into(),
            reason: e.to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let kv = loop {
            let attempt = match js.get_key_value(BUCKET).await {
                Ok(kv) => Ok(kv),
                Err(_) => js
                    .create_key_value(kv::Config {
                        bucket: BUCKET.into(),
                        history: 1,
                        num_replicas: config.replicas,
                        storage: jetstream::stream::StorageType::File,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| failed(&e)),
            };
            match attempt {
                Ok(kv) => break kv,
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        };
        Ok(Membership {
            kv,
            config,
            seen: Mutex::new(HashMap::new()),
            mine: Mutex::new(None),
            streak: Mutex::new(None),
            last_try: Mutex::new(None),
            recent: Mutex::new(std::collections::VecDeque::new()),
        })
    }

    pub fn config(&self) -> &MembershipConfig {
        &self.config
    }

    fn key(node: &str) -> String {
        format!("node.{node}")
    }

    /// Claims this node's own record at start: whatever it held (a previous run, or a
    /// finished takeover) is replaced by `Starting`. A takeover of this node still running
    /// on a live node is waited for (up to `wait`), so its imports and ours do not overlap.
    pub async fn claim_self(&self, wait: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + wait;
        let key = Self::key(&self.config.node);
        loop {
            // A bucket just created may not answer reads on every server yet.
            let entry = match self.entry(&key).await {
                Ok(entry) => entry,
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            };
            if let Some((record, revision)) = &entry
                && let NodeState::TakenOver { by } = &record.state
                && by != &self.config.node
                && Instant::now() < deadline
                && self.taker_alive(by).await?
            {
                tracing::info!(by = %by, revision, "waiting for the takeover of this node to finish");
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            let record = NodeRecord::new(&self.config.node, NodeState::Starting);
            let sent = Instant::now();
            let written = match &entry {
                Some((_, revision)) => self
                    .kv
                    .update(&key, encode(&record), *revision)
                    .await
                    .map_err(|e| e.to_string()),
                None => self
                    .kv
                    .create(&key, encode(&record))
                    .await
                    .map_err(|e| e.to_string()),
            };
            match written {
                Ok(revision) => {
                    *self.mine.lock().unwrap_or_else(|p| p.into_inner()) = Some((revision, sent));
                    return Ok(());
                }
                // Someone wrote in between (a taker marking it): look again.
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(reason) => {
                    return Err(ClusterError::Stream {
                        stream: BUCKET.into(),
                        reason,
                    });
                }
            }
        }
    }

    /// Whether `node` counts as alive, looking at its record twice `dead_after` apart at most.
    async fn taker_alive(&self, node: &str) -> Result<bool, ClusterError> {
        let read = tokio::time::timeout(self.config.heartbeat * 4, self.observe()).await;
        let Ok(members) = read else {
            // Unreadable for now: assume the taker lives, and look again.
            return Ok(true);
        };
        Ok(members?.iter().any(|m| m.record.name == node && m.alive))
    }

    /// Stores this node's record (compare-and-set on our last revision).
    pub async fn beat(&self, record: &NodeRecord) -> Result<(), BeatError> {
        let key = Self::key(&self.config.node);
        let Some((revision, _)) = *self.mine.lock().unwrap_or_else(|p| p.into_inner()) else {
            return Err(BeatError::Unreachable("not claimed yet".into()));
        };
        let sent = Instant::now();
        let written = encode(record);
        let update = self.kv.update(&key, written.clone(), revision);
        let result = tokio::time::timeout(self.config.heartbeat * 2, update).await;
        let previous = self
            .last_try
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace((written, sent));
        if let Some(previous) = previous {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            recent.push_back(previous);
            if recent.len() > 8 {
                recent.pop_front();
            }
        }
        match result {
            Ok(Ok(revision)) => {
                self.stored(revision, sent);
                Ok(())
            }
            Ok(Err(e)) if lost_race(&e) => {
                let entry = self.raw_entry(&key).await;
                // Our own earlier write whose answer was lost (its server died before
                // replying): the record is still ours, at a newer revision.
                if let Ok(Some((value, current))) = &entry
                    && let Some(tried) = self.when_written(value)
                {
                    self.stored(*current, tried);
                    return Err(BeatError::Unreachable(
                        "an earlier heartbeat's answer was lost; resynchronised".into(),
                    ));
                }
                let by = match entry {
                    Ok(Some((value, _))) => match serde_json::from_slice::<NodeRecord>(&value) {
                        Ok(NodeRecord {
                            state: NodeState::TakenOver { by },
                            ..
                        }) => by,
                        _ => "another node".into(),
                    },
                    Ok(None) => "a surviving node (record gone)".into(),
                    Err(_) => "another node".into(),
                };
                Err(BeatError::TakenOver(by))
            }
            Ok(Err(e)) => {
                self.broken_streak();
                Err(BeatError::Unreachable(e.to_string()))
            }
            Err(_) => {
                self.broken_streak();
                Err(BeatError::Unreachable("timed out".into()))
            }
        }
    }

    fn stored(&self, revision: u64, sent: Instant) {
        *self.mine.lock().unwrap_or_else(|p| p.into_inner()) = Some((revision, sent));
        self.streak
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(sent);
    }

    /// When this node wrote `value` in one of its recent heartbeats, if it did.
    fn when_written(&self, value: &[u8]) -> Option<Instant> {
        let last = self
            .last_try
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        last.iter()
            .chain(recent.iter())
            .find(|(written, _)| written[..] == value[..])
            .map(|(_, at)| *at)
    }

    async fn raw_entry(&self, key: &str) -> Result<Option<(bytes::Bytes, u64)>, ClusterError> {
        let entry = self
            .kv
            .entry(key.to_string())
            .await
            .map_err(|e| ClusterError::Stream {
                stream: BUCKET.into(),
                reason: e.to_string(),
            })?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .map(|e| (e.value, e.revision)))
    }

    fn broken_streak(&self) {
        *self.streak.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Until when this node may start deliveries: its last stored heartbeat's sending time
    /// plus `fence_after` (the others wait `dead_after` from a later moment).
    pub fn lease_until(&self) -> Option<Instant> {
        let mine = *self.mine.lock().unwrap_or_else(|p| p.into_inner());
        mine.map(|(_, sent)| sent + self.config.fence_after)
    }

    /// True when our last stored heartbeat was sent more than `fence_after` ago: the others
    /// may soon count us dead, so delivery must stop.
    pub fn fenced(&self) -> bool {
        match *self.mine.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((_, sent)) => sent.elapsed() > self.config.fence_after,
            None => true,
        }
    }

    /// Reads every node's record and updates when each last changed.
    pub async fn observe(&self) -> Result<Vec<Member>, ClusterError> {
        let failed = |e: &dyn std::fmt::Display| ClusterError::Stream {
            stream: BUCKET.into(),
            reason: e.to_string(),
        };
        let mut keys = self.kv.keys().await.map_err(|e| failed(&e))?;
        let mut names = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| failed(&e))?;
            if let Some(name) = key.strip_prefix("node.") {
                names.push(name.to_string());
            }
        }
        let mut found = Vec::new();
        for name in names {
            if let Some(entry) = self.entry(&Self::key(&name)).await? {
                found.push((name, entry));
            }
        }
        let now = Instant::now();
        let fenced = self.fenced();
        // Silence is only held against a node while this node could write itself.
        let streak = *self.streak.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|name, _| found.iter().any(|(n, _)| n == name));
        let mut members = Vec::new();
        for (name, (record, revision)) in found {
            let at = seen.entry(name.clone()).or_insert(Seen {
                revision,
                changed: now,
            });
            if at.revision != revision {
                *at = Seen {
                    revision,
                    changed: now,
                };
            }
            let silent_for = now.duration_since(at.changed);
            let judged_for = match streak {
                Some(since) => now.duration_since(at.changed.max(since)),
                None => Duration::ZERO,
            };
            let alive = if name == self.config.node {
                !fenced
            } else {
                judged_for < self.config.dead_after
            };
            members.push(Member {
                record,
                revision,
                alive,
                silent_for,
            });
        }
        members.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        Ok(members)
    }

    /// Marks a dead node's record as taken over by this node, if it still is at `revision`
    /// (nobody else won it, the node did not come back). True when this node won.
    pub async fn mark_taken_over(&self, member: &Member) -> Result<bool, ClusterError> {
        let mut record = member.record.clone();
        record.state = NodeState::TakenOver {
            by: self.config.node.clone(),
        };
        match self
            .kv
            .update(Self::key(&record.name), encode(&record), member.revision)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if lost_race(&e) => Ok(false),
            Err(e) => Err(ClusterError::Stream {
                stream: BUCKET.into(),
                reason: e.to_string(),
            }),
        }
    }

    /// Removes a node's record once its work is elsewhere (it registers anew if it returns).
    pub async fn forget(&self, node: &str) -> Result<(), ClusterError> {
        self.kv
            .purge(Self::key(node))
            .await
            .map_err(|e| ClusterError::Stream {
                stream: BUCKET.into(),
                reason: e.to_string(),
            })
    }

    async fn entry(&self, key: &str) -> Result<Option<(NodeRecord, u64)>, ClusterError> {
        let entry = self
            .kv
            .entry(key.to_string())
            .await
            .map_err(|e| ClusterError::Stream {
                stream: BUCKET.into(),
                reason: e.to_string(),
            })?;
        Ok(entry.and_then(|e| {
            if e.operation != kv::Operation::Put {
                return None;
            }
            let record = serde_json::from_slice::<NodeRecord>(&e.value).ok()?;
            Some((record, e.revision))
        }))
    }
}

/// A compare-and-set that lost: someone wrote the key since the revision given. The server
/// says so with a "wrong last sequence" API error, which the client does not always map to
/// its own kind.
fn lost_race(e: &kv::UpdateError) -> bool {
    e.kind() == kv::UpdateErrorKind::WrongLastRevision
        || e.to_string().contains("wrong last sequence")
}

fn encode(record: &NodeRecord) -> bytes::Bytes {
    serde_json::to_vec(record).unwrap_or_default().into()
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_with_their_state() {
        let mut record = NodeRecord::new("mx1", NodeState::TakenOver { by: "mx2".into() });
        record.queued = 12;
        let text = serde_json::to_string(&record).unwrap();
        assert!(
            text.contains(r#""state":"taken_over","by":"mx2""#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<NodeRecord>(&text).unwrap(), record);
        let up: NodeRecord =
            serde_json::from_str(r#"{"name":"a","state":"up","started_ms":1,"beat_ms":2}"#)
                .unwrap();
        assert_eq!(up.state, NodeState::Up);
    }
}
