//! The delivery engine: takes every message the spool holds, routes its recipients into site
//! queues, keeps connections to each site within its shaping limits, and settles each
//! recipient as delivered, deferred (retry timer), bounced or expired.
//!
//! - this file: start-up, arrivals, routing, the timer loop, shutdown.
//! - `worker`: one connection's loop. `settle`: outcomes → spool records, DSNs, events.
//! - `control`: the operators' commands and the queue view.

mod control;
mod settle;
mod worker;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use smtp_wire::Reply;
use spool::{MessageId, Spool};
use tokio::sync::Notify;

pub use control::{DomainSummary, Gauges, QueueSummary, SiteSummary};

use crate::connection::ClientTimeouts;
use crate::events::EventLog;
use crate::outcome::classify::Classifier;
use crate::outcome::retry::RetryPolicy;
use crate::queue::{Fresh, Part, Site, State};
use crate::route::dns::DnsConfig;
use crate::route::{Route, RouteError, Router, RoutingConfig};
use crate::shaping::{ResponseRule, Shaping};
use crate::tls::TlsClients;

/// Memory for messages kept from their arrival for their first attempt; beyond it (a
/// backlog, a slow site) first attempts read the spool like retries do.
const FRESH_BYTES_MAX: usize = 64 << 20;

/// Everything the engine runs with, validated by the caller.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Our name: EHLO, DSN From and Reporting-MTA.
    pub hostname: String,
    pub dns: DnsConfig,
    pub routing: RoutingConfig,
    pub shaping: Shaping,
    pub classifier: Classifier,
    pub retry: RetryPolicy,
    pub timeouts: ClientTimeouts,
    /// Recipients per transaction (RFC 5321 §4.5.3.1.8: servers take at least 100).
    pub recipients_per_transaction: usize,
    /// Send one "delayed" DSN when mail is still deferred this long after acceptance;
    /// `None` for never.
    pub delay_warning: Option<Duration>,
    /// Where the JSON-lines event log goes; `None` for none.
    pub events_file: Option<std::path::PathBuf>,
}

pub(crate) struct Inner {
    spool: Spool,
    router: Router,
    config: DeliveryConfig,
    tls: TlsClients,
    state: Mutex<State>,
    /// Wakes the timer loop when an earlier timer or kick appears.
    timer_wake: Notify,
    events: EventLog,
    /// Acceptance → delivery, per delivered recipient (handle looked up once).
    latency: metrics::Histogram,
    /// Tasks that must finish before the spool may close (connections, settle writes).
    active: AtomicUsize,
    all_idle: Notify,
}

/// Counts a task as active until dropped.
pub(crate) struct ActiveGuard(Arc<Inner>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.all_idle.notify_waiters();
        }
    }
}

