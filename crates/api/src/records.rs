//! The sender-facing record over HTTP: events (filtered, paged by cursor), messages and
//! their timelines, and the suppression list (webhooks are in [`crate::hooks`]). Like the
//! management API, everything goes through the calling key's tenant; a foreign id or address
//! is a 404 exactly like an unknown one.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use store::{ControlStore, EventFilter, EventKind, EventStore};

use crate::ApiState;
use crate::auth::{Authorized, Manage, Read};
use crate::error::{ApiError, FieldError};
use crate::manage::{not_found, object_body, optional_string, removed};

/// Events per page unless `limit` says otherwise.
const PAGE_DEFAULT: u32 = 100;
/// Addresses per `POST /v1/suppressions`.
const SUPPRESSIONS_PER_REQUEST: usize = 10_000;

pub(crate) fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(vec![FieldError::at(field, message)])
}

/// Unix milliseconds or RFC 3339.
fn time(field: &str, text: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| invalid(field, "must be Unix milliseconds or an RFC 3339 time"))
}

/// Refuses query parameters other than `known`, naming the first.
pub(crate) fn known_only(query: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    match query.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(invalid(unknown, "is not a known parameter")),
        None => Ok(()),
    }
}

pub(crate) fn limit(query: &HashMap<String, String>) -> Result<u32, ApiError> {
    match query.get("limit") {
        None => Ok(PAGE_DEFAULT),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| invalid("limit", "must be 1 to 1000")),
    }
}

fn filter(query: &HashMap<String, String>) -> Result<EventFilter, ApiError> {
    const KNOWN: &[&str] = &[
        "type",
        "from",
        "to",
        "recipient",
        "message_id",
        "custom_id",
        "tag",
        "after",
        "limit",
    ];
    known_only(query, KNOWN)?;
    let kinds = match query.get("type") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|k| {
                EventKind::parse(k.trim())
                    .ok_or_else(|| invalid("type", format!("{k:?} is not an event type")))
            })
            .collect::<Result<_, _>>()?,
    };
    let after_id = match query.get("after") {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| invalid("after", "must be the cursor of a previous page"))?,
        ),
    };
    Ok(EventFilter {
        from_ms: query.get("from").map(|t| time("from", t)).transpose()?,
        to_ms: query.get("to").map(|t| time("to", t)).transpose()?,
        kinds,
        message_id: query.get("message_id").cloned(),
        recipient: query.get("recipient").cloned(),
        custom_id: query.get("custom_id").cloned(),
        tag: query.get("tag").cloned(),
        after_id,
        limit: limit(query)?,
        ..EventFilter::default()
    })
}

/// `GET /v1/events`: filters `type` (comma-separated), `from`/`to`, `recipient`,
/// `message_id`, `custom_id`, `tag`; pages with `after` (the `next` of the previous page).
pub(crate) async fn list_events<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Query(query): Query<HashMap<String, String>>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let filter = filter(&query)?;
    let found = state.tenancy.store.events(&key.tenant_id, &filter).await?;
    let next = (found.len() as u32 == filter.limit)
        .then(|| found.last().map(|e| e.id.to_string()))
        .flatten();
    let events: Vec<Value> = found.iter().map(events::webhooks::event_json).collect();
    Ok(Json(json!({ "events": events, "next": next })).into_response())
}

/// `GET /v1/messages?custom_id=...` or `?recipient=...`: the messages with that custom id
/// or sent to that recipient, each with its timeline (newest messages' events last).
pub(crate) async fn find_messages<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Query(query): Query<HashMap<String, String>>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    known_only(&query, &["custom_id", "recipient"])?;
    let filter = EventFilter {
        custom_id: query.get("custom_id").cloned(),
        recipient: query.get("recipient").cloned(),
        limit: 1000,
        ..EventFilter::default()
    };
    if filter.custom_id.is_none() && filter.recipient.is_none() {
        return Err(invalid("custom_id", "custom_id or recipient is required"));
    }
    let found = state.tenancy.store.events(&key.tenant_id, &filter).await?;
    let mut messages: Vec<(String, Vec<Value>)> = Vec::new();
    for event in &found {
        let json = events::webhooks::event_json(event);
        match messages
            .iter_mut()
            .find(|(id, _)| *id == event.event.message_id)
        {
            Some((_, timeline)) => timeline.push(json),
            None => messages.push((event.event.message_id.clone(), vec![json])),
        }
    }
    let list: Vec<Value> = messages
        .into_iter()
        .map(|(id, events)| json!({ "id": id, "events": events }))
        .collect();
    Ok(Json(json!({ "messages": list })).into_response())
}

