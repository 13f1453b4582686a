//! A tsubame node in cluster mode. [`ClusterNode::join`] checks the spool servers, claims the
//! node's record, reconciles the local spool with its copy and attaches the replica; then
//! [`ClusterNode::run`] is the cluster loop: heartbeat, fence delivery when out of touch,
//! look at the others, take over the dead. [`ClusterNode::hand_over`] is a drain's last step.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use spool::Spool;

use crate::ClusterError;
use crate::membership::{BeatError, Member, Membership, MembershipConfig, NodeRecord, NodeState};
use crate::rejoin::{Rejoined, rejoin};
use crate::replica::{JetStreamReplica, ReplicaConfig};
use crate::server_check;
use crate::takeover::{self, Takeover};

/// How often the membership lanes' leaders are checked (and moved apart).
const LEADERS_EVERY: Duration = Duration::from_secs(10);

/// `[cluster]`, validated.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Client URLs of the spool servers (`nats://host:4222`).
    pub servers: Vec<String>,
    /// Their monitoring URLs (`http://host:8222`), checked for safe settings at start.
    pub monitor: Vec<String>,
    pub replica: ReplicaConfig,
    pub membership: MembershipConfig,
}

/// What delivery is told: stop (true) or resume (false); and, after every stored
/// heartbeat, until when it may start deliveries (a frozen process wakes up fenced).
#[derive(Clone)]
pub struct Fence {
    pub set: Arc<dyn Fn(bool) + Send + Sync>,
    pub lease: Arc<dyn Fn(Instant) + Send + Sync>,
}

pub struct ClusterNode {
    config: ClusterConfig,
    spool: Spool,
    replica: JetStreamReplica,
    membership: Membership,
    js: jetstream::Context,
    started_ms: u64,
    view: Mutex<Vec<Member>>,
    draining: AtomicBool,
    /// Set when handing over: the loop stops beating so a survivor can win the record.
    quiet: AtomicBool,
    fenced: AtomicBool,
    addresses: Mutex<(Vec<String>, String)>,
    taking: Mutex<HashSet<String>>,
    recent: Mutex<Vec<Takeover>>,
}

