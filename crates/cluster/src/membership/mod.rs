//! Who is in the cluster. Each node keeps a record under `node.<name>` and rewrites it every
//! heartbeat. A node whose record has not changed for `dead_after`, measured on the
//! observer's own clock (clocks need not agree), is dead.
//!
//! The records live in three buckets ("lanes"), each its own replicated stream with its own
//! leader: a spool server's death leaves the writes of the lanes it led waiting for an
//! election (4 to 9 s in NATS), and a single bucket would stall every heartbeat, fence every
//! node and pause delivery cluster-wide for that long. `TSUBAME_NODES` is the authority: a
//! node writes its record there as a compare-and-set on the revision it wrote last, and
//! taking a dead node's work over starts with one compare-and-set there (its record becomes
//! "taken over by X" at the revision seen stale), so only one survivor wins it. The two
//! liveness lanes only carry the heartbeats. A heartbeat stored in any lane keeps a node's
//! lease, but only a lease that never lapsed: a node that went quiet for `fence_after`
//! (frozen, cut off) must win its authority record back before it delivers again, and finds
//! it taken over if it was. `leaders` keeps the lanes' leaders on different servers.
//!
//! A node stops delivering (fences itself) when no heartbeat of its own was stored for
//! `fence_after`, shorter than `dead_after`, so it is quiet before anyone takes over. Silence
//! is counted only while the observer's own heartbeats are stored and it reads every lane:
//! what it cannot see, it holds against nobody.

mod lane;
pub mod leaders;
mod record;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::future::join_all;

use crate::ClusterError;
use lane::{Lane, lost_race};
use record::encode;
pub use record::{NodeRecord, NodeState, now_ms};

