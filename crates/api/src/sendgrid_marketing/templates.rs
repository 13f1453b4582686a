//! `/v3/templates` with versions: SendGrid's dynamic templates are stored templates in the
//! Handlebars subset. A template's id is `d-` and the hex of tsubame's; a version's id is a
//! UUID made of the template's and the version's numbers. A version a message used cannot
//! change (add a new one); `name` and `editor` of a version are accepted and not kept.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use store::{Dialect, StoredTemplate, TemplateVersion, VersionContent};

use crate::ApiState;
use crate::auth::{Authorized, Manage, Read};
use crate::contacts::refused;
use crate::error::ApiError;
use crate::manage::{not_found, object_body, optional_string};
use crate::records::invalid;
use crate::stored_templates::{TemplatesStore, from_sendgrid_id, render_version, sendgrid_id};

/// SendGrid's `updated_at`: `YYYY-MM-DD HH:MM:SS` in UTC.
fn updated_at(ms: i64) -> String {
    super::time(ms)
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

/// A version's UUID: the template's 16 hex digits and the version number's.
pub fn version_id(template_id: &str, version: i64) -> String {
    let h = template_id.strip_prefix("tp_").unwrap_or(template_id);
    let v = format!("{version:016x}");
    if h.len() != 16 {
        return format!("{h}-{v}");
    }
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..],
        &v[..4],
        &v[4..]
    )
}

/// The version number a UUID names within a template.
fn version_number(template_id: &str, id: &str) -> Option<i64> {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    let h = template_id.strip_prefix("tp_").unwrap_or(template_id);
    if hex.len() != 32 || !hex[..16].eq_ignore_ascii_case(h) {
        return None;
    }
    i64::from_str_radix(&hex[16..], 16).ok()
}

fn version_json(t: &StoredTemplate, v: &TemplateVersion) -> Value {
    json!({
        "id": version_id(&t.id, v.version),
        "template_id": sendgrid_id(&t.id),
        "active": i32::from(t.active_version == Some(v.version)),
        "name": format!("Version {}", v.version),
        "subject": v.content.subject,
        "html_content": v.content.html.clone().unwrap_or_default(),
        "plain_content": v.content.text.clone().unwrap_or_default(),
        "generate_plain_content": v.content.text.is_none(),
        "editor": "code",
        "test_data": v.content.test_data,
        "updated_at": updated_at(v.created_ms),
        "thumbnail_url": "",
    })
}

fn template_json(t: &StoredTemplate, versions: &[TemplateVersion]) -> Value {
    json!({
        "id": sendgrid_id(&t.id),
        "name": t.name,
        "generation": "dynamic",
        "updated_at": updated_at(versions.iter().map(|v| v.created_ms).max().unwrap_or(t.created_ms)),
        "versions": versions.iter().map(|v| version_json(t, v)).collect::<Vec<_>>(),
    })
}

async fn tenants_template<S: TemplatesStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    id: &str,
) -> Result<StoredTemplate, ApiError> {
    let ours = from_sendgrid_id(id).ok_or_else(not_found)?;
    state
        .tenancy
        .store
        .template(tenant_id, &ours)
        .await?
        .filter(|t| t.id == ours)
        .ok_or_else(not_found)
}

async fn with_versions<S: TemplatesStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    t: &StoredTemplate,
) -> Result<Value, ApiError> {
    let versions = state.tenancy.store.versions(tenant_id, &t.id).await?;
    Ok(template_json(t, &versions))
}

/// `GET /v3/templates?generations=dynamic&page_size=`: with `page_size`, SendGrid's paged
/// shape (`result`); without, its older one (`templates`).
pub(crate) async fn all<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Query(query): Query<HashMap<String, String>>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    if query
        .get("generations")
        .is_some_and(|g| !g.split(',').any(|g| g == "dynamic"))
    {
        return Ok(Json(json!({ "templates": [], "result": [] })).into_response());
    }
    let templates = state.tenancy.store.templates(&key.tenant_id).await?;
    let mut shown = Vec::with_capacity(templates.len());
    for t in &templates {
        shown.push(with_versions(&state, &key.tenant_id, t).await?);
    }
    Ok(Json(match query.get("page_size") {
        Some(size) => {
            let size = size
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=200).contains(n))
                .ok_or_else(|| invalid("page_size", "must be 1 to 200"))?;
            let count = shown.len();
            json!({ "result": shown.into_iter().take(size).collect::<Vec<_>>(), "_metadata": { "count": count } })
        }
        None => json!({ "templates": shown }),
    })
    .into_response())
}

/// `POST /v3/templates`: `{"name", "generation": "dynamic"}`.
pub(crate) async fn add<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["name", "generation"])?;
    let name = optional_string(&map, "name")?.ok_or_else(|| invalid("name", "is required"))?;
    if optional_string(&map, "generation")?.as_deref() != Some("dynamic") {
        return Err(invalid(
            "generation",
            "only dynamic templates are kept by this server: set \"generation\": \"dynamic\"",
        ));
    }
    let made = state
        .tenancy
        .store
        .add_template(&key.tenant_id, &name, Dialect::Handlebars)
        .await
        .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(template_json(&made, &[]))).into_response())
}

/// `GET /v3/templates/{id}`
pub(crate) async fn get<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let t = tenants_template(&state, &key.tenant_id, &id).await?;
    Ok(Json(with_versions(&state, &key.tenant_id, &t).await?).into_response())
}

