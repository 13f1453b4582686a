//! `/v3/marketing/field_definitions`: SendGrid's custom fields are the tenant's declared
//! contact properties (a field's id is its name); the reserved fields tsubame keeps are
//! listed as SendGrid lists its own.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use store::{PropertyDef, PropertyKind};

use crate::ApiState;
use crate::auth::{Authorized, Manage, Read};
use crate::contacts::refused;
use crate::error::ApiError;
use crate::manage::{not_found, object_body, optional_string};
use crate::records::invalid;
use crate::stored_templates::TemplatesStore;

/// The reserved fields tsubame keeps: SendGrid's names, and where they live.
pub const RESERVED: &[(&str, &str)] = &[
    ("email", "Text"),
    ("first_name", "Text"),
    ("last_name", "Text"),
    ("country", "Text"),
];

fn field_type(kind: &PropertyKind) -> &'static str {
    match kind {
        PropertyKind::Number => "Number",
        PropertyKind::DateTime => "Date",
        PropertyKind::Text | PropertyKind::Boolean | PropertyKind::Choice(_) => "Text",
    }
}

/// Properties SendGrid shows as reserved fields rather than custom ones.
pub fn is_reserved(name: &str) -> bool {
    RESERVED.iter().any(|(n, _)| *n == name)
}

fn field_json(def: &PropertyDef) -> Value {
    json!({ "id": def.name, "name": def.name, "field_type": field_type(&def.kind) })
}

/// `GET /v3/marketing/field_definitions`
pub(crate) async fn all<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let declared = state.tenancy.store.properties(&key.tenant_id).await?;
    let custom: Vec<Value> = declared
        .iter()
        .filter(|d| !is_reserved(&d.name))
        .map(field_json)
        .collect();
    let reserved: Vec<Value> = RESERVED
        .iter()
        .map(|(name, kind)| json!({ "id": name, "name": name, "field_type": kind, "read_only": false }))
        .collect();
    Ok(Json(json!({
        "custom_fields": custom,
        "reserved_fields": reserved,
        "_metadata": { "self": "/v3/marketing/field_definitions" },
    }))
    .into_response())
}

/// `POST /v3/marketing/field_definitions`: `{"name", "field_type": Text | Number | Date}`.
pub(crate) async fn add<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["name", "field_type"])?;
    let name = optional_string(&map, "name")?.ok_or_else(|| invalid("name", "is required"))?;
    if is_reserved(&name) {
        return Err(invalid("name", "is a reserved field"));
    }
    let kind = match optional_string(&map, "field_type")?.as_deref() {
        Some("Text") => PropertyKind::Text,
        Some("Number") => PropertyKind::Number,
        Some("Date") => PropertyKind::DateTime,
        _ => return Err(invalid("field_type", "must be Text, Number or Date")),
    };
    let def = state
        .tenancy
        .store
        .add_property(&key.tenant_id, &name, &kind)
        .await
        .map_err(refused)?;
    let mut body = field_json(&def);
    body["_metadata"] = json!({ "self": format!("/v3/marketing/field_definitions/{}", def.name) });
    Ok(Json(body).into_response())
}

/// `DELETE /v3/marketing/field_definitions/{id}`: the field and its values.
pub(crate) async fn remove<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    if is_reserved(&id) {
        return Err(not_found());
    }
    if !state
        .tenancy
        .store
        .remove_property(&key.tenant_id, &id)
        .await?
    {
        return Err(not_found());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
