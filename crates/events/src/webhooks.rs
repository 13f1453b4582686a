//! Webhook delivery: one task per endpoint follows the event table from the endpoint's
//! cursor, posts batches of its tenant's events (of the kinds it chose) signed with its
//! secret, and moves the cursor only when the endpoint answered 2xx. So an endpoint that is
//! down receives everything once it is back, in event order (hence in order per message),
//! and a restart resumes where delivery stopped. Failures back off exponentially; events
//! still undelivered after `give_up_after` (24 h) are dropped, logged and recorded in the
//! endpoint's delivery log. Each endpoint has its own task and its own time limits, so a
//! slow or dead endpoint delays nobody else, and never delivery (events are read from the
//! database, after the fact).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use store::{EventFilter, EventStore, StoredEvent, Webhook, WebhookDelivery};
use tokio::sync::Notify;

use crate::convert::now_ms;
use crate::signature;
use crate::ssrf::Guard;

/// How webhooks are delivered.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Events per request.
    pub batch_max: u32,
    /// Time for an endpoint to answer.
    pub timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Undelivered events older than this are dropped.
    pub give_up_after: Duration,
    pub guard: Guard,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            batch_max: 100,
            timeout: Duration::from_secs(10),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(600),
            give_up_after: Duration::from_secs(24 * 3600),
            guard: Guard::default(),
        }
    }
}

/// An event as the API and webhooks show it.
pub fn event_json(e: &StoredEvent) -> Value {
    let tags: Value = e
        .event
        .tags
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Array(Vec::new()));
    let detail: Value = e
        .event
        .detail
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_else(|| json!({}));
    json!({
        "id": e.id,
        "type": e.event.kind.as_str(),
        "time_ms": e.event.time_ms,
        "message_id": e.event.message_id,
        "recipient": e.event.recipient,
        "custom_id": e.event.custom_id,
        "tags": tags,
        "detail": detail,
    })
}

/// Starts and stops one task per endpoint as endpoints are added and removed.
/// Told of every delivered batch: the time, the tenant, and each event's age at delivery
/// (ms), for the webhook freshness objectives.
pub type FreshnessObserver = Arc<dyn Fn(i64, &str, &[i64]) + Send + Sync>;

