//! The sender-facing record of what happened to every message: events from the ingresses
//! (accepted, suppressed) and from delivery (delivered, deferred, bounced, expired) are
//! recorded in the control plane in batches, hard bounces and complaints fill the tenant's
//! suppression list, and webhooks push the events to the tenant's systems.
//!
//! # Layout
//! - [`EventSink`] and [`Recorder`] (this file): the channel from every producer and the
//!   task that writes batches, suppresses, and wakes the webhooks.
//! - [`convert`]: delivery events and accepted messages → stored events.
//! - [`webhooks`]: one task per endpoint, following the event table with a cursor.
//! - [`ssrf`]: which addresses a webhook may be sent to.
//! - [`reports`] and [`inbound`]: bounces and feedback reports that come back to a return
//!   path, read and turned into events.
//! - [`signature`]: HMAC-SHA256 signing of payloads.

pub mod convert;
pub mod inbound;
pub mod reports;
pub mod signature;
pub mod ssrf;
pub mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use store::{EventKind, EventStore, NewEvent};
use tokio::sync::{Notify, mpsc};

/// Events waiting to be written; beyond this, new ones are dropped and counted rather than
/// letting a stalled database grow memory without bound.
const PENDING_MAX: usize = 2_000_000;
/// Largest batch written in one transaction.
const BATCH_MAX: usize = 20_000;
/// How long the recorder gathers events before writing.
const GATHER: Duration = Duration::from_millis(50);

/// Where producers put events; cheap to clone, never blocks.
#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::UnboundedSender<Vec<NewEvent>>,
    pending: Arc<AtomicUsize>,
}

