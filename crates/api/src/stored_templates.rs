//! Stored templates over HTTP (scope `manage` to change, `read` to look and preview):
//! `GET/POST /v1/templates`, `GET/DELETE /v1/templates/{id}`,
//! `POST /v1/templates/{id}/versions`, `PUT .../versions/{n}` (while unused),
//! `.../versions/{n}/activate`, `.../versions/{n}/preview`.
//! Each version is checked in its template's dialect when it is added: one that does not
//! render with its own test data is refused, naming the part.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use store::{Dialect, TemplateStore, TemplateVersion, VersionContent};

use crate::ApiState;
use crate::auth::{Authorized, Manage, Read};
use crate::contacts::{Store, refused};
use crate::error::ApiError;
use crate::manage::{not_found, object_body, optional_string, removed};
use crate::records::invalid;

/// Every store the templates' handlers need.
pub trait TemplatesStore: Store + TemplateStore + store::CompatStore {}
impl<T: Store + TemplateStore + store::CompatStore> TemplatesStore for T {}

/// A stored template's version, looked up for a compatible send API.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub template_id: String,
    pub version: i64,
    pub dialect: Dialect,
    pub content: VersionContent,
}

/// Templates by the key a request named them with (Mailjet's number, SendGrid's `d-` id).
pub type Templates = std::collections::HashMap<String, Resolved>;

pub use store::compat::{from_sendgrid_id, sendgrid_id};

/// Whether a request body names `key` at all: a byte scan, so that the sends that use no
/// stored template (most of them) are not parsed twice. A key written with JSON escapes is
/// missed here and then refused by the request's own checks, never silently ignored.
pub(crate) fn mentions(body: &[u8], key: &str) -> bool {
    body.windows(key.len()).any(|w| w == key.as_bytes())
}

/// The active version of a tenant's template, if it has one.
async fn active<S: TemplatesStore>(
    store: &S,
    tenant_id: &str,
    template_id: &str,
) -> Result<Option<Resolved>, ApiError> {
    let Some(template) = store.template(tenant_id, template_id).await? else {
        return Ok(None);
    };
    let Some(version) = template.active_version else {
        return Ok(None);
    };
    Ok(store
        .version(tenant_id, &template.id, version)
        .await?
        .map(|v| Resolved {
            template_id: template.id.clone(),
            version,
            dialect: template.dialect,
            content: v.content,
        }))
}

/// The templates Mailjet `TemplateID`s name (numbers the Mailjet REST API gave them); ones
/// that are not the tenant's, or have no active version, are left out.
pub(crate) async fn by_mailjet_number<S: TemplatesStore>(
    store: &S,
    tenant_id: &str,
    numbers: &[String],
) -> Result<Templates, ApiError> {
    let mut out = Templates::new();
    for key in numbers {
        let Ok(number) = key.parse::<i64>() else {
            continue;
        };
        let Some(id) = store
            .object(tenant_id, store::CompatKind::Template, number)
            .await?
        else {
            continue;
        };
        if let Some(found) = active(store, tenant_id, &id).await? {
            out.insert(key.clone(), found);
        }
    }
    Ok(out)
}

/// The template a SendGrid `template_id` names, with its key, when it is the tenant's.
pub(crate) async fn by_sendgrid_id<S: TemplatesStore>(
    store: &S,
    tenant_id: &str,
    body: &[u8],
) -> Result<Templates, ApiError> {
    let mut out = Templates::new();
    if !mentions(body, "\"template_id\"") {
        return Ok(out);
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Ok(out);
    };
    let Some(key) = value.get("template_id").and_then(Value::as_str) else {
        return Ok(out);
    };
    if let Some(id) = from_sendgrid_id(key)
        && let Some(found) = active(store, tenant_id, &id).await?
    {
        out.insert(key.to_string(), found);
    }
    Ok(out)
}