/// `GET /v1/messages/{id}` (scope `read`): a message of the caller's tenant with its
/// timeline; while queued, its recipients and which are still pending. Another tenant's id
/// and an unknown id are both 404, so ids reveal nothing across tenants.
pub(crate) async fn message_status<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "no such message");
    let id = spool::MessageId::parse(&id).ok_or_else(not_found)?;
    let timeline = timeline(&state.tenancy.store, &key.tenant_id, &id.to_string()).await?;
    let spool = state.spool.clone();
    let found = tokio::task::spawn_blocking(move || spool.envelope(id)).await;
    let owner = spool::tenant_marker(&key.tenant_id);
    let queued = match found {
        Ok(Ok((envelope, done))) if envelope.auth_user.as_deref() == Some(owner.as_str()) => {
            Some((envelope, done))
        }
        _ => None,
    };
    let Some((envelope, done)) = queued else {
        // No longer queued: what its events say, if it was this tenant's.
        return finished(&id.to_string(), &timeline)
            .map(|body| Json(body).into_response())
            .ok_or_else(not_found);
    };
    let recipients: Vec<serde_json::Value> = envelope
        .recipients
        .iter()
        .zip(done)
        .map(|(r, done)| {
            serde_json::json!({ "email": r.address, "status": if done { "final" } else { "pending" } })
        })
        .collect();
    let mut body = serde_json::json!({
        "id": id.to_string(),
        "status": if envelope.not_before_ms > now_ms() { "scheduled" } else { "queued" },
        "from": envelope.sender,
        "received_ms": envelope.received_ms,
        "recipients": recipients,
        "events": timeline,
    });
    if envelope.not_before_ms > 0 {
        body["send_at_ms"] = envelope.not_before_ms.into();
    }
    // custom_id, metadata, tags, event_payload: as the sender gave them.
    if let Some(serde_json::Value::Object(attributes)) = envelope
        .attributes
        .as_deref()
        .and_then(|a| serde_json::from_str(a).ok())
    {
        for (key, value) in attributes {
            body[key] = value;
        }
    }
    Ok(Json(body).into_response())
}

/// A message that left the queue, from its events: each recipient's last event.
fn finished(id: &str, timeline: &[serde_json::Value]) -> Option<serde_json::Value> {
    let first = timeline.first()?;
    let mut last: Vec<(String, serde_json::Value)> = Vec::new();
    for event in timeline {
        let rcpt = event["recipient"].as_str().unwrap_or_default().to_string();
        match last.iter_mut().find(|(r, _)| *r == rcpt) {
            Some(entry) => entry.1 = event["type"].clone(),
            None => last.push((rcpt, event["type"].clone())),
        }
    }
    let recipients: Vec<serde_json::Value> = last
        .into_iter()
        .map(|(email, status)| serde_json::json!({ "email": email, "status": status }))
        .collect();
    Some(serde_json::json!({
        "id": id,
        "status": "done",
        "received_ms": first["time_ms"],
        "custom_id": first["custom_id"],
        "tags": first["tags"],
        "recipients": recipients,
        "events": timeline,
    }))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A message's events, oldest first (its timeline), for the caller's tenant.
pub(crate) async fn timeline<S: EventStore>(
    store: &S,
    tenant_id: &str,
    message_id: &str,
) -> Result<Vec<Value>, ApiError> {
    let filter = EventFilter {
        message_id: Some(message_id.to_string()),
        limit: 1000,
        ..EventFilter::default()
    };
    let found = store.events(tenant_id, &filter).await?;
    Ok(found.iter().map(events::webhooks::event_json).collect())
}

/// `GET /v1/suppressions`: by address, paged with `after` (the last address seen).
pub(crate) async fn list_suppressions<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Query(query): Query<HashMap<String, String>>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    known_only(&query, &["after", "limit"])?;
    let limit = limit(&query)?;
    let page = state
        .tenancy
        .store
        .suppressions(
            &key.tenant_id,
            query.get("after").map(String::as_str),
            limit,
        )
        .await?;
    let next = (page.len() as u32 == limit)
        .then(|| page.last().map(|s| s.address.clone()))
        .flatten();
    let list: Vec<Value> = page
        .iter()
        .map(|s| json!({"address": s.address, "reason": s.reason, "created_ms": s.created_ms}))
        .collect();
    Ok(Json(json!({ "suppressions": list, "next": next })).into_response())
}

/// `GET /v1/suppressions/{address}`
pub(crate) async fn get_suppression<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Path(address): Path<String>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let found = state
        .tenancy
        .store
        .suppression(&key.tenant_id, &address)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(
        json!({"address": found.address, "reason": found.reason, "created_ms": found.created_ms}),
    )
    .into_response())
}

/// `POST /v1/suppressions`: `{"addresses": [...], "reason"?: "manual"}` (scope manage).
pub(crate) async fn add_suppressions<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["addresses", "reason"])?;
    let reason = optional_string(&map, "reason")?.unwrap_or_else(|| "manual".into());
    if !store::SUPPRESSION_REASONS.contains(&reason.as_str()) {
        return Err(invalid(
            "reason",
            "must be manual, bounce, complaint or unsubscribe",
        ));
    }
    let Some(Value::Array(items)) = map.get("addresses") else {
        return Err(invalid("addresses", "must be an array of addresses"));
    };
    if items.is_empty() || items.len() > SUPPRESSIONS_PER_REQUEST {
        return Err(invalid(
            "addresses",
            format!("1 to {SUPPRESSIONS_PER_REQUEST} addresses per request"),
        ));
    }
    let mut entries = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("addresses[{i}]");
        let Some(address) = item.as_str() else {
            return Err(invalid(&field, "must be a string"));
        };
        if address.contains(['\r', '\n', '\0'])
            || smtp_wire::address::check_mailbox(address, !address.is_ascii()).is_err()
            || address.is_empty()
        {
            return Err(invalid(&field, "is not a valid email address"));
        }
        entries.push((address.to_string(), reason.clone()));
    }
    let added = state
        .tenancy
        .store
        .add_suppressions(&key.tenant_id, &entries)
        .await?;
    Ok((
        StatusCode::OK,
        Json(json!({ "added": added, "already": entries.len() as u64 - added })),
    )
        .into_response())
}

/// `DELETE /v1/suppressions/{address}`: mail to it is sent again.
pub(crate) async fn remove_suppression<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Path(address): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    removed(
        state
            .tenancy
            .store
            .remove_suppression(&key.tenant_id, &address)
            .await?,
    )
}
