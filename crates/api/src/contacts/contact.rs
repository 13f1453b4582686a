//! `GET/POST /v1/contacts`, `GET/DELETE /v1/contacts/{id or address}`: a tenant's contacts.
//! A contact shows whether it is suppressed and why: the suppression list stays the one
//! source of truth for "never mail".

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use store::{ContactInput, ContactQuery, Existing};

use super::{Store, contact_json, refused};
use crate::ApiState;
use crate::auth::{Authorized, Manage, Read};
use crate::error::{ApiError, FieldError};
use crate::manage::{not_found, object_body, removed};
use crate::records::{invalid, known_only, limit};

/// Contacts per `POST /v1/contacts` (larger sets: CSV imports).
pub const CONTACTS_PER_REQUEST: usize = 10_000;

/// `GET /v1/contacts?prefix=&after=&limit=`: by id; `next` is the `after` of the next page.
pub(crate) async fn list<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Query(query): Query<HashMap<String, String>>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    known_only(&query, &["prefix", "after", "limit"])?;
    let after = match query.get("after") {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| invalid("after", "must be a contact id"))?,
        ),
    };
    let limit = limit(&query)?;
    let store = &state.tenancy.store;
    let found = store
        .contacts(
            &key.tenant_id,
            &ContactQuery {
                prefix: query.get("prefix").cloned(),
                after_id: after,
                limit,
            },
        )
        .await?;
    let declared = store.properties(&key.tenant_id).await?;
    let next = (found.len() as u32 >= limit)
        .then(|| found.last().map(|c| c.id))
        .flatten();
    let list: Vec<Value> = found.iter().map(|c| contact_json(c, &declared)).collect();
    Ok(Json(json!({ "contacts": list, "next": next })).into_response())
}

/// One contact of the body, checked; errors name `contacts[i].field`.
fn contact_input(
    i: usize,
    value: &Value,
    declared: &[store::PropertyDef],
    errors: &mut Vec<FieldError>,
) -> Option<ContactInput> {
    let at = |field: &str| format!("contacts[{i}].{field}");
    let Value::Object(map) = value else {
        errors.push(FieldError::at(
            format!("contacts[{i}]"),
            "must be an object",
        ));
        return None;
    };
    for k in map.keys() {
        if !matches!(
            k.as_str(),
            "address" | "email" | "timezone" | "locale" | "country" | "properties"
        ) {
            errors.push(FieldError::at(at(k), "is not a known field"));
        }
    }
    let text = |field: &str| map.get(field).and_then(Value::as_str);
    let address = match text("address")
        .or_else(|| text("email"))
        .map(::audience::fields::address)
    {
        Some(Ok(address)) => address,
        Some(Err(err)) => {
            errors.push(FieldError::at(at("address"), err.reason));
            return None;
        }
        None => {
            errors.push(FieldError::at(at("address"), "is required"));
            return None;
        }
    };
    let mut field =
        |name: &str, check: fn(&str) -> Result<String, ::audience::fields::FieldError>| match map
            .get(name)
        {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => check(s)
                .map_err(|e| errors.push(FieldError::at(at(name), e.reason)))
                .ok(),
            Some(_) => {
                errors.push(FieldError::at(at(name), "must be a string"));
                None
            }
        };
    let timezone = field("timezone", ::audience::fields::timezone);
    let locale = field("locale", ::audience::fields::locale);
    let country = field("country", ::audience::fields::country);
    let properties = match map.get("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(given)) => match ::audience::values::check_properties(declared, given) {
            Ok(checked) => checked,
            Err(err) => {
                errors.push(FieldError::at(
                    format!("contacts[{i}].properties.{}", err.property()),
                    err.to_string(),
                ));
                return None;
            }
        },
        Some(_) => {
            errors.push(FieldError::at(at("properties"), "must be an object"));
            return None;
        }
    };
    Some(ContactInput {
        address,
        timezone,
        locale,
        country,
        properties,
    })
}