/// Marks the versions messages were made from as used: from now on they cannot change,
/// so what was sent stays what the version says.
pub(crate) async fn mark_used<S: TemplatesStore>(store: &S, used: &[(String, i64)]) {
    let mut seen = std::collections::HashSet::new();
    for (template_id, version) in used {
        if !seen.insert((template_id, version)) {
            continue;
        }
        if let Err(err) = store.mark_version_used(template_id, *version).await {
            tracing::warn!(error = %err, template = %template_id, "could not mark a template version used");
        }
    }
}

/// The three parts of a version rendered with `data`; errors name the part.
pub fn render_version(
    dialect: Dialect,
    content: &VersionContent,
    data: &Value,
) -> Result<(String, Option<String>, Option<String>), ApiError> {
    let rendered = templates::render_parts(
        dialect,
        &content.subject,
        content.html.as_deref(),
        content.text.as_deref(),
        data,
    )
    .map_err(|e| invalid(e.part, e.message))?;
    Ok((rendered.subject, rendered.html, rendered.text))
}

/// The caller's template by id or name; another tenant's is a 404 like an unknown one.
async fn tenants_template<S: TemplatesStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    id: &str,
) -> Result<store::StoredTemplate, ApiError> {
    state
        .tenancy
        .store
        .template(tenant_id, id)
        .await?
        .ok_or_else(not_found)
}

fn version_json(v: &TemplateVersion) -> Value {
    json!({
        "version": v.version, "subject": v.content.subject, "html": v.content.html,
        "text": v.content.text,
        "test_data": serde_json::from_str::<Value>(&v.content.test_data).unwrap_or(json!({})),
        "created_ms": v.created_ms, "used_ms": v.used_ms,
    })
}

/// Templates as the API shows them, with the ids the compatible APIs know them by
/// (Mailjet's `TemplateID` number, SendGrid's `d-` id).
async fn templates_json<S: TemplatesStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    list: &[store::StoredTemplate],
) -> Result<Vec<Value>, ApiError> {
    let ids: Vec<String> = list.iter().map(|t| t.id.clone()).collect();
    let numbers = state
        .tenancy
        .store
        .numbers(tenant_id, store::CompatKind::Template, &ids)
        .await?;
    Ok(list
        .iter()
        .zip(numbers)
        .map(|(t, number)| {
            json!({
                "id": t.id, "name": t.name, "dialect": t.dialect.as_str(),
                "active_version": t.active_version, "created_ms": t.created_ms,
                "mailjet_id": number, "sendgrid_id": sendgrid_id(&t.id),
            })
        })
        .collect())
}

async fn template_json<S: TemplatesStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    t: &store::StoredTemplate,
) -> Result<Value, ApiError> {
    let mut shown = templates_json(state, tenant_id, std::slice::from_ref(t)).await?;
    Ok(shown.pop().unwrap_or_default())
}

/// `GET /v1/templates`
pub(crate) async fn all<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let list = state.tenancy.store.templates(&key.tenant_id).await?;
    let list = templates_json(&state, &key.tenant_id, &list).await?;
    Ok(Json(json!({ "templates": list })).into_response())
}

/// `POST /v1/templates`: `{"name", "dialect": native | mailjet | handlebars}`.
pub(crate) async fn add<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["name", "dialect"])?;
    let name = optional_string(&map, "name")?.ok_or_else(|| invalid("name", "is required"))?;
    let dialect = match optional_string(&map, "dialect")?.as_deref() {
        None => Dialect::Native,
        Some(text) => Dialect::parse(text)
            .ok_or_else(|| invalid("dialect", "must be native, mailjet or handlebars"))?,
    };
    let made = state
        .tenancy
        .store
        .add_template(&key.tenant_id, &name, dialect)
        .await
        .map_err(refused)?;
    let shown = template_json(&state, &key.tenant_id, &made).await?;
    Ok((StatusCode::CREATED, Json(shown)).into_response())
}

