//! Queue view handlers.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use spool::{MessageId, SpoolError};

use crate::{AdminState, error};

/// Most messages whose envelopes a summary reads to count recipient domains.
const SUMMARY_SCAN_MAX: usize = 100_000;
/// Most messages one list call returns.
const LIST_LIMIT_MAX: usize = 1000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Serialize)]
struct DomainCount {
    domain: String,
    recipients: u64,
    messages: u64,
}

#[derive(Serialize)]
struct Summary {
    messages: u64,
    recipients_pending: u64,
    bytes: u64,
    segments: u64,
    oldest_id: Option<String>,
    oldest_age_seconds: Option<u64>,
    /// Pending recipients per domain, from the first `scanned` messages.
    domains: Vec<DomainCount>,
    scanned: usize,
}

pub(crate) async fn summary(State(state): State<AdminState>) -> Response {
    if let Some(engine) = &state.delivery {
        return delivery_summary(&state, engine);
    }
    let spool = state.spool.clone();
    let result = tokio::task::spawn_blocking(move || {
        let totals = spool.totals();
        let listed = spool.list(None, SUMMARY_SCAN_MAX);
        let mut domains: HashMap<String, (u64, u64)> = HashMap::new();
        for info in &listed {
            let Ok((envelope, _, done)) = spool.read(info.id) else {
                continue;
            };
            let mut seen = std::collections::HashSet::new();
            for (rcpt, done) in envelope.recipients.iter().zip(done) {
                if done {
                    continue;
                }
                let domain = rcpt
                    .address
                    .rsplit_once('@')
                    .map_or("", |(_, d)| d)
                    .to_ascii_lowercase();
                let entry = domains.entry(domain.clone()).or_default();
                entry.0 += 1;
                if seen.insert(domain) {
                    entry.1 += 1;
                }
            }
        }
        let mut domains: Vec<DomainCount> = domains
            .into_iter()
            .map(|(domain, (recipients, messages))| DomainCount {
                domain,
                recipients,
                messages,
            })
            .collect();
        domains.sort_by(|a, b| {
            b.recipients
                .cmp(&a.recipients)
                .then(a.domain.cmp(&b.domain))
        });
        let oldest = listed.first().map(|i| i.id);
        Summary {
            messages: totals.messages,
            recipients_pending: totals.recipients_pending,
            bytes: totals.content_bytes,
            segments: totals.segments,
            oldest_id: oldest.map(|id| id.to_string()),
            oldest_age_seconds: oldest.map(|id| now_ms().saturating_sub(id.timestamp_ms()) / 1000),
            domains,
            scanned: listed.len(),
        }
    })
    .await;
    match result {
        Ok(summary) => Json(summary).into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "summary failed"),
    }
}

/// The summary from the delivery engine's own queues: no disk reads, every domain.
fn delivery_summary(state: &AdminState, engine: &delivery::Engine) -> Response {
    let totals = state.spool.totals();
    let oldest = state.spool.list(None, 1).first().map(|i| i.id);
    let queue = engine.summary();
    let domains: Vec<serde_json::Value> = queue
        .domains
        .iter()
        .map(|d| {
            serde_json::json!({
                "domain": d.domain,
                "recipients": d.ready_recipients + d.deferred_recipients + d.held_recipients,
                "messages": d.messages,
                "site": d.site,
                "ready": d.ready_recipients,
                "deferred": d.deferred_recipients,
                "held": d.held_recipients,
                "paused": d.paused,
                "oldest_ms": d.oldest_ms,
                "next_attempt_ms": d.next_attempt_ms,
                "last_error": d.last_error,
            })
        })
        .collect();
    Json(serde_json::json!({
        "messages": totals.messages,
        "recipients_pending": totals.recipients_pending,
        "bytes": totals.content_bytes,
        "segments": totals.segments,
        "oldest_id": oldest.map(|id| id.to_string()),
        "oldest_age_seconds": oldest.map(|id| now_ms().saturating_sub(id.timestamp_ms()) / 1000),
        "ready": queue.ready_recipients,
        "deferred": queue.deferred_recipients,
        "held": queue.held_recipients,
        "in_flight_parts": queue.in_flight_parts,
        "routing_parts": queue.routing_parts,
        "domains": domains,
        "sites": queue.sites,
    }))
    .into_response()
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    after: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
struct Listed {
    id: String,
    received_at_ms: u64,
    sender: String,
    size: u32,
    recipients: u32,
    recipients_pending: u32,
}

#[derive(Serialize)]
struct ListPage {
    messages: Vec<Listed>,
    /// Pass as `after` to get the next page; absent on the last page.
    next: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AdminState>,
    Query(query): Query<ListQuery>,
) -> Response {
    let after = match query.after.as_deref().map(MessageId::parse) {
        Some(None) => return error(StatusCode::BAD_REQUEST, "after: not a message id"),
        Some(Some(id)) => Some(id),
        None => None,
    };
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > LIST_LIMIT_MAX {
        return error(StatusCode::BAD_REQUEST, "limit: must be between 1 and 1000");
    }
    let spool = state.spool.clone();
    let page = tokio::task::spawn_blocking(move || {
        let infos = spool.list(after, limit);
        let next = (infos.len() == limit)
            .then(|| infos.last().map(|i| i.id.to_string()))
            .flatten();
        let messages = infos
            .into_iter()
            .map(|info| Listed {
                id: info.id.to_string(),
                received_at_ms: info.id.timestamp_ms(),
                sender: spool
                    .read(info.id)
                    .map(|(e, _, _)| e.sender)
                    .unwrap_or_default(),
                size: info.content_bytes,
                recipients: info.recipients,
                recipients_pending: info.recipients_pending,
            })
            .collect();
        ListPage { messages, next }
    })
    .await;
    match page {
        Ok(page) => Json(page).into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "listing failed"),
    }
}

