//! The management API: a tenant's sending domains and API keys over HTTP (scope `manage`),
//! and its account and usage (scope `read`). Everything is addressed through the calling
//! key's tenant: another tenant's domain or key id is answered exactly as one that does
//! not exist (404), so ids reveal nothing across tenants.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use store::{ApiKey, ControlStore, EventStore, Scopes, SendingDomain, StoreError};

use crate::ApiState;
use crate::auth::{Authorized, Manage, Read};
use crate::error::{ApiError, FieldError};

/// The answer to a DELETE: 204, or 404 when the tenant had no such thing.
pub(crate) fn removed(found: bool) -> Result<Response, ApiError> {
    if found {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found())
    }
}

pub(crate) fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not found")
}

/// A JSON object body with only `allowed` fields, or errors naming the others.
pub(crate) fn object_body(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {err}"),
        )
    })?;
    let Value::Object(map) = value else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object",
        ));
    };
    let unknown: Vec<FieldError> = map
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| FieldError::at(k.clone(), "is not a known field"))
        .collect();
    if unknown.is_empty() {
        Ok(map)
    } else {
        Err(ApiError::invalid(unknown))
    }
}

pub(crate) fn optional_string(
    map: &Map<String, Value>,
    field: &str,
) -> Result<Option<String>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(vec![FieldError::at(
            field,
            "must be a string",
        )])),
    }
}

fn domain_json(domain: &SendingDomain, mail_host: &str) -> Value {
    let records: Vec<Value> = tenancy::domain_records(domain, mail_host)
        .into_iter()
        .map(|r| json!({"name": r.name, "type": r.kind, "value": r.value, "purpose": r.purpose}))
        .collect();
    json!({
        "domain": domain.domain,
        "selector": domain.selector,
        "algorithm": domain.algorithm,
        "created_ms": domain.created_ms,
        "records": records,
    })
}

fn key_json(key: &ApiKey) -> Value {
    json!({
        "id": key.id,
        "name": key.name,
        "scopes": key.scopes.to_text().split(',').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        "created_ms": key.created_ms,
        "revoked_ms": key.revoked_ms,
    })
}

/// `GET /v1/domains`
pub(crate) async fn list_domains<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    let domains = state.tenancy.store.domains(&key.tenant_id).await?;
    let list: Vec<Value> = domains
        .iter()
        .map(|d| domain_json(d, &state.hostname))
        .collect();
    Ok(Json(json!({ "domains": list })).into_response())
}

/// `POST /v1/domains`: `{"domain", "algorithm"?: "rsa"|"ed25519", "selector"?}`; 201 with
/// the DNS records to publish.
pub(crate) async fn add_domain<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["domain", "algorithm", "selector"])?;
    let Some(domain) = optional_string(&map, "domain")? else {
        return Err(ApiError::invalid(vec![FieldError::at(
            "domain",
            "is required",
        )]));
    };
    let algorithm = match optional_string(&map, "algorithm")? {
        None => dkim::Algorithm::Rsa2048,
        Some(name) => dkim::Algorithm::parse(&name).ok_or_else(|| {
            ApiError::invalid(vec![FieldError::at("algorithm", "must be rsa or ed25519")])
        })?,
    };
    let selector = optional_string(&map, "selector")?;
    let tenant_id = key.tenant_id.clone();
    // RSA key generation takes tens of milliseconds of CPU: off the async workers.
    let new = tokio::task::spawn_blocking(move || {
        tenancy::new_domain(&tenant_id, domain, algorithm, selector)
    })
    .await
    .map_err(|err| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?
    .map_err(|err| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?;
    let added = state.tenancy.store.add_domain(new).await?;
    Ok((
        StatusCode::CREATED,
        Json(domain_json(&added, &state.hostname)),
    )
        .into_response())
}

/// `GET /v1/domains/{domain}`
pub(crate) async fn get_domain<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Path(domain): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    let found = state
        .tenancy
        .store
        .sending_domain(&key.tenant_id, &domain)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(domain_json(&found, &state.hostname)).into_response())
}

/// `DELETE /v1/domains/{domain}`: mail from it is refused afterwards.
pub(crate) async fn remove_domain<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Path(domain): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    removed(
        state
            .tenancy
            .store
            .remove_domain(&key.tenant_id, &domain)
            .await?,
    )
}

/// `GET /v1/keys`: the tenant's keys, revoked ones included; never a secret.
pub(crate) async fn list_keys<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    let keys = state.tenancy.store.keys(&key.tenant_id).await?;
    let list: Vec<Value> = keys.iter().map(key_json).collect();
    Ok(Json(json!({ "keys": list })).into_response())
}

/// `POST /v1/keys`: `{"name", "scopes": ["send", "read", "manage"]}`; 201 with the token,
/// the only time it is shown.
pub(crate) async fn add_key<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["name", "scopes"])?;
    let name = optional_string(&map, "name")?.unwrap_or_else(|| "default".into());
    let scopes = match map.get("scopes") {
        None | Some(Value::Null) => Scopes {
            send: true,
            read: false,
            manage: false,
        },
        Some(Value::Array(items)) => {
            let words: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            let words = words.ok_or_else(|| {
                ApiError::invalid(vec![FieldError::at(
                    "scopes",
                    "must be an array of strings",
                )])
            })?;
            Scopes::parse(&words.join(",")).map_err(StoreError::from)?
        }
        Some(_) => {
            return Err(ApiError::invalid(vec![FieldError::at(
                "scopes",
                "must be an array of send, read, manage",
            )]));
        }
    };
    let made = state
        .tenancy
        .store
        .add_key(&key.tenant_id, &name, scopes)
        .await?;
    let mut body = key_json(&made.key);
    body["token"] = made.token.into();
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /v1/keys/{id}`
pub(crate) async fn get_key<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    let keys = state.tenancy.store.keys(&key.tenant_id).await?;
    let found = keys.iter().find(|k| k.id == id).ok_or_else(not_found)?;
    Ok(Json(key_json(found)).into_response())
}

/// `DELETE /v1/keys/{id}`: revokes the key at once (it may be the calling key).
pub(crate) async fn revoke_key<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    removed(state.tenancy.store.revoke_key(&key.tenant_id, &id).await?)
}

/// `GET /v1/account`: the calling tenant, its limits and today's count (scope `read`).
pub(crate) async fn account<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let store = &state.tenancy.store;
    let tenant = store.tenant(&key.tenant_id).await?.ok_or_else(not_found)?;
    let day = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    let saved = store.usage(&tenant.id, day).await?;
    let sent_today = state
        .tenancy
        .quotas
        .used_today(&tenant.id, day)
        .unwrap_or(saved);
    Ok(Json(json!({
        "id": tenant.id,
        "name": tenant.name,
        "rate_per_sec": tenant.rate_per_sec,
        "daily_quota": tenant.daily_quota,
        "sent_today": sent_today,
    }))
    .into_response())
}