/// `DELETE /v3/templates/{id}`
pub(crate) async fn remove<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    let t = tenants_template(&state, &key.tenant_id, &id).await?;
    state
        .tenancy
        .store
        .remove_template(&key.tenant_id, &t.id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

const VERSION_FIELDS: &[&str] = &[
    "template_id",
    "active",
    "name",
    "subject",
    "html_content",
    "plain_content",
    "generate_plain_content",
    "test_data",
    "editor",
];

/// A version's content from a body over `base`, checked: it must render with its test
/// data (SendGrid's `test_data` is JSON text).
fn content(
    map: &Map<String, Value>,
    base: VersionContent,
    dialect: Dialect,
) -> Result<VersionContent, ApiError> {
    let mut content = base;
    if let Some(subject) = optional_string(map, "subject")? {
        content.subject = subject;
    }
    if let Some(html) = optional_string(map, "html_content")? {
        content.html = Some(html).filter(|h| !h.is_empty());
    }
    if let Some(text) = optional_string(map, "plain_content")? {
        content.text = Some(text).filter(|t| !t.is_empty());
    }
    if let Some(data) = optional_string(map, "test_data")? {
        match serde_json::from_str::<Value>(&data) {
            Ok(Value::Object(_)) => content.test_data = data,
            _ => return Err(invalid("test_data", "must be a JSON object as text")),
        }
    }
    if content.subject.is_empty() {
        return Err(invalid("subject", "is required"));
    }
    if content.html.is_none() && content.text.is_none() {
        return Err(invalid(
            "html_content",
            "html_content or plain_content is required",
        ));
    }
    let data: Value = serde_json::from_str(&content.test_data).unwrap_or(json!({}));
    render_version(dialect, &content, &data)?;
    Ok(content)
}

fn active_flag(map: &Map<String, Value>) -> Result<Option<bool>, ApiError> {
    match map.get("active") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
        Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
        Some(_) => Err(invalid("active", "must be 0 or 1")),
    }
}

/// `POST /v3/templates/{id}/versions`
pub(crate) async fn add_version<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, VERSION_FIELDS)?;
    let t = tenants_template(&state, &key.tenant_id, &id).await?;
    let content = content(
        &map,
        VersionContent {
            test_data: "{}".into(),
            ..Default::default()
        },
        t.dialect,
    )?;
    let store = &state.tenancy.store;
    let made = store
        .add_version(
            &key.tenant_id,
            &t.id,
            &content,
            active_flag(&map)? == Some(true),
        )
        .await
        .map_err(refused)?;
    let t = tenants_template(&state, &key.tenant_id, &id).await?;
    Ok((StatusCode::CREATED, Json(version_json(&t, &made))).into_response())
}

async fn tenants_version<S: TemplatesStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    t: &StoredTemplate,
    id: &str,
) -> Result<TemplateVersion, ApiError> {
    let number = version_number(&t.id, id).ok_or_else(not_found)?;
    state
        .tenancy
        .store
        .version(tenant_id, &t.id, number)
        .await?
        .ok_or_else(not_found)
}

/// `GET /v3/templates/{id}/versions/{version}`
pub(crate) async fn get_version<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path((id, version)): Path<(String, String)>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let t = tenants_template(&state, &key.tenant_id, &id).await?;
    let v = tenants_version(&state, &key.tenant_id, &t, &version).await?;
    Ok(Json(version_json(&t, &v)).into_response())
}

/// `PATCH /v3/templates/{id}/versions/{version}`: while no message used it (then 400:
/// add a new version).
pub(crate) async fn update_version<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path((id, version)): Path<(String, String)>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, VERSION_FIELDS)?;
    let t = tenants_template(&state, &key.tenant_id, &id).await?;
    let v = tenants_version(&state, &key.tenant_id, &t, &version).await?;
    let content = content(&map, v.content.clone(), t.dialect)?;
    let store = &state.tenancy.store;
    store
        .update_version(&key.tenant_id, &t.id, v.version, &content)
        .await
        .map_err(refused)?;
    if active_flag(&map)? == Some(true) {
        store
            .activate_version(&key.tenant_id, &t.id, v.version)
            .await?;
    }
    let t = tenants_template(&state, &key.tenant_id, &id).await?;
    let v = tenants_version(&state, &key.tenant_id, &t, &version).await?;
    Ok(Json(version_json(&t, &v)).into_response())
}

/// `POST /v3/templates/{id}/versions/{version}/activate`
pub(crate) async fn activate<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path((id, version)): Path<(String, String)>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    let t = tenants_template(&state, &key.tenant_id, &id).await?;
    let v = tenants_version(&state, &key.tenant_id, &t, &version).await?;
    state
        .tenancy
        .store
        .activate_version(&key.tenant_id, &t.id, v.version)
        .await?;
    let t = tenants_template(&state, &key.tenant_id, &id).await?;
    Ok(Json(version_json(&t, &v)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ids_round_trip() {
        let id = version_id("tp_0123456789abcdef", 3);
        assert_eq!(id, "01234567-89ab-cdef-0000-000000000003");
        assert_eq!(version_number("tp_0123456789abcdef", &id), Some(3));
        assert_eq!(version_number("tp_ffffffffffffffff", &id), None);
        assert_eq!(version_number("tp_0123456789abcdef", "nonsense"), None);
    }
}