/// `GET /v1/templates/{id}`: with its versions.
pub(crate) async fn get<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let store = &state.tenancy.store;
    let found = tenants_template(&state, &key.tenant_id, &id).await?;
    let versions = store.versions(&key.tenant_id, &found.id).await?;
    let mut body = template_json(&state, &key.tenant_id, &found).await?;
    body["versions"] = versions.iter().map(version_json).collect();
    Ok(Json(body).into_response())
}

/// `DELETE /v1/templates/{id}`
pub(crate) async fn remove<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    let store = &state.tenancy.store;
    let found = tenants_template(&state, &key.tenant_id, &id).await?;
    removed(store.remove_template(&key.tenant_id, &found.id).await?)
}

/// `POST /v1/templates/{id}/versions`: `{"subject", "html"?, "text"?, "test_data"?,
/// "active"?}`; it must render with its test data.
pub(crate) async fn add_version<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["subject", "html", "text", "test_data", "active"])?;
    let store = &state.tenancy.store;
    let found = tenants_template(&state, &key.tenant_id, &id).await?;
    let content = version_content(&map, found.dialect)?;
    let active = match map.get("active") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("active", "must be true or false")),
    };
    let made = store
        .add_version(&key.tenant_id, &found.id, &content, active)
        .await
        .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(version_json(&made))).into_response())
}

/// A version's content from a request body, checked: it must render with its test data.
fn version_content(
    map: &serde_json::Map<String, Value>,
    dialect: Dialect,
) -> Result<VersionContent, ApiError> {
    let subject =
        optional_string(map, "subject")?.ok_or_else(|| invalid("subject", "is required"))?;
    let html = optional_string(map, "html")?;
    let text = optional_string(map, "text")?;
    if html.is_none() && text.is_none() {
        return Err(invalid("text", "a version needs html or text"));
    }
    let test_data = match map.get("test_data") {
        None | Some(Value::Null) => json!({}),
        Some(Value::Object(o)) => Value::Object(o.clone()),
        Some(_) => return Err(invalid("test_data", "must be an object")),
    };
    let content = VersionContent {
        subject,
        html,
        text,
        test_data: test_data.to_string(),
    };
    render_version(dialect, &content, &test_data)?;
    Ok(content)
}

/// `PUT /v1/templates/{id}/versions/{n}`: changes a version no message used yet (409 once
/// one did: add a new version instead).
pub(crate) async fn update_version<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path((id, version)): Path<(String, i64)>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["subject", "html", "text", "test_data"])?;
    let store = &state.tenancy.store;
    let found = tenants_template(&state, &key.tenant_id, &id).await?;
    let content = version_content(&map, found.dialect)?;
    match store
        .update_version(&key.tenant_id, &found.id, version, &content)
        .await
    {
        Ok(true) => {}
        Ok(false) => return Err(not_found()),
        Err(store::StoreError::Invalid { reason, .. }) => {
            return Err(ApiError::new(StatusCode::CONFLICT, reason));
        }
        Err(err) => return Err(err.into()),
    }
    let updated = store
        .version(&key.tenant_id, &found.id, version)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(version_json(&updated)).into_response())
}

/// `POST /v1/templates/{id}/versions/{n}/activate`
pub(crate) async fn activate<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path((id, version)): Path<(String, i64)>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    let store = &state.tenancy.store;
    let found = tenants_template(&state, &key.tenant_id, &id).await?;
    if !store
        .activate_version(&key.tenant_id, &found.id, version)
        .await?
    {
        return Err(not_found());
    }
    let found = store
        .template(&key.tenant_id, &found.id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(template_json(&state, &key.tenant_id, &found).await?).into_response())
}

