//! `GET/POST /v1/contacts/properties`, `DELETE /v1/contacts/properties/{name}`: the typed
//! properties a tenant declares for its contacts.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use store::{PropertyDef, PropertyKind};

use super::{Store, refused};
use crate::ApiState;
use crate::auth::{Authorized, Manage, Read};
use crate::error::ApiError;
use crate::manage::{object_body, optional_string, removed};
use crate::records::invalid;

pub(crate) fn property_json(def: &PropertyDef) -> Value {
    let choices = match &def.kind {
        PropertyKind::Choice(values) => Some(values.clone()),
        _ => None,
    };
    json!({"name": def.name, "type": def.kind.as_str(), "choices": choices, "created_ms": def.created_ms})
}

/// `GET /v1/contacts/properties`
pub(crate) async fn list<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let declared = state.tenancy.store.properties(&key.tenant_id).await?;
    let list: Vec<Value> = declared.iter().map(property_json).collect();
    Ok(Json(json!({ "properties": list })).into_response())
}

/// `POST /v1/contacts/properties`: `{"name", "type": text|number|datetime|boolean|choice,
/// "choices"?: [...]}`.
pub(crate) async fn add<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["name", "type", "choices"])?;
    let name = optional_string(&map, "name")?.ok_or_else(|| invalid("name", "is required"))?;
    let kind = match optional_string(&map, "type")?.as_deref() {
        Some("text") => PropertyKind::Text,
        Some("number") => PropertyKind::Number,
        Some("datetime") => PropertyKind::DateTime,
        Some("boolean") => PropertyKind::Boolean,
        Some("choice") => {
            let values = match map.get("choices") {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>(),
                _ => None,
            };
            PropertyKind::Choice(
                values.ok_or_else(|| invalid("choices", "a choice needs an array of strings"))?,
            )
        }
        _ => {
            return Err(invalid(
                "type",
                "must be text, number, datetime, boolean or choice",
            ));
        }
    };
    if map.get("choices").is_some_and(|c| !c.is_null()) && !matches!(kind, PropertyKind::Choice(_))
    {
        return Err(invalid("choices", "only a choice property has choices"));
    }
    let def = state
        .tenancy
        .store
        .add_property(&key.tenant_id, &name, &kind)
        .await
        .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(property_json(&def))).into_response())
}

/// `DELETE /v1/contacts/properties/{name}`: the declaration and every contact's value.
pub(crate) async fn remove<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Path(name): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    removed(
        state
            .tenancy
            .store
            .remove_property(&key.tenant_id, &name)
            .await?,
    )
}