#[derive(Serialize)]
struct RecipientView {
    address: String,
    state: &'static str,
    notify: Vec<&'static str>,
    orcpt: Option<String>,
}

#[derive(Serialize)]
struct MessageView {
    id: String,
    received_at_ms: u64,
    sender: String,
    recipients: Vec<RecipientView>,
    size: usize,
    client_ip: String,
    helo: String,
    auth_user: Option<String>,
    dsn_ret: Option<&'static str>,
    dsn_envid: Option<String>,
    body_8bitmime: bool,
    smtputf8: bool,
    /// The header section of the stored message.
    headers: String,
    /// Recent delivery attempts, oldest first (empty when delivery is disabled).
    attempts: Vec<delivery::events::Event>,
}

/// A queued message as read back: id, envelope, content, recipient done-flags.
type Found = (MessageId, spool::Envelope, Vec<u8>, Vec<bool>);

fn read(state: &AdminState, id: &str) -> Result<Found, Box<Response>> {
    let id = MessageId::parse(id)
        .ok_or_else(|| Box::new(error(StatusCode::BAD_REQUEST, "id: not a message id")))?;
    match state.spool.read(id) {
        Ok((envelope, content, done)) => Ok((id, envelope, content, done)),
        Err(SpoolError::NotFound) => Err(Box::new(error(StatusCode::NOT_FOUND, "no such message"))),
        Err(err) => {
            tracing::error!(error = %err, "reading a queued message failed");
            Err(Box::new(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not read message",
            )))
        }
    }
}

fn notify_names(bits: u8) -> Vec<&'static str> {
    [(1, "SUCCESS"), (2, "FAILURE"), (4, "DELAY"), (8, "NEVER")]
        .into_iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| name)
        .collect()
}

pub(crate) async fn show(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    let (id, envelope, content, done) = match read(&state, &id) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let header_end = content
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(content.len(), |p| p + 2);
    let view = MessageView {
        id: id.to_string(),
        received_at_ms: envelope.received_ms,
        sender: envelope.sender,
        recipients: envelope
            .recipients
            .into_iter()
            .zip(done)
            .map(|(r, done)| RecipientView {
                address: r.address,
                state: if done { "done" } else { "pending" },
                notify: notify_names(r.notify),
                orcpt: r.orcpt,
            })
            .collect(),
        size: content.len(),
        client_ip: envelope.client_ip,
        helo: envelope.helo,
        auth_user: envelope.auth_user,
        dsn_ret: match envelope.dsn_ret {
            1 => Some("FULL"),
            2 => Some("HDRS"),
            _ => None,
        },
        dsn_envid: envelope.dsn_envid,
        body_8bitmime: envelope.flags & spool::Envelope::FLAG_8BITMIME != 0,
        smtputf8: envelope.flags & spool::Envelope::FLAG_SMTPUTF8 != 0,
        headers: String::from_utf8_lossy(&content[..header_end]).into_owned(),
        attempts: state
            .delivery
            .as_ref()
            .map(|e| e.attempts(id))
            .unwrap_or_default(),
    };
    Json(view).into_response()
}

pub(crate) async fn content(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    match read(&state, &id) {
        Ok((_, _, content, _)) => (
            [(axum::http::header::CONTENT_TYPE, "message/rfc822")],
            content,
        )
            .into_response(),
        Err(response) => *response,
    }
}