/// Handle to the running engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Engine {
    /// Starts delivering everything in the spool and everything that arrives later.
    pub fn start(spool: Spool, config: DeliveryConfig) -> Result<Engine, String> {
        Engine::start_with_listener(spool, config, None)
    }

    /// Like [`Engine::start`], with every event also handed to `listener` in batches.
    pub fn start_with_listener(
        spool: Spool,
        config: DeliveryConfig,
        listener: Option<crate::events::EventListener>,
    ) -> Result<Engine, String> {
        let dns = crate::route::dns::Dns::new(config.dns.clone())?;
        let router = Router::new(dns, config.routing.clone());
        let events = EventLog::new(config.events_file.clone(), listener)
            .map_err(|e| format!("opening the event log: {e}"))?;
        let inner = Arc::new(Inner {
            spool: spool.clone(),
            router,
            config,
            tls: TlsClients::new(),
            state: Mutex::new(State::default()),
            timer_wake: Notify::new(),
            events,
            latency: metrics::histogram!("tsubame_delivery_latency_seconds"),
            active: AtomicUsize::new(0),
            all_idle: Notify::new(),
        });
        // Subscribe before listing so nothing inserted in between is missed; a message seen
        // both ways is admitted once.
        let arrivals = spool.subscribe_arrivals(FRESH_BYTES_MAX);
        tokio::spawn(admit_backlog_then_arrivals(inner.clone(), arrivals));
        tokio::spawn(timer_loop(inner.clone()));
        Ok(Engine { inner })
    }

    /// Stops opening connections, lets each connection finish its current message, waits
    /// (at most `grace`) for pending spool writes. Undelivered recipients stay in the spool.
    pub async fn shutdown(&self, grace: Duration) {
        {
            let mut state = self.inner.lock();
            state.stopping = true;
            for site in state.sites.values() {
                site.notify.notify_waiters();
            }
        }
        self.inner.timer_wake.notify_one();
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let idle = self.inner.all_idle.notified();
            if self.inner.active.load(Ordering::Acquire) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                tracing::warn!(
                    tasks = self.inner.active.load(Ordering::Acquire),
                    "delivery shutdown grace ran out; unfinished attempts will be retried after restart"
                );
                break;
            }
        }
        self.inner.events.close();
    }
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn guard(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Ordering::AcqRel);
        ActiveGuard(self.clone())
    }

    /// Splits a spooled message into parts (pending recipients by domain) and routes them,
    /// or puts them on the retry timer when `schedule` (attempts, next attempt in Unix ms,
    /// from the spool after a restart) says they were deferred. `stored` is the record from
    /// the arrival notice, when it came with one: then nothing is read from disk.
    fn admit(
        self: &Arc<Self>,
        id: MessageId,
        schedule: Option<(u32, u64)>,
        stored: Option<spool::Stored>,
    ) {
        let fresh = stored.and_then(|record| {
            let envelope = record.envelope().ok()?;
            Some(Arc::new(Fresh { envelope, record }))
        });
        let read;
        let (envelope, done): (&spool::Envelope, &[bool]) = match &fresh {
            // Just stored: no recipient can be final yet.
            Some(fresh) => (&fresh.envelope, &[]),
            None => {
                read = match self.spool.envelope(id) {
                    Ok(found) => found,
                    // Finished and removed between the listing and the arrival notice.
                    Err(spool::SpoolError::NotFound) => return,
                    Err(err) => {
                        tracing::error!(%id, error = %err, "cannot read a spooled envelope; it stays queued until restart");
                        return;
                    }
                };
                (&read.0, &read.1)
            }
        };
        // A scheduled message's queue clock (expiry, delay notices) starts when it may
        // first be sent, not when it was accepted.
        let not_before_ms = envelope.not_before_ms;
        let clock_ms = envelope.received_ms.max(not_before_ms);
        let mut by_domain: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for (index, rcpt) in envelope.recipients.iter().enumerate() {
            if done.get(index).copied().unwrap_or(false) {
                continue;
            }
            let domain = rcpt
                .address
                .rsplit_once('@')
                .map_or("", |(_, d)| d)
                .to_ascii_lowercase();
            by_domain.entry(domain).or_default().push(index as u32);
        }
        let chunk = self.config.recipients_per_transaction.max(1);
        let mut parts = Vec::new();
        for (domain, rcpts) in by_domain {
            // Parts of a known domain share its name: one allocation per domain, not per
            // message, when millions wait.
            let known = self
                .lock()
                .routed
                .get_key_value(domain.as_str())
                .map(|(name, _)| name.clone());
            let domain: Arc<str> = known.unwrap_or_else(|| Arc::from(domain.as_str()));
            for slice in rcpts.chunks(chunk) {
                parts.push(Part {
                    id,
                    domain: domain.clone(),
                    rcpts: slice.to_vec(),
                    attempts: schedule.map_or(0, |(attempts, _)| attempts),
                    received_ms: clock_ms,
                    delay_warned: false,
                    fresh: fresh.clone(),
                });
            }
        }
        if parts.is_empty() {
            // Every recipient is final but the removal was not recorded before a restart.
            let inner = self.clone();
            let guard = self.guard();
            tokio::spawn(async move {
                let _guard = guard;
                if let Err(err) = inner.spool.remove(id).await {
                    tracing::error!(%id, error = %err, "removing a finished message failed");
                }
            });
            return;
        }
        self.lock().add_message(id, parts.len() as u32);
        let wait_ms = schedule
            .map_or(0, |(_, next)| next)
            .max(not_before_ms)
            .saturating_sub(now_ms());
        if wait_ms > 0 {
            let due = Instant::now() + Duration::from_millis(wait_ms);
            let mut state = self.lock();
            let mut earliest = false;
            for part in parts {
                earliest |= state.schedule(part, due);
            }
            drop(state);
            if earliest {
                self.timer_wake.notify_one();
            }
            return;
        }
        for part in parts {
            self.route_part(part);
        }
    }

    /// Sends a part to its site, resolving the domain first when the route is not cached.
    pub(crate) fn route_part(self: &Arc<Self>, part: Part) {
        if let Some(route) = self.router.cached(&part.domain) {
            self.place(part, route);
            return;
        }
        self.lock().routing += 1;
        let inner = self.clone();
        tokio::spawn(async move {
            let routed = inner.router.route(&part.domain).await;
            inner.lock().routing -= 1;
            match routed {
                Ok(route) => inner.place(part, route),
                Err(err) => inner.route_failed(part, err),
            }
        });
    }

    fn place(self: &Arc<Self>, part: Part, route: Arc<Route>) {
        let now = Instant::now();
        let site_name = route.site.clone();
        let open = {
            let mut state = self.lock();
            let domain = part.domain.clone();
            state.ensure_site(&domain, &route, || self.new_site(&route, now));
            state.push_ready(part, &site_name);
            !self.spool.is_poisoned() && state.open_connection(&site_name, now)
        };
        if open {
            self.spawn_connection(site_name, route);
        }
    }

    fn new_site(&self, route: &Arc<Route>, now: Instant) -> Site {
        let shaping = &self.config.shaping;
        let (provider, limits) = shaping.for_hosts(route.hosts.iter().map(|h| h.host.as_str()));
        let rules: Arc<[ResponseRule]> = provider
            .map(|p| p.rules.as_slice())
            .unwrap_or(&[])
            .iter()
            .chain(shaping.rules.iter())
            .cloned()
            .collect();
        tracing::debug!(site = %route.site, provider = ?provider.map(|p| &p.name), "new site");
        let mut site = Site::new(
            route.clone(),
            provider.map(|p| p.name.clone()),
            limits.clone(),
            rules,
            now,
        );
        site.provider_connections_max = provider.and_then(|p| p.connections_max_total);
        site
    }

    pub(crate) fn spawn_connection(self: &Arc<Self>, site: Arc<str>, route: Arc<Route>) {
        let guard = self.guard();
        tokio::spawn(worker::run(self.clone(), site, route, guard));
    }

    /// Opens more connections to a site if its queue and limits allow.
    pub(crate) fn kick(self: &Arc<Self>, site_name: &Arc<str>) {
        if self.spool.is_poisoned() {
            return;
        }
        loop {
            let route = {
                let mut state = self.lock();
                if !state.open_connection(site_name, Instant::now()) {
                    break;
                }
                match state.sites.get(site_name) {
                    Some(site) => site.route.clone(),
                    None => break,
                }
            };
            self.spawn_connection(site_name.clone(), route);
        }
        self.timer_wake.notify_one();
    }

    fn route_failed(self: &Arc<Self>, part: Part, err: RouteError) {
        let reply = match &err {
            RouteError::NullMx(domain) => Reply::new(
                556,
                (5, 1, 10),
                format!("Recipient address has null MX: {domain} accepts no mail"),
            ),
            RouteError::NoDomain(domain) => Reply::new(
                550,
                (5, 1, 2),
                format!("Host or domain name not found: {domain} has no MX or address records"),
            ),
            RouteError::Temporary(failure) => {
                Reply::new(451, (4, 4, 3), format!("DNS lookup failed: {failure}"))
            }
        };
        let results = part.rcpts.iter().map(|&i| (i, reply.clone())).collect();
        let site: Arc<str> = Arc::from(format!("dns:{}", part.domain).as_str());
        self.settle(part, results, settle::AttemptInfo::without_connection(site));
    }
}