impl ClusterNode {
    /// Joins the cluster with `spool` (open, delivery not started).
    pub async fn join(
        config: ClusterConfig,
        spool: Spool,
    ) -> Result<(Arc<ClusterNode>, Rejoined), ClusterError> {
        check_monitors(&config.monitor).await?;
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connect(config.servers.clone())
            .await
            .map_err(|e| ClusterError::Connect(e.to_string()))?;
        let connected = tokio::time::timeout(Duration::from_secs(30), async {
            while client.connection_state() != async_nats::connection::State::Connected {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        if connected.is_err() {
            return Err(ClusterError::Connect(format!(
                "none of {} answered within 30 s",
                config.servers.join(", ")
            )));
        }
        let info = client.server_info();
        server_check::check_version(&info.server_name, &info.version)?;
        let js = jetstream::new(client);
        let replica = JetStreamReplica::open(js.clone(), config.replica.clone()).await?;
        let membership = Membership::open(&js, config.membership.clone()).await?;
        membership.claim_self(Duration::from_secs(60)).await?;
        let node = Arc::new(ClusterNode {
            config,
            spool: spool.clone(),
            replica,
            membership,
            js,
            started_ms: crate::membership::now_ms(),
            view: Mutex::new(Vec::new()),
            draining: AtomicBool::new(false),
            quiet: AtomicBool::new(false),
            fenced: AtomicBool::new(false),
            addresses: Mutex::new((Vec::new(), String::new())),
            taking: Mutex::new(HashSet::new()),
            recent: Mutex::new(Vec::new()),
        });
        // A big spool takes a while to reconcile: keep the record fresh meanwhile.
        let keeper = {
            let node = node.clone();
            tokio::spawn(async move {
                loop {
                    let record = node.record(NodeState::Starting);
                    let _ = node.membership.beat(&record).await;
                    tokio::time::sleep(node.config.membership.heartbeat).await;
                }
            })
        };
        let rejoined = rejoin(&spool, &node.replica).await;
        keeper.abort();
        let rejoined = rejoined?;
        node.membership
            .beat(&node.record(NodeState::Up))
            .await
            .map_err(|e| match e {
                BeatError::TakenOver(by) => ClusterError::TakenOver(by),
                BeatError::Unreachable(reason) => ClusterError::Connect(reason),
            })?;
        // The shares of cluster-wide limits are known from the first moment.
        *node.view.lock().unwrap_or_else(|p| p.into_inner()) = node.membership.observe().await?;
        Ok((node, rejoined))
    }

    pub fn name(&self) -> &str {
        &self.config.membership.node
    }

    /// Where this node listens, shown to operators.
    pub fn set_addresses(&self, smtp: Vec<String>, http: String) {
        *self.addresses.lock().unwrap_or_else(|p| p.into_inner()) = (smtp, http);
    }

    /// The cluster as last seen (this node included).
    pub fn view(&self) -> Vec<Member> {
        self.view.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Nodes sharing the cluster-wide limits now (at least this one).
    pub fn active_nodes(&self) -> usize {
        self.view().iter().filter(|m| m.active()).count().max(1)
    }

    /// This node's rank among the nodes sharing the limits and their count, as last seen;
    /// None when it is out of touch (or not yet counted among them).
    pub fn share(&self) -> Option<(u32, u32)> {
        if self.fenced() {
            return None;
        }
        let view = self.view();
        let active: Vec<&str> = view
            .iter()
            .filter(|m| m.active())
            .map(|m| m.record.name.as_str())
            .collect();
        let rank = active.iter().position(|n| *n == self.name())?;
        Some((rank as u32, active.len() as u32))
    }

    pub fn fenced(&self) -> bool {
        self.fenced.load(Ordering::Relaxed)
    }

    /// Takeovers this node did since it started, newest last (at most 20 kept).
    pub fn takeovers(&self) -> Vec<Takeover> {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Marks the node draining (shown to the others; it keeps its work until handed over).
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    fn record(&self, state: NodeState) -> NodeRecord {
        let (smtp, http) = self
            .addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        NodeRecord {
            name: self.name().to_string(),
            state,
            started_ms: self.started_ms,
            beat_ms: crate::membership::now_ms(),
            smtp,
            http,
            queued: self.spool.totals().messages,
        }
    }

    /// The cluster loop. Returns only when another node took this node's record (it was cut
    /// off too long): delivery is fenced by then and the process must restart.
    pub async fn run(self: Arc<Self>, fence: Fence) -> ClusterError {
        // Looking at the others runs beside the heartbeats: a slow read (a server catching
        // up after a restart) must never delay this node's own heartbeat.
        let observer = AbortOnDrop(tokio::spawn(self.clone().observe_loop()));
        let mut tick = tokio::time::interval(self.config.membership.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !self.quiet.load(Ordering::Relaxed) {
                let state = if self.draining.load(Ordering::Relaxed) {
                    NodeState::Draining
                } else {
                    NodeState::Up
                };
                match self.membership.beat(&self.record(state)).await {
                    Ok(()) => {
                        if let Some(until) = self.membership.lease_until() {
                            (fence.lease)(until);
                        }
                    }
                    Err(BeatError::TakenOver(by)) => {
                        self.fenced.store(true, Ordering::Relaxed);
                        (fence.set)(true);
                        drop(observer);
                        return ClusterError::TakenOver(by);
                    }
                    Err(BeatError::Unreachable(reason)) => {
                        tracing::warn!(%reason, "cluster heartbeat failed");
                    }
                }
            }
            let fenced = self.membership.fenced() && !self.quiet.load(Ordering::Relaxed);
            if self.fenced.swap(fenced, Ordering::Relaxed) != fenced {
                (fence.set)(fenced);
            }
        }
    }

    /// Reads the membership every heartbeat (each read bounded in time) and starts the
    /// takeovers that are due.
    async fn observe_loop(self: Arc<Self>) {
        let heartbeat = self.config.membership.heartbeat;
        let mut leaders_checked: Option<Instant> = None;
        loop {
            tokio::time::sleep(heartbeat).await;
            if self.fenced() {
                continue;
            }
            match tokio::time::timeout(heartbeat * 4, self.membership.observe()).await {
                Ok(Ok(members)) => {
                    for member in &members {
                        if takeover::due(self.name(), member, &members) {
                            self.clone().start_takeover(member.clone());
                        }
                    }
                    // One node (the first live one by name) looks after the lanes' leaders.
                    let first = members
                        .iter()
                        .find(|m| m.alive)
                        .map(|m| m.record.name.as_str());
                    if first == Some(self.name())
                        && leaders_checked.is_none_or(|at| at.elapsed() >= LEADERS_EVERY)
                    {
                        leaders_checked = Some(Instant::now());
                        self.spread_leaders();
                    }
                    *self.view.lock().unwrap_or_else(|p| p.into_inner()) = members;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cluster membership unreadable"),
                Err(_) => tracing::warn!("cluster membership read timed out"),
            }
        }
    }

    /// Moves the membership lanes' leaders apart, in the background (a slow answer must not
    /// hold up the membership reads).
    fn spread_leaders(&self) {
        let js = self.js.clone();
        let streams = self.membership.streams();
        tokio::spawn(async move {
            let spread = tokio::time::timeout(
                Duration::from_secs(5),
                crate::membership::leaders::spread(&js, &streams),
            );
            match spread.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "membership lanes' leaders not checked"),
                Err(_) => tracing::warn!("membership lanes' leaders: check timed out"),
            }
        });
    }

    fn start_takeover(self: Arc<Self>, member: Member) {
        let name = member.record.name.clone();
        if !self
            .taking
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone())
        {
            return;
        }
        tokio::spawn(async move {
            let result =
                takeover::take_over(&self.membership, &self.replica, &self.spool, &member).await;
            match result {
                Ok(Some(report)) => {
                    metrics::counter!("tsubame_cluster_takeovers_total").increment(1);
                    metrics::counter!("tsubame_cluster_taken_over_messages_total")
                        .increment(report.imported as u64);
                    let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
                    recent.push(report);
                    let excess = recent.len().saturating_sub(20);
                    recent.drain(..excess);
                }
                Ok(None) => {}
                Err(e) => tracing::error!(node = %name, error = %e, "takeover failed; retried"),
            }
            self.taking
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&name);
        });
    }

    /// A drain's last step, once nothing is accepted or delivered here any more: asks the
    /// other nodes to take what is still queued, and waits (up to `wait`) until one has.
    /// False when nobody did in time: the work stays in this node's copy, taken over by the
    /// next node that sees it, or rejoined by this node when it starts again.
    pub async fn hand_over(&self, wait: Duration) -> Result<bool, ClusterError> {
        self.quiet.store(true, Ordering::Relaxed);
        self.membership
            .beat(&self.record(NodeState::HandingOver))
            .await
            .map_err(|e| ClusterError::Connect(e.to_string()))?;
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            let read = tokio::time::timeout(Duration::from_secs(2), self.membership.observe());
            if let Ok(members) = read.await
                && !members?.iter().any(|m| m.record.name == self.name())
            {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(false)
    }
}

/// Refuses spool servers whose settings or version lose acknowledged writes.
async fn check_monitors(monitors: &[String]) -> Result<(), ClusterError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| ClusterError::Connect(e.to_string()))?;
    for base in monitors {
        let url = format!("{}/varz", base.trim_end_matches('/'));
        let failed = |reason: String| ClusterError::Monitor {
            url: url.clone(),
            reason,
        };
        let varz: serde_json::Value = client
            .get(&url)
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?
            .json()
            .await
            .map_err(|e| failed(e.to_string()))?;
        server_check::check_varz(base, &varz)?;
    }
    Ok(())
}

/// Aborts a task when dropped (the observer ends with the loop that started it).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
