//! Mailjet's `template` and `template/{id}/detailcontent`. Templates made here are in
//! Mailjet's template language; the content a client sets becomes a new active version (or
//! replaces the active one while no message has used it), so a version that was sent stays
//! what it said. `TemplateID` in `/v3.1/send` names these numbers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use store::{CompatKind, Dialect, StoredTemplate, VersionContent};

use super::{MjError, MjKey, MjStore, Page, body, created, data, number, numbers, object, text};
use crate::ApiState;
use crate::auth::{Manage, Read};

fn template_json(t: &StoredTemplate, number: i64) -> Value {
    json!({
        "Author": "",
        "Categories": [],
        "Copyright": "",
        "Description": "",
        "EditMode": 1,
        "ID": number,
        "IsStarred": false,
        "IsTextPartGenerationEnabled": false,
        "Locale": "en_US",
        "Name": t.name,
        "OwnerId": 0,
        "OwnerType": "user",
        "Presets": "",
        "Previews": [],
        "Purposes": [],
    })
}

async fn tenants_template<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    number: &str,
) -> Result<StoredTemplate, MjError> {
    let id = object(state, tenant_id, CompatKind::Template, number).await?;
    state
        .tenancy
        .store
        .template(tenant_id, &id)
        .await?
        .ok_or_else(MjError::not_found)
}

/// `GET /v3/REST/template?Limit=&Offset=`: every template of the account.
pub(crate) async fn all<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Query(query): Query<HashMap<String, String>>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let page = Page::from(&query)?;
    let templates = state.tenancy.store.templates(&key.tenant_id).await?;
    let ids: Vec<String> = templates.iter().map(|t| t.id.clone()).collect();
    let numbers = numbers(&state, &key.tenant_id, CompatKind::Template, &ids).await?;
    let items: Vec<Value> = templates
        .iter()
        .zip(numbers)
        .map(|(t, n)| template_json(t, n))
        .collect();
    let (items, total) = page.apply(items);
    Ok(data(items, total))
}

/// `POST /v3/REST/template`: `{"Name", ...}` (Mailjet's other descriptive fields are
/// accepted and not kept).
pub(crate) async fn add<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let map = body(&bytes)?;
    let name = text(&map, "Name")?.ok_or_else(|| MjError::bad("\"Name\" is required"))?;
    let made = state
        .tenancy
        .store
        .add_template(&key.tenant_id, name, Dialect::Mailjet)
        .await
        .map_err(MjError::name_taken("Template", name))?;
    let number = number(&state, &key.tenant_id, CompatKind::Template, &made.id).await?;
    Ok(created(template_json(&made, number)))
}

/// `GET /v3/REST/template/{id}`
pub(crate) async fn get<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let found = tenants_template(&state, &key.tenant_id, &id).await?;
    let number = number(&state, &key.tenant_id, CompatKind::Template, &found.id).await?;
    Ok(data(vec![template_json(&found, number)], 1))
}

/// `DELETE /v3/REST/template/{id}`
pub(crate) async fn remove<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
) -> Result<Response, MjError> {
    let found = tenants_template(&state, &key.tenant_id, &id).await?;
    state
        .tenancy
        .store
        .remove_template(&key.tenant_id, &found.id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn content_json(content: Option<&VersionContent>) -> Value {
    json!({
        "Headers": { "Subject": content.map_or("", |c| c.subject.as_str()) },
        "Html-part": content.and_then(|c| c.html.clone()).unwrap_or_default(),
        "Text-part": content.and_then(|c| c.text.clone()).unwrap_or_default(),
        "MJMLContent": "",
    })
}

/// `GET /v3/REST/template/{id}/detailcontent`: the active version's content.
pub(crate) async fn content<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let found = tenants_template(&state, &key.tenant_id, &id).await?;
    let version = match found.active_version {
        Some(n) => {
            state
                .tenancy
                .store
                .version(&key.tenant_id, &found.id, n)
                .await?
        }
        None => None,
    };
    Ok(data(
        vec![content_json(version.as_ref().map(|v| &v.content))],
        1,
    ))
}

fn part(map: &Map<String, Value>, name: &str) -> Result<Option<String>, MjError> {
    Ok(text(map, name)?
        .filter(|t| !t.is_empty())
        .map(str::to_string))
}

/// `POST` or `PUT /v3/REST/template/{id}/detailcontent`: `{"Headers": {"Subject"},
/// "Html-part", "Text-part"}`.
pub(crate) async fn set_content<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let map = body(&bytes)?;
    let found = tenants_template(&state, &key.tenant_id, &id).await?;
    let subject = match map.get("Headers") {
        None | Some(Value::Null) => String::new(),
        Some(Value::Object(headers)) => text(headers, "Subject")?.unwrap_or("").to_string(),
        Some(_) => return Err(MjError::bad("\"Headers\" must be an object")),
    };
    if map
        .get("MJMLContent")
        .is_some_and(|v| !matches!(v, Value::Null | Value::String(_)))
    {
        return Err(MjError::bad("\"MJMLContent\" must be a string"));
    }
    let content = VersionContent {
        subject,
        html: part(&map, "Html-part")?,
        text: part(&map, "Text-part")?,
        test_data: "{}".into(),
    };
    if content.html.is_none() && content.text.is_none() {
        return Err(MjError::bad("\"Html-part\" or \"Text-part\" is required"));
    }
    let store = &state.tenancy.store;
    let active = match found.active_version {
        Some(n) => store.version(&key.tenant_id, &found.id, n).await?,
        None => None,
    };
    match active {
        Some(v) if v.used_ms.is_none() => {
            store
                .update_version(&key.tenant_id, &found.id, v.version, &content)
                .await?;
        }
        _ => {
            store
                .add_version(&key.tenant_id, &found.id, &content, true)
                .await?;
        }
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "Count": 1, "Data": [content_json(Some(&content))], "Total": 1 })),
    )
        .into_response())
}