/// `POST /v1/contacts`: `{"contacts": [{"address", "timezone"?, "locale"?, "country"?,
/// "properties"?}], "existing"?: "update" | "keep"}`. All or nothing: any bad contact and
/// none is written.
pub(crate) async fn upsert<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["contacts", "existing"])?;
    let existing = match map.get("existing").and_then(Value::as_str) {
        None | Some("update") => Existing::Update,
        Some("keep") => Existing::Keep,
        Some(_) => return Err(invalid("existing", "must be update or keep")),
    };
    let Some(Value::Array(items)) = map.get("contacts") else {
        return Err(invalid("contacts", "must be an array of contacts"));
    };
    if items.is_empty() || items.len() > CONTACTS_PER_REQUEST {
        return Err(invalid(
            "contacts",
            "1 to 10,000 contacts per request (import CSV files for more)",
        ));
    }
    let store = &state.tenancy.store;
    let declared = store.properties(&key.tenant_id).await?;
    let mut errors = Vec::new();
    let inputs: Vec<ContactInput> = items
        .iter()
        .enumerate()
        .filter_map(|(i, v)| contact_input(i, v, &declared, &mut errors))
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let done = store
        .upsert_contacts(&key.tenant_id, &inputs, existing)
        .await
        .map_err(refused)?;
    Ok(Json(json!({
        "added": done.added, "updated": done.updated, "unchanged": done.unchanged, "ids": done.ids,
    }))
    .into_response())
}

/// `GET /v1/contacts/{id or address}`: the contact, its lists and its suppression.
pub(crate) async fn get<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let store = &state.tenancy.store;
    let contact = store
        .contact(&key.tenant_id, &id)
        .await?
        .ok_or_else(not_found)?;
    let declared = store.properties(&key.tenant_id).await?;
    let lists: Vec<Value> = store
        .memberships(&key.tenant_id, contact.id)
        .await?
        .iter()
        .map(|m| {
            json!({
                "list_id": m.list_id, "status": m.status.as_str(),
                "consent": {"source": m.consent.source, "time_ms": m.consent.time_ms,
                    "address": m.consent.address, "confirmed_ms": m.consent.confirmed_ms},
                "updated_ms": m.updated_ms,
            })
        })
        .collect();
    let suppressed = store
        .suppression(&key.tenant_id, &contact.address)
        .await?
        .map(|s| json!({"reason": s.reason, "created_ms": s.created_ms}));
    let mut body = contact_json(&contact, &declared);
    body["lists"] = Value::Array(lists);
    body["suppressed"] = suppressed.unwrap_or(Value::Null);
    Ok(Json(body).into_response())
}

/// `DELETE /v1/contacts/{id}`: the contact and its memberships (list counts follow).
pub(crate) async fn remove<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    let store = &state.tenancy.store;
    let Some(contact) = store.contact(&key.tenant_id, &id).await? else {
        return Err(not_found());
    };
    removed(store.remove_contact(&key.tenant_id, contact.id).await?)
}

/// A channel's receiving end as a body stream.
struct Chunks(tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>);

impl futures_core::Stream for Chunks {
    type Item = Result<axum::body::Bytes, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// `GET /v1/contacts/export?segment=<query>`: every contact the segment selects (all
/// without one) as CSV, streamed page by page; columns that an import maps back.
pub(crate) async fn export<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Query(query): Query<HashMap<String, String>>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    known_only(&query, &["segment"])?;
    let store = state.tenancy.store.clone();
    let tenant = key.tenant_id.clone();
    let (declared, lists) = tokio::try_join!(store.properties(&tenant), store.lists(&tenant))?;
    let text = query.get("segment").map_or("", String::as_str);
    let condition = ::audience::parse_segment(text, &declared, &lists)
        .map_err(|err| invalid("segment", err.to_string()))?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let header = ::audience::import::export::header(&declared);
        if tx.send(Ok(header.into())).await.is_err() {
            return;
        }
        let mut after = None;
        loop {
            let page = match store
                .segment_contacts(&tenant, &condition, after, 1000)
                .await
            {
                Ok(page) => page,
                Err(err) => {
                    let _ = tx.send(Err(std::io::Error::other(err.to_string()))).await;
                    return;
                }
            };
            let addresses: Vec<String> = page.iter().map(|c| c.address.clone()).collect();
            let suppressed = match store.suppressed(&tenant, &addresses).await {
                Ok(found) => found
                    .into_iter()
                    .collect::<std::collections::HashSet<String>>(),
                Err(err) => {
                    let _ = tx.send(Err(std::io::Error::other(err.to_string()))).await;
                    return;
                }
            };
            let mut chunk = String::with_capacity(page.len() * 120);
            for contact in &page {
                let flagged = suppressed.contains(&contact.address);
                chunk.push_str(&::audience::import::export::row(
                    contact, &declared, flagged,
                ));
            }
            if tx.send(Ok(chunk.into())).await.is_err() || page.len() < 1000 {
                return;
            }
            after = page.last().map(|c| c.id);
        }
    });
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"contacts.csv\"",
            ),
        ],
        axum::body::Body::from_stream(Chunks(rx)),
    )
        .into_response())
}