/// Admits what the spool already holds (oldest first, in pages), then every new arrival.
async fn admit_backlog_then_arrivals(
    inner: Arc<Inner>,
    mut arrivals: tokio::sync::mpsc::UnboundedReceiver<spool::Arrival>,
) {
    let mut after = None;
    let mut admitted = 0u64;
    loop {
        let page = inner.spool.list(after, 1000);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        // What the spool announced to us comes by notice; admitting it here too would
        // deliver it twice.
        for info in page.iter().filter(|info| !info.announced) {
            let schedule = (info.attempts > 0).then_some((info.attempts, info.next_attempt_ms));
            inner.admit(info.id, schedule, None);
        }
        admitted += page.len() as u64;
        tokio::task::yield_now().await;
    }
    if admitted > 0 {
        tracing::info!(messages = admitted, "queued messages handed to delivery");
    }
    while let Some(arrival) = arrivals.recv().await {
        if inner.lock().stopping {
            break;
        }
        inner.admit(arrival.id, None, arrival.stored);
    }
}

/// Moves due retries back to their sites and re-checks kicked sites.
async fn timer_loop(inner: Arc<Inner>) {
    loop {
        let (due, kicks, wake) = {
            let mut state = inner.lock();
            if state.stopping {
                return;
            }
            let now = Instant::now();
            let due = state.take_due(now);
            let kicks = state.take_kicks(now);
            (due, kicks, state.next_wake())
        };
        for part in due {
            inner.route_part(part);
        }
        for site in kicks {
            inner.kick(&site);
        }
        let notified = inner.timer_wake.notified();
        match wake {
            Some(at) => {
                let _ = tokio::time::timeout_at(at.into(), notified).await;
            }
            None => notified.await,
        }
    }
}