impl EventSink {
    /// Queues events for recording.
    pub fn record(&self, events: Vec<NewEvent>) {
        if events.is_empty() {
            return;
        }
        let n = events.len();
        if self.pending.fetch_add(n, Ordering::Relaxed) + n > PENDING_MAX {
            self.pending.fetch_sub(n, Ordering::Relaxed);
            metrics::counter!("tsubame_events_dropped_total").increment(n as u64);
            return;
        }
        if self.tx.send(events).is_err() {
            self.pending.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Events handed over and not yet written.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Waits (up to `limit`) until everything handed over so far is written.
    pub async fn drain(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.pending() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Per-tenant wake-ups after writes: a webhook task sleeps until its own tenant has new
/// events, so a batch for one tenant does not make every endpoint of every tenant look.
#[derive(Default)]
pub struct Written {
    tenants: std::sync::Mutex<std::collections::HashMap<String, Arc<Notify>>>,
}

impl Written {
    /// What to wait on for `tenant_id`'s next events.
    pub fn of(&self, tenant_id: &str) -> Arc<Notify> {
        self.tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(tenant_id.to_string())
            .or_default()
            .clone()
    }

    fn wake(&self, tenant_id: &str) {
        let notify = self
            .tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant_id)
            .cloned();
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
    }
}

/// The writing side.
pub struct Recorder<S> {
    store: S,
    rx: mpsc::UnboundedReceiver<Vec<NewEvent>>,
    pending: Arc<AtomicUsize>,
    /// Wakes the webhooks of the tenants a written batch had events for.
    pub written: Arc<Written>,
}

/// A sink and the recorder that drains it.
pub fn channel<S: EventStore>(store: S) -> (EventSink, Recorder<S>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let pending = Arc::new(AtomicUsize::new(0));
    (
        EventSink {
            tx,
            pending: pending.clone(),
        },
        Recorder {
            store,
            rx,
            pending,
            written: Arc::default(),
        },
    )
}

/// The suppression a recorded event calls for, if any.
fn suppression_for(event: &NewEvent) -> Option<&'static str> {
    match event.kind {
        EventKind::Bounced => {
            // Only a permanent failure of the address itself: a full mailbox or a policy
            // block says nothing about whether the address exists.
            let category = event.detail.as_deref().and_then(|d| {
                serde_json::from_str::<serde_json::Value>(d)
                    .ok()?
                    .get("category")?
                    .as_str()
                    .map(str::to_string)
            });
            matches!(category.as_deref(), Some("invalid_recipient")).then_some("bounce")
        }
        EventKind::Complained => Some("complaint"),
        // Leaving a campaign's lists (the detail names them) is not leaving all mail.
        EventKind::Unsubscribed => {
            let scoped = event.detail.as_deref().is_some_and(|d| {
                serde_json::from_str::<serde_json::Value>(d)
                    .ok()
                    .is_some_and(|v| v.get("lists").is_some())
            });
            (!scoped).then_some("unsubscribe")
        }
        _ => None,
    }
}

impl<S: EventStore> Recorder<S> {
    /// Writes batches until every sink is dropped, then writes what is left and returns.
    pub async fn run(mut self) {
        let mut batch: Vec<NewEvent> = Vec::new();
        loop {
            match self.rx.recv().await {
                Some(first) => batch.extend(first),
                None => break,
            }
            // Gather what arrives meanwhile: one transaction per batch, not per event.
            let deadline = tokio::time::Instant::now() + GATHER;
            while batch.len() < BATCH_MAX {
                match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                    Ok(Some(more)) => batch.extend(more),
                    Ok(None) | Err(_) => break,
                }
            }
            self.write(&mut batch).await;
        }
        self.write(&mut batch).await;
    }

    async fn write(&self, batch: &mut Vec<NewEvent>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len();
        let started = std::time::Instant::now();
        let mut tries = 0;
        let mut waited = 0u64;
        loop {
            match self.store.add_events(batch).await {
                Ok(()) => break,
                // The database is down (a shared PostgreSQL restarting): the batch waits,
                // and what arrives meanwhile queues up to PENDING_MAX.
                Err(err) if err.is_unavailable() => {
                    waited += 1;
                    if waited == 1 || waited % 30 == 0 {
                        tracing::warn!(error = %err, events = n, "the database is unavailable; events wait");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(err) if tries < 5 => {
                    tries += 1;
                    tracing::warn!(error = %err, events = n, "recording events failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(err) => {
                    tracing::error!(error = %err, events = n, "recording events failed; dropping the batch");
                    metrics::counter!("tsubame_events_dropped_total").increment(n as u64);
                    break;
                }
            }
        }
        metrics::histogram!("tsubame_events_write_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("tsubame_events_recorded_total").increment(n as u64);
        suppress(&self.store, batch).await;
        self.pending.fetch_sub(n, Ordering::Relaxed);
        batch.clear();
        let tenants: std::collections::BTreeSet<&str> =
            batch.iter().map(|e| e.tenant_id.as_str()).collect();
        for tenant in tenants {
            self.written.wake(tenant);
        }
    }
}

/// Adds the suppressions that recorded `events` call for.
pub(crate) async fn suppress<S: EventStore>(store: &S, events: &[NewEvent]) {
    let mut by_tenant: std::collections::BTreeMap<&str, Vec<(String, String)>> =
        std::collections::BTreeMap::new();
    for event in events {
        if let Some(reason) = suppression_for(event) {
            by_tenant
                .entry(&event.tenant_id)
                .or_default()
                .push((event.recipient.clone(), reason.to_string()));
        }
    }
    for (tenant, entries) in by_tenant {
        if let Err(err) = store.add_suppressions(tenant, &entries).await {
            tracing::error!(error = %err, tenant, "adding suppressions failed");
        }
    }
}

/// Forgets events older than `retention`, once an hour, for as long as the store lives.
pub async fn purge_forever<S: EventStore>(store: S, retention: Duration) {
    loop {
        let before = convert::now_ms() - retention.as_millis() as i64;
        match store.purge_events(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "old events purged"),
            Err(err) => tracing::warn!(error = %err, "purging old events failed"),
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsubscribed(detail: Option<&str>) -> NewEvent {
        NewEvent {
            tenant_id: "t_1".into(),
            time_ms: 0,
            kind: EventKind::Unsubscribed,
            message_id: "m".into(),
            recipient: "ann@x.test".into(),
            custom_id: None,
            tags: None,
            detail: detail.map(str::to_string),
        }
    }

    #[test]
    fn leaving_lists_suppresses_nothing_leaving_all_mail_does() {
        assert_eq!(suppression_for(&unsubscribed(None)), Some("unsubscribe"));
        assert_eq!(
            suppression_for(&unsubscribed(Some(r#"{"via":"mailto"}"#))),
            Some("unsubscribe")
        );
        assert_eq!(
            suppression_for(&unsubscribed(Some(
                r#"{"lists":["ls_1"],"via":"one-click"}"#
            ))),
            None
        );
    }
}