/// The authority lane.
pub const BUCKET: &str = "TSUBAME_NODES";
/// The lanes carrying heartbeats beside the authority.
pub const LIVENESS_BUCKETS: [&str; 2] = ["TSUBAME_NODES_2", "TSUBAME_NODES_3"];

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
    /// Per lane (authority first), the revision last read; None: no record there.
    revisions: Vec<Option<u64>>,
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
    authority: Lane,
    liveness: Vec<Lane>,
    config: MembershipConfig,
    seen: Mutex<HashMap<String, Seen>>,
    /// The names with an authority record, as last listed (the listing needs the
    /// authority's leader; direct reads do not).
    names: Mutex<BTreeSet<String>>,
    /// Our record's revision in the authority lane.
    revision: Mutex<Option<u64>>,
    /// When the last heartbeat that kept our lease was sent.
    lease_sent: Mutex<Option<Instant>>,
    /// Since when this node's heartbeats have all been stored (None after a failure). Others'
    /// silence counts only from then: when the lanes take no writes at all, nobody can
    /// beat, and nobody is judged dead for it.
    streak: Mutex<Option<Instant>>,
    /// Since when every look at the membership read every lane (None after a failed read).
    sight: Mutex<Option<Instant>>,
    /// The last record written to the authority (or tried) and when: a heartbeat whose
    /// answer was lost may still have been stored.
    last_try: Mutex<Option<(bytes::Bytes, Instant)>>,
    /// Records written by the heartbeats before it, for the same check.
    recent: Mutex<std::collections::VecDeque<(bytes::Bytes, Instant)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Membership {
    /// Opens (creating when missing) the membership lanes.
    pub async fn open(
        js: &jetstream::Context,
        config: MembershipConfig,
    ) -> Result<Membership, ClusterError> {
        let authority = Lane::open(js, BUCKET, config.replicas).await?;
        let mut liveness = Vec::new();
        for bucket in LIVENESS_BUCKETS {
            liveness.push(Lane::open(js, bucket, config.replicas).await?);
        }
        Ok(Membership {
            authority,
            liveness,
            config,
            seen: Mutex::new(HashMap::new()),
            names: Mutex::new(BTreeSet::new()),
            revision: Mutex::new(None),
            lease_sent: Mutex::new(None),
            streak: Mutex::new(None),
            sight: Mutex::new(None),
            last_try: Mutex::new(None),
            recent: Mutex::new(std::collections::VecDeque::new()),
        })
    }

    pub fn config(&self) -> &MembershipConfig {
        &self.config
    }

    /// The streams behind the lanes (for keeping their leaders apart).
    pub fn streams(&self) -> Vec<String> {
        std::iter::once(BUCKET)
            .chain(LIVENESS_BUCKETS)
            .map(|b| format!("KV_{b}"))
            .collect()
    }

    fn key(node: &str) -> String {
        format!("node.{node}")
    }

    fn lanes(&self) -> impl Iterator<Item = &Lane> {
        std::iter::once(&self.authority).chain(self.liveness.iter())
    }

    /// Claims this node's own record at start: whatever it held (a previous run, or a
    /// finished takeover) is replaced by `Starting`. A takeover of this node still running
    /// on a live node is waited for (up to `wait`), so its imports and ours do not overlap.
    pub async fn claim_self(&self, wait: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + wait;
        let key = Self::key(&self.config.node);
        loop {
            // A bucket just created may not answer reads on every server yet.
            let entry = match self.authority.record(&key).await {
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
                    .authority
                    .kv
                    .update(&key, encode(&record), *revision)
                    .await
                    .map_err(|e| e.to_string()),
                None => self
                    .authority
                    .kv
                    .create(&key, encode(&record))
                    .await
                    .map_err(|e| e.to_string()),
            };
            match written {
                Ok(revision) => {
                    *lock(&self.revision) = Some(revision);
                    *lock(&self.lease_sent) = Some(sent);
                    let limit = self.config.heartbeat * 2;
                    join_all(self.liveness.iter().map(|lane| {
                        tokio::time::timeout(limit, lane.kv.put(&key, encode(&record)))
                    }))
                    .await;
                    return Ok(());
                }
                // Someone wrote in between (a taker marking it): look again.
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(reason) => return Err(self.authority.failed(reason)),
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

    /// Stores this node's record in every lane: in the authority as a compare-and-set on our
    /// last revision. Stored in the authority, or in another lane while our lease still
    /// runs, it keeps the lease.
    pub async fn beat(&self, record: &NodeRecord) -> Result<(), BeatError> {
        let key = Self::key(&self.config.node);
        let Some(revision) = *lock(&self.revision) else {
            return Err(BeatError::Unreachable("not claimed yet".into()));
        };
        let sent = Instant::now();
        let written = encode(record);
        let limit = self.config.heartbeat * 2;
        let authority = tokio::time::timeout(
            limit,
            self.authority.kv.update(&key, written.clone(), revision),
        );
        let liveness = join_all(
            self.liveness
                .iter()
                .map(|lane| tokio::time::timeout(limit, lane.kv.put(&key, written.clone()))),
        );
        let (authority, liveness) = tokio::join!(authority, liveness);
        self.remember_try(written, sent);
        let reason = match authority {
            Ok(Ok(revision)) => {
                self.stored(Some(revision), sent);
                return Ok(());
            }
            Ok(Err(e)) if lost_race(&e) => return self.lost_race(&key).await,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_string(),
        };
        let elsewhere = liveness.iter().any(|r| matches!(r, Ok(Ok(_))));
        if elsewhere && self.leased_at(sent) {
            tracing::debug!(%reason, "heartbeat kept by the liveness lanes");
            self.stored(None, sent);
            return Ok(());
        }
        self.broken_streak();
        let others: Vec<String> = liveness
            .iter()
            .map(|r| match r {
                Ok(Ok(_)) => "stored".to_string(),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "timed out".to_string(),
            })
            .collect();
        Err(BeatError::Unreachable(format!(
            "{reason} (liveness lanes: {}; lease {})",
            others.join(", "),
            if self.leased_at(sent) {
                "running"
            } else {
                "lapsed"
            }
        )))
    }

    /// The authority refused our compare-and-set: either our own earlier write whose answer
    /// was lost (its server died before replying), or another node took our work over.
    async fn lost_race(&self, key: &str) -> Result<(), BeatError> {
        let entry = self.authority.raw(key).await;
        if let Ok(Some((value, current))) = &entry
            && let Some(tried) = self.when_written(value)
        {
            self.stored(Some(*current), tried);
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

    fn remember_try(&self, written: bytes::Bytes, sent: Instant) {
        let previous = lock(&self.last_try).replace((written, sent));
        if let Some(previous) = previous {
            let mut recent = lock(&self.recent);
            recent.push_back(previous);
            if recent.len() > 8 {
                recent.pop_front();
            }
        }
    }

    /// True when our lease still ran at `at` (it never lapsed since it was last kept).
    fn leased_at(&self, at: Instant) -> bool {
        matches!(*lock(&self.lease_sent), Some(sent) if at < sent + self.config.fence_after)
    }

    fn stored(&self, revision: Option<u64>, sent: Instant) {
        if let Some(revision) = revision {
            *lock(&self.revision) = Some(revision);
        }
        let mut lease = lock(&self.lease_sent);
        *lease = Some(lease.map_or(sent, |old| old.max(sent)));
        lock(&self.streak).get_or_insert(sent);
    }

    /// When this node wrote `value` in one of its recent heartbeats, if it did.
    fn when_written(&self, value: &[u8]) -> Option<Instant> {
        let last = lock(&self.last_try).clone();
        let recent = lock(&self.recent);
        last.iter()
            .chain(recent.iter())
            .find(|(written, _)| written[..] == value[..])
            .map(|(_, at)| *at)
    }

    fn broken_streak(&self) {
        *lock(&self.streak) = None;
    }

    /// Until when this node may start deliveries: its last stored heartbeat's sending time
    /// plus `fence_after` (the others wait `dead_after` from a later moment).
    pub fn lease_until(&self) -> Option<Instant> {
        lock(&self.lease_sent).map(|sent| sent + self.config.fence_after)
    }

    /// True when our last stored heartbeat was sent more than `fence_after` ago: the others
    /// may soon count us dead, so delivery must stop.
    pub fn fenced(&self) -> bool {
        match *lock(&self.lease_sent) {
            Some(sent) => sent.elapsed() > self.config.fence_after,
            None => true,
        }
    }

    /// Reads every node's record in every lane and updates when each last changed. A lane
    /// that does not answer is skipped (and, meanwhile, nobody is judged dead).
    pub async fn observe(&self) -> Result<Vec<Member>, ClusterError> {
        let limit = self.config.heartbeat * 2;
        let listed = tokio::time::timeout(limit, self.authority.names()).await;
        let listing_failed = match listed {
            Ok(Ok(names)) => {
                *lock(&self.names) = names.into_iter().collect();
                None
            }
            Ok(Err(e)) => Some(e),
            Err(_) => Some(self.authority.failed("listing timed out")),
        };
        let names: Vec<String> = lock(&self.names).iter().cloned().collect();
        if names.is_empty()
            && let Some(e) = listing_failed
        {
            return Err(e);
        }
        // [lane][name]: Err when that read failed.
        let reads: Vec<Vec<Result<Option<(NodeRecord, u64)>, ()>>> =
            join_all(self.lanes().map(|lane| {
                join_all(names.iter().map(|name| async move {
                    match tokio::time::timeout(limit, lane.record(&Self::key(name))).await {
                        Ok(Ok(found)) => Ok(found),
                        _ => Err(()),
                    }
                }))
            }))
            .await;
        let now = Instant::now();
        let every_read = reads.iter().flatten().all(|r| r.is_ok());
        {
            let mut sight = lock(&self.sight);
            if every_read {
                sight.get_or_insert(now);
            } else {
                *sight = None;
            }
        }
        if !names.is_empty() && reads.iter().flatten().all(|r| r.is_err()) {
            return Err(self.authority.failed("no lane answered"));
        }
        let fenced = self.fenced();
        // Silence is only held against a node while this node could write itself and see
        // everything.
        let since = match (*lock(&self.streak), *lock(&self.sight)) {
            (Some(streak), Some(sight)) => Some(streak.max(sight)),
            _ => None,
        };
        let mut seen = lock(&self.seen);
        let mut members = Vec::new();
        let mut gone = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let lanes: Vec<&Result<Option<(NodeRecord, u64)>, ()>> =
                reads.iter().map(|lane| &lane[i]).collect();
            // No authority record: forgotten after a takeover (or never claimed).
            if let Ok(None) = lanes[0] {
                gone.push(name.clone());
                continue;
            }
            let Some((record, revision)) = pick(&lanes, seen.get(name)) else {
                continue;
            };
            let at = seen.entry(name.clone()).or_insert(Seen {
                revisions: lanes
                    .iter()
                    .map(|r| {
                        r.as_ref()
                            .ok()
                            .and_then(|f| f.as_ref().map(|(_, rev)| *rev))
                    })
                    .collect(),
                changed: now,
            });
            for (lane, read) in lanes.iter().enumerate() {
                let Ok(found) = read else { continue };
                let revision = found.as_ref().map(|(_, rev)| *rev);
                if at.revisions.get(lane) != Some(&revision) {
                    if let Some(slot) = at.revisions.get_mut(lane) {
                        *slot = revision;
                    }
                    at.changed = now;
                }
            }
            let silent_for = now.duration_since(at.changed);
            let judged_for = match since {
                Some(since) => now.duration_since(at.changed.max(since)),
                None => Duration::ZERO,
            };
            let alive = if *name == self.config.node {
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
        seen.retain(|name, _| members.iter().any(|m| &m.record.name == name));
        drop(seen);
        if !gone.is_empty() {
            let mut known = lock(&self.names);
            for name in gone {
                known.remove(&name);
            }
        }
        members.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        Ok(members)
    }

    /// Marks a dead node's record as taken over by this node in the authority, if it still
    /// is at `revision` (nobody else won it, the node did not come back). True when this
    /// node won.
    pub async fn mark_taken_over(&self, member: &Member) -> Result<bool, ClusterError> {
        let mut record = member.record.clone();
        record.state = NodeState::TakenOver {
            by: self.config.node.clone(),
        };
        match self
            .authority
            .kv
            .update(Self::key(&record.name), encode(&record), member.revision)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if lost_race(&e) => Ok(false),
            Err(e) => Err(self.authority.failed(e)),
        }
    }

    /// Removes a node's record once its work is elsewhere (it registers anew if it returns).
    pub async fn forget(&self, node: &str) -> Result<(), ClusterError> {
        let key = Self::key(node);
        self.authority
            .kv
            .purge(&key)
            .await
            .map_err(|e| self.authority.failed(e))?;
        // The liveness copies are only tidied: without an authority record they count for
        // nothing.
        let limit = self.config.heartbeat * 2;
        join_all(
            self.liveness
                .iter()
                .map(|lane| tokio::time::timeout(limit, lane.kv.purge(&key))),
        )
        .await;
        lock(&self.names).remove(node);
        Ok(())
    }
}

/// The record to show for a node and its authority revision: a takeover mark in the
/// authority wins; otherwise the newest heartbeat of any lane.
fn pick(
    lanes: &[&Result<Option<(NodeRecord, u64)>, ()>],
    seen: Option<&Seen>,
) -> Option<(NodeRecord, u64)> {
    let authority = lanes
        .first()
        .and_then(|r| r.as_ref().ok())
        .and_then(|f| f.as_ref());
    let revision = match authority {
        Some((_, revision)) => *revision,
        None => seen.and_then(|s| s.revisions.first().copied().flatten())?,
    };
    if let Some((record, _)) = authority
        && matches!(record.state, NodeState::TakenOver { .. })
    {
        return Some((record.clone(), revision));
    }
    let newest = lanes
        .iter()
        .filter_map(|r| r.as_ref().ok().and_then(|f| f.as_ref()))
        .max_by_key(|(record, _)| record.beat_ms)?;
    Some((newest.0.clone(), revision))
}