/// `POST /v1/templates/{id}/versions/{n}/preview`: `{"data"?}` (default: its test data)
/// → `{"subject", "html", "text"}` as a message would carry them.
pub(crate) async fn preview<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path((id, version)): Path<(String, i64)>,
    Authorized { key, .. }: Authorized<Read>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = if body.is_empty() {
        serde_json::Map::new()
    } else {
        object_body(&body, &["data"])?
    };
    let store = &state.tenancy.store;
    let found = tenants_template(&state, &key.tenant_id, &id).await?;
    let v = store
        .version(&key.tenant_id, &found.id, version)
        .await?
        .ok_or_else(not_found)?;
    let data = match map.get("data") {
        None | Some(Value::Null) => serde_json::from_str(&v.content.test_data).unwrap_or(json!({})),
        Some(Value::Object(o)) => Value::Object(o.clone()),
        Some(_) => return Err(invalid("data", "must be an object")),
    };
    let (subject, html, text) = render_version(found.dialect, &v.content, &data)?;
    Ok(Json(json!({ "subject": subject, "html": html, "text": text })).into_response())
}

/// Messages of a native send naming a stored template (`template_id`, optionally
/// `template_version`; the active version otherwise) get its subject, text and HTML
/// rendered with their `variables`; those fields are then taken out, so the native checks
/// see a plain message and nothing is rendered twice. Returns the body to check and the
/// versions used. A body without templates is returned as it is.
pub(crate) async fn fill_messages<'a, S: TemplatesStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    body: &'a [u8],
) -> Result<(std::borrow::Cow<'a, [u8]>, Vec<(String, i64)>), ApiError> {
    let unchanged = || Ok((std::borrow::Cow::Borrowed(body), Vec::new()));
    if !mentions(body, "\"template_id\"") {
        return unchanged();
    }
    let mut value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        // Not JSON: the native parser says so, with its own message.
        Err(_) => return unchanged(),
    };
    let Some(messages) = value.get_mut("messages").and_then(Value::as_array_mut) else {
        return unchanged();
    };
    if !messages.iter().any(|m| m.get("template_id").is_some()) {
        return unchanged();
    }
    let store = &state.tenancy.store;
    let mut used = Vec::new();
    for (i, message) in messages.iter_mut().enumerate() {
        let Some(map) = message.as_object_mut() else {
            continue;
        };
        let Some(template_id) = map.remove("template_id") else {
            continue;
        };
        let field = |name: &str| format!("messages[{i}].{name}");
        let Some(template_id) = template_id.as_str() else {
            return Err(invalid(
                &field("template_id"),
                "must be a template id or name",
            ));
        };
        let template = store
            .template(tenant_id, template_id)
            .await?
            .ok_or_else(|| invalid(&field("template_id"), "not a template of this account"))?;
        let version = match map.remove("template_version") {
            None | Some(Value::Null) => template.active_version,
            Some(Value::Number(n)) => n.as_i64(),
            Some(_) => {
                return Err(invalid(
                    &field("template_version"),
                    "must be a version number",
                ));
            }
        }
        .ok_or_else(|| invalid(&field("template_id"), "the template has no version yet"))?;
        let stored = store
            .version(tenant_id, &template.id, version)
            .await?
            .ok_or_else(|| invalid(&field("template_version"), "no such version"))?;
        let variables = match map.remove("variables") {
            None | Some(Value::Null) => json!({}),
            Some(v @ Value::Object(_)) => v,
            Some(_) => return Err(invalid(&field("variables"), "must be an object")),
        };
        for (part, given) in [
            ("subject", true),
            ("text", stored.content.text.is_some()),
            ("html", stored.content.html.is_some()),
        ] {
            if given && map.get(part).is_some_and(|v| !v.is_null()) {
                return Err(invalid(&field(part), "is given by the template"));
            }
        }
        let (subject, html, text) = render_version(template.dialect, &stored.content, &variables)
            .map_err(|_| {
            invalid(
                &field("variables"),
                "the template does not render with these variables",
            )
        })?;
        map.insert("subject".into(), Value::String(subject));
        if let Some(html) = html {
            map.insert("html".into(), Value::String(html));
        }
        if let Some(text) = text {
            map.insert("text".into(), Value::String(text));
        }
        used.push((template.id.clone(), version));
    }
    Ok((
        std::borrow::Cow::Owned(value.to_string().into_bytes()),
        used,
    ))
}
