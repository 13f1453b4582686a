//! Segments: `POST /v1/segments/preview` counts and samples a query as typed;
//! `GET/POST /v1/segments`, `GET/DELETE /v1/segments/{id}` keep named ones. A query is
//! parsed and checked against the tenant's declarations and lists on every use; errors
//! name the column (and the property at fault) under the field `query`.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use store::{Condition, SavedSegment};

use super::{Store, contact_json, refused};
use crate::ApiState;
use crate::auth::{Authorized, Manage, Read};
use crate::error::ApiError;
use crate::manage::{not_found, object_body, optional_string, removed};
use crate::records::invalid;

/// Contacts a preview shows.
const SAMPLE: u32 = 10;

/// The tenant's text as a checked condition, or a 400 naming `query` and the column.
async fn checked<S: Store>(
    state: &ApiState<S>,
    tenant_id: &str,
    query: &str,
) -> Result<Condition, ApiError> {
    let store = &state.tenancy.store;
    let (properties, lists) =
        tokio::try_join!(store.properties(tenant_id), store.lists(tenant_id))?;
    ::audience::parse_segment(query, &properties, &lists)
        .map_err(|err| invalid("query", err.to_string()))
}

async fn counted<S: Store>(
    state: &ApiState<S>,
    tenant_id: &str,
    condition: &Condition,
) -> Result<Value, ApiError> {
    let started = Instant::now();
    let store = &state.tenancy.store;
    let (count, sample, declared) = tokio::try_join!(
        store.segment_count(tenant_id, condition),
        store.segment_contacts(tenant_id, condition, None, SAMPLE),
        store.properties(tenant_id),
    )?;
    let sample: Vec<Value> = sample.iter().map(|c| contact_json(c, &declared)).collect();
    Ok(json!({
        "count": count,
        "sample": sample,
        "elapsed_ms": started.elapsed().as_millis() as u64,
    }))
}

fn segment_json(segment: &SavedSegment) -> Value {
    json!({
        "id": segment.id, "name": segment.name, "query": segment.query,
        "created_ms": segment.created_ms, "updated_ms": segment.updated_ms,
    })
}

/// `POST /v1/segments/preview`: `{"query"}` → `{"count", "sample", "elapsed_ms"}`.
pub(crate) async fn preview<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Read>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["query"])?;
    let Some(Value::String(query)) = map.get("query") else {
        return Err(invalid(
            "query",
            "is required: a segment's text (empty: every contact)",
        ));
    };
    let condition = checked(&state, &key.tenant_id, query).await?;
    Ok(Json(counted(&state, &key.tenant_id, &condition).await?).into_response())
}

/// `GET /v1/segments`
pub(crate) async fn all<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let saved = state.tenancy.store.segments(&key.tenant_id).await?;
    let list: Vec<Value> = saved.iter().map(segment_json).collect();
    Ok(Json(json!({ "segments": list })).into_response())
}

/// `POST /v1/segments`: `{"name", "query"}`; a name in use has its query replaced.
pub(crate) async fn save<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["name", "query"])?;
    let name = optional_string(&map, "name")?.ok_or_else(|| invalid("name", "is required"))?;
    let query = optional_string(&map, "query")?.ok_or_else(|| invalid("query", "is required"))?;
    checked(&state, &key.tenant_id, &query).await?;
    let saved = state
        .tenancy
        .store
        .save_segment(&key.tenant_id, &name, &query)
        .await
        .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(segment_json(&saved))).into_response())
}

/// `GET /v1/segments/{id}`: the segment with its count and sample now.
pub(crate) async fn get<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let saved = state
        .tenancy
        .store
        .segment(&key.tenant_id, &id)
        .await?
        .ok_or_else(not_found)?;
    let mut body = segment_json(&saved);
    // A property it names may have been removed since: say so rather than fail.
    let store = &state.tenancy.store;
    let (properties, lists) = tokio::try_join!(
        store.properties(&key.tenant_id),
        store.lists(&key.tenant_id)
    )?;
    match ::audience::parse_segment(&saved.query, &properties, &lists) {
        Ok(condition) => {
            let result = counted(&state, &key.tenant_id, &condition).await?;
            body["count"] = result["count"].clone();
            body["sample"] = result["sample"].clone();
        }
        Err(err) => body["error"] = json!(err.to_string()),
    }
    Ok(Json(body).into_response())
}

/// `DELETE /v1/segments/{id}`
pub(crate) async fn remove<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    let store = &state.tenancy.store;
    let saved = store
        .segment(&key.tenant_id, &id)
        .await?
        .ok_or_else(not_found)?;
    removed(store.remove_segment(&key.tenant_id, &saved.id).await?)
}
