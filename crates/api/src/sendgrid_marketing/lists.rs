//! `/v3/marketing/lists`: lists with their counts (kept as members change), renaming,
//! removal (with `delete_contacts=true`, of the members too), and removing contacts from a
//! list.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use store::ContactList;

use crate::ApiState;
use crate::auth::{Authorized, Manage, Read};
use crate::contacts::refused;
use crate::error::ApiError;
use crate::manage::{not_found, object_body, optional_string};
use crate::records::invalid;
use crate::stored_templates::TemplatesStore;

pub fn list_json(list: &ContactList) -> Value {
    json!({
        "id": list.id,
        "name": list.name,
        "contact_count": list.subscribed,
        "_metadata": { "self": format!("/v3/marketing/lists/{}", list.id) },
    })
}

pub async fn tenants_list<S: TemplatesStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    id: &str,
) -> Result<ContactList, ApiError> {
    state
        .tenancy
        .store
        .list(tenant_id, id)
        .await?
        .filter(|l| l.id == id)
        .ok_or_else(not_found)
}

/// `GET /v3/marketing/lists?page_size=`
pub(crate) async fn all<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Query(query): Query<HashMap<String, String>>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let size = match query.get("page_size") {
        None => 100,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| invalid("page_size", "must be 1 to 1000"))?,
    };
    let lists = state.tenancy.store.lists(&key.tenant_id).await?;
    let count = lists.len();
    let result: Vec<Value> = lists.iter().take(size).map(list_json).collect();
    Ok(Json(json!({
        "result": result,
        "_metadata": { "self": "/v3/marketing/lists", "count": count },
    }))
    .into_response())
}

/// `POST /v3/marketing/lists`: `{"name"}`.
pub(crate) async fn add<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["name"])?;
    let name = optional_string(&map, "name")?.ok_or_else(|| invalid("name", "is required"))?;
    let list = state
        .tenancy
        .store
        .add_list(&key.tenant_id, &name, false)
        .await
        .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(list_json(&list))).into_response())
}

/// `GET /v3/marketing/lists/{id}`
pub(crate) async fn get<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let list = tenants_list(&state, &key.tenant_id, &id).await?;
    Ok(Json(list_json(&list)).into_response())
}

/// `PATCH /v3/marketing/lists/{id}`: `{"name"}`.
pub(crate) async fn rename<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["name"])?;
    let list = tenants_list(&state, &key.tenant_id, &id).await?;
    let name = optional_string(&map, "name")?.ok_or_else(|| invalid("name", "is required"))?;
    state
        .tenancy
        .store
        .rename_list(&key.tenant_id, &list.id, &name)
        .await
        .map_err(refused)?;
    let list = tenants_list(&state, &key.tenant_id, &id).await?;
    Ok(Json(list_json(&list)).into_response())
}

/// Every member's contact id.
async fn member_ids<S: TemplatesStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    list_id: &str,
) -> Result<Vec<i64>, ApiError> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = state
            .tenancy
            .store
            .members(tenant_id, list_id, None, after, 1000)
            .await?;
        let Some((last, _)) = page.last() else {
            return Ok(ids);
        };
        after = Some(last.id);
        ids.extend(page.iter().map(|(c, _)| c.id));
    }
}

async fn finished_job<S: TemplatesStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    job_type: &str,
    count: usize,
) -> Result<Response, ApiError> {
    let now = super::time(crate::contacts::now_ms());
    let result = json!({
        "status": "completed", "job_type": job_type,
        "results": { "requested_count": count, "deleted_count": count, "errored_count": 0 },
        "started_at": now, "finished_at": now,
    });
    let number = state
        .tenancy
        .store
        .add_job(tenant_id, super::contacts::JOB, &result.to_string())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "job_id": number.to_string() })),
    )
        .into_response())
}

/// `DELETE /v3/marketing/lists/{id}?delete_contacts=`: the list; its members' contacts
/// too when asked (202 with a job), else 204.
pub(crate) async fn remove<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    let list = tenants_list(&state, &key.tenant_id, &id).await?;
    let with_contacts = query.get("delete_contacts").is_some_and(|v| v == "true");
    let members = if with_contacts {
        member_ids(&state, &key.tenant_id, &list.id).await?
    } else {
        Vec::new()
    };
    let store = &state.tenancy.store;
    store.remove_list(&key.tenant_id, &list.id).await?;
    if !with_contacts {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    for id in &members {
        store.remove_contact(&key.tenant_id, *id).await?;
    }
    finished_job(&state, &key.tenant_id, "delete", members.len()).await
}

/// `GET /v3/marketing/lists/{id}/contacts/count`
pub(crate) async fn count<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let list = tenants_list(&state, &key.tenant_id, &id).await?;
    Ok(
        Json(json!({ "contact_count": list.subscribed, "billable_count": list.subscribed }))
            .into_response(),
    )
}

/// `DELETE /v3/marketing/lists/{id}/contacts?contact_ids=a,b`: off the list (the contacts
/// stay).
pub(crate) async fn remove_contacts<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    let list = tenants_list(&state, &key.tenant_id, &id).await?;
    let ids: Vec<i64> = query
        .get("contact_ids")
        .ok_or_else(|| invalid("contact_ids", "is required"))?
        .split(',')
        .map(|s| s.trim().parse::<i64>())
        .collect::<Result<_, _>>()
        .map_err(|_| invalid("contact_ids", "must be contact ids separated by commas"))?;
    state
        .tenancy
        .store
        .remove_members(&key.tenant_id, &list.id, &ids)
        .await
        .map_err(refused)?;
    finished_job(&state, &key.tenant_id, "delete", ids.len()).await
}
