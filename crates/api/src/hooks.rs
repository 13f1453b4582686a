//! Webhook endpoints over HTTP (scope `manage`): add (with an SSRF check on the URL, the
//! signing secret shown once), list, remove, send a test batch, rotate the secret, and each
//! endpoint's delivery log. Another tenant's endpoint is a 404 like an unknown one.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use store::{ControlStore, EventKind, EventStore};

use crate::ApiState;
use crate::auth::{Authorized, Manage};
use crate::error::ApiError;
use crate::manage::{not_found, object_body, optional_string, removed};
use crate::records::{invalid, known_only, limit};

/// How long a rotated secret keeps signing beside the new one.
pub const ROTATION_OVERLAP_MS: i64 = 24 * 3600 * 1000;

fn delivery_json(d: &store::WebhookDelivery) -> Value {
    json!({
        "time_ms": d.time_ms, "events": d.events, "first_event": d.first_event,
        "last_event": d.last_event, "status": d.status, "error": d.error,
        "duration_ms": d.duration_ms,
    })
}

fn webhook_json(hook: &store::Webhook) -> Value {
    let kinds: Vec<&str> = hook.kinds.iter().map(|k| k.as_str()).collect();
    json!({
        "id": hook.id,
        "url": hook.url,
        "events": kinds,
        "created_ms": hook.created_ms,
        "failing_since_ms": hook.failing_since_ms,
        "cursor": hook.cursor,
    })
}

/// `GET /v1/webhooks` (scope manage)
pub(crate) async fn list_webhooks<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    let hooks = state.tenancy.store.webhooks(&key.tenant_id).await?;
    let list: Vec<Value> = hooks.iter().map(webhook_json).collect();
    Ok(Json(json!({ "webhooks": list })).into_response())
}

/// `POST /v1/webhooks`: `{"url", "events"?: [types]}`; 201 with the signing secret, shown
/// this once. The URL must resolve to an address webhooks may reach.
pub(crate) async fn add_webhook<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["url", "events"])?;
    let Some(url) = optional_string(&map, "url")? else {
        return Err(invalid("url", "is required"));
    };
    if let Err(why) = state.webhooks.guard.check(&url).await {
        return Err(invalid("url", why));
    }
    let kinds = match map.get("events") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().and_then(EventKind::parse))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("events", "must be an array of event types"))?,
        Some(_) => return Err(invalid("events", "must be an array of event types")),
    };
    let hook = state
        .tenancy
        .store
        .add_webhook(&key.tenant_id, &url, &kinds)
        .await?;
    let mut body = webhook_json(&hook);
    body["secret"] = hook.secret.clone().into();
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `DELETE /v1/webhooks/{id}`
pub(crate) async fn remove_webhook<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    removed(
        state
            .tenancy
            .store
            .remove_webhook(&key.tenant_id, &id)
            .await?,
    )
}

/// `GET /v1/webhooks/{id}/deliveries`: the newest delivery attempts first.
pub(crate) async fn webhook_deliveries<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    known_only(&query, &["limit"])?;
    let deliveries = state
        .tenancy
        .store
        .webhook_deliveries(&key.tenant_id, &id, limit(&query)?)
        .await?
        .ok_or_else(not_found)?;
    let list: Vec<Value> = deliveries.iter().map(delivery_json).collect();
    Ok(Json(json!({ "deliveries": list })).into_response())
}

/// `POST /v1/webhooks/{id}/test`: posts a test batch now and answers with the attempt, as
/// its delivery log records it (200 whatever the endpoint answered).
pub(crate) async fn test_webhook<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    let hooks = state.tenancy.store.webhooks(&key.tenant_id).await?;
    let hook = hooks.iter().find(|h| h.id == id).ok_or_else(not_found)?;
    let delivery = events::webhooks::send_test(&state.tenancy.store, &state.webhooks, hook).await;
    Ok(Json(delivery_json(&delivery)).into_response())
}

/// `POST /v1/webhooks/{id}/rotate`: a new signing secret, shown this once; the old one
/// keeps signing beside it for 24 h.
pub(crate) async fn rotate_webhook<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    let hook = state
        .tenancy
        .store
        .rotate_webhook_secret(&key.tenant_id, &id, ROTATION_OVERLAP_MS)
        .await?
        .ok_or_else(not_found)?;
    let mut body = webhook_json(&hook);
    body["secret"] = hook.secret.clone().into();
    body["previous_secret_expires_ms"] = hook.previous_secret.map(|(_, until)| until).into();
    Ok(Json(body).into_response())
}