pub async fn run<S: EventStore + Clone + 'static>(
    store: S,
    written: Arc<crate::Written>,
    config: WebhookConfig,
    observer: Option<FreshnessObserver>,
    duty: leases::Duty,
) {
    let config = Arc::new(config);
    // Each task keeps the secret it signs with: a rotation restarts it (from the saved
    // cursor) with the new one.
    let mut tasks: HashMap<String, (tokio::task::JoinHandle<()>, String)> = HashMap::new();
    loop {
        // One node of a cluster dispatches: off duty, the followers stop (a batch cut off
        // mid-post is sent again by the node on duty, from the saved cursor).
        if !duty.held() {
            for (_, (task, _)) in tasks.drain() {
                task.abort();
            }
            duty.wait().await;
        }
        match store.all_webhooks().await {
            Ok(hooks) => {
                let live: HashMap<&str, &str> = hooks
                    .iter()
                    .map(|h| (h.id.as_str(), h.secret.as_str()))
                    .collect();
                tasks.retain(|id, (task, secret)| {
                    let keep =
                        live.get(id.as_str()) == Some(&secret.as_str()) && !task.is_finished();
                    if !keep {
                        task.abort();
                    }
                    keep
                });
                for hook in hooks {
                    if !tasks.contains_key(&hook.id) {
                        let id = hook.id.clone();
                        let secret = hook.secret.clone();
                        let wake = written.of(&hook.tenant_id);
                        let task = tokio::spawn(follow(
                            store.clone(),
                            hook,
                            wake,
                            config.clone(),
                            observer.clone(),
                        ));
                        tasks.insert(id, (task, secret));
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "listing webhooks failed"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Posts a test batch to an endpoint, signed like real ones: `"test": true` and one sample
/// event (id 0) of each kind it takes. Recorded in its delivery log; the cursor stays.
pub async fn send_test<S: EventStore>(
    store: &S,
    config: &WebhookConfig,
    hook: &Webhook,
) -> WebhookDelivery {
    let now = now_ms();
    let kinds: Vec<&str> = if hook.kinds.is_empty() {
        vec!["delivered"]
    } else {
        hook.kinds.iter().map(|k| k.as_str()).collect()
    };
    let events: Vec<Value> = kinds
        .iter()
        .map(|kind| {
            json!({
                "id": 0, "type": kind, "time_ms": now, "message_id": "test",
                "recipient": "recipient@example.com", "custom_id": null, "tags": ["test"],
                "detail": {},
            })
        })
        .collect();
    let body = json!({ "webhook_id": hook.id, "test": true, "events": events })
        .to_string()
        .into_bytes();
    let started = Instant::now();
    let posted = post(config, hook, body).await;
    let delivery = WebhookDelivery {
        time_ms: now,
        events: kinds.len() as i64,
        first_event: 0,
        last_event: 0,
        status: posted.status.map(i64::from),
        error: posted.error,
        duration_ms: started.elapsed().as_millis() as i64,
    };
    if let Err(err) = store.add_webhook_delivery(&hook.id, &delivery).await {
        tracing::warn!(webhook = %hook.id, error = %err, "logging a webhook delivery failed");
    }
    delivery
}

/// The outcome of one post.
struct Posted {
    status: Option<u16>,
    error: Option<String>,
}

async fn post(config: &WebhookConfig, hook: &Webhook, body: Vec<u8>) -> Posted {
    let failed = |error: String| Posted {
        status: None,
        error: Some(error),
    };
    let Ok(url) = reqwest::Url::parse(&hook.url) else {
        return failed("invalid URL".into());
    };
    let (host, addr) = match config.guard.resolve(&url).await {
        Ok(found) => found,
        Err(refused) => return failed(refused.to_string()),
    };
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.timeout)
        .resolve(&host, addr)
        .build()
    {
        Ok(client) => client,
        Err(err) => return failed(err.to_string()),
    };
    let now = now_ms();
    let timestamp = (now / 1000) as u64;
    // After a rotation, the old secret signs too for a while: receivers accept any.
    let signature = hook
        .signing_secrets(now)
        .iter()
        .map(|secret| signature::sign(secret, timestamp, &body))
        .collect::<Vec<_>>()
        .join(",");
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "tsubame-webhooks/1")
        .header("x-tsubame-webhook-id", &hook.id)
        .header("x-tsubame-timestamp", timestamp.to_string())
        .header("x-tsubame-signature", signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status();
            Posted {
                status: Some(status.as_u16()),
                error: (!status.is_success()).then(|| format!("answered {status}")),
            }
        }
        Err(err) => failed(err.to_string()),
    }
}

async fn follow<S: EventStore>(
    store: S,
    hook: Webhook,
    written: Arc<Notify>,
    config: Arc<WebhookConfig>,
    observer: Option<FreshnessObserver>,
) {
    let mut cursor = hook.cursor;
    let mut failing_since = hook.failing_since_ms;
    let mut backoff = config.backoff_min;
    loop {
        // Registered before looking, so a batch written meanwhile is not missed.
        let wake = written.notified();
        let filter = EventFilter {
            kinds: hook.kinds.clone(),
            after_id: Some(cursor),
            limit: config.batch_max,
            ..EventFilter::default()
        };
        let events = match store.events(&hook.tenant_id, &filter).await {
            Ok(events) => events,
            Err(err) => {
                tracing::warn!(webhook = %hook.id, error = %err, "reading events failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Some(last) = events.last().map(|e| e.id) else {
            tokio::select! {
                _ = wake => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            continue;
        };
        let first = events[0].id;
        let body = json!({
            "webhook_id": hook.id,
            "events": events.iter().map(event_json).collect::<Vec<_>>(),
        })
        .to_string()
        .into_bytes();
        let started = Instant::now();
        let posted = post(&config, &hook, body).await;
        let now = now_ms();
        let delivery = WebhookDelivery {
            time_ms: now,
            events: events.len() as i64,
            first_event: first,
            last_event: last,
            status: posted.status.map(i64::from),
            error: posted.error.clone(),
            duration_ms: started.elapsed().as_millis() as i64,
        };
        if let Err(err) = store.add_webhook_delivery(&hook.id, &delivery).await {
            tracing::warn!(webhook = %hook.id, error = %err, "logging a webhook delivery failed");
        }
        if posted.error.is_none() {
            cursor = last;
            failing_since = None;
            backoff = config.backoff_min;
            metrics::counter!("tsubame_webhook_events_delivered_total")
                .increment(events.len() as u64);
            let ages: Vec<i64> = events
                .iter()
                .map(|e| (now - e.event.time_ms).max(0))
                .collect();
            let age_histogram = metrics::histogram!("tsubame_webhook_event_age_seconds");
            for age in &ages {
                age_histogram.record(*age as f64 / 1000.0);
            }
            if let Some(observer) = &observer {
                observer(now, &hook.tenant_id, &ages);
            }
        } else {
            failing_since.get_or_insert(now);
            metrics::counter!("tsubame_webhook_failures_total").increment(1);
            // Events that have waited longer than the retry period are given up on.
            let limit = now - config.give_up_after.as_millis() as i64;
            let expired: Vec<&StoredEvent> = events
                .iter()
                .take_while(|e| e.event.time_ms < limit)
                .collect();
            if let Some(last_expired) = expired.last() {
                tracing::warn!(
                    webhook = %hook.id, tenant = %hook.tenant_id, events = expired.len(),
                    error = ?posted.error, "webhook events undelivered past the retry period; dropped"
                );
                metrics::counter!("tsubame_webhook_events_dropped_total")
                    .increment(expired.len() as u64);
                let dropped = WebhookDelivery {
                    time_ms: now,
                    events: expired.len() as i64,
                    first_event: first,
                    last_event: last_expired.id,
                    status: None,
                    error: Some(format!(
                        "dropped {} events undelivered for {} s",
                        expired.len(),
                        config.give_up_after.as_secs()
                    )),
                    duration_ms: 0,
                };
                let _ = store.add_webhook_delivery(&hook.id, &dropped).await;
                cursor = last_expired.id;
            }
        }
        if let Err(err) = store
            .set_webhook_state(&hook.id, cursor, failing_since)
            .await
        {
            tracing::warn!(webhook = %hook.id, error = %err, "saving the webhook cursor failed");
        }
        if posted.error.is_some() {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(config.backoff_max);
        }
    }
}
