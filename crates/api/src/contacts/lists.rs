//! `GET/POST /v1/lists`, `GET/DELETE /v1/lists/{id}`, and members:
//! `GET/POST /v1/lists/{id}/members`, `POST /v1/lists/{id}/members/remove`. Counts are kept
//! by the store as members change.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use store::{Consent, ContactInput, ContactList, Existing, MemberStatus};

use super::{Store, contact_json, refused};
use crate::ApiState;
use crate::auth::{Authorized, Manage, Read};
use crate::error::{ApiError, FieldError};
use crate::manage::{not_found, object_body, optional_string, removed};
use crate::records::{invalid, known_only, limit};

/// Members per request.
const MEMBERS_PER_REQUEST: usize = 10_000;

pub(crate) fn list_json(list: &ContactList) -> Value {
    json!({
        "id": list.id, "name": list.name, "double_opt_in": list.double_opt_in,
        "subscribed": list.subscribed, "unconfirmed": list.unconfirmed,
        "unsubscribed": list.unsubscribed, "created_ms": list.created_ms,
        "confirmation": list.confirmation.as_ref().map(|c| json!({
            "from": c.from, "subject": c.subject, "text": c.text, "redirect": c.redirect,
        })),
        "form_url": format!("/v1/forms/{}", list.id),
    })
}

async fn tenants_list<S: Store>(
    state: &ApiState<S>,
    tenant_id: &str,
    id: &str,
) -> Result<ContactList, ApiError> {
    state
        .tenancy
        .store
        .list(tenant_id, id)
        .await?
        .ok_or_else(not_found)
}

/// `GET /v1/lists`
pub(crate) async fn all<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let lists = state.tenancy.store.lists(&key.tenant_id).await?;
    let list: Vec<Value> = lists.iter().map(list_json).collect();
    Ok(Json(json!({ "lists": list })).into_response())
}

/// `POST /v1/lists`: `{"name", "double_opt_in"?: false}`.
pub(crate) async fn add<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["name", "double_opt_in"])?;
    let name = optional_string(&map, "name")?.ok_or_else(|| invalid("name", "is required"))?;
    let double = match map.get("double_opt_in") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("double_opt_in", "must be true or false")),
    };
    let list = state
        .tenancy
        .store
        .add_list(&key.tenant_id, &name, double)
        .await
        .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(list_json(&list))).into_response())
}

/// `GET /v1/lists/{id}`
pub(crate) async fn get<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let list = tenants_list(&state, &key.tenant_id, &id).await?;
    Ok(Json(list_json(&list)).into_response())
}

/// `DELETE /v1/lists/{id}`: the list and its memberships, not the contacts.
pub(crate) async fn remove<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    let list = tenants_list(&state, &key.tenant_id, &id).await?;
    removed(
        state
            .tenancy
            .store
            .remove_list(&key.tenant_id, &list.id)
            .await?,
    )
}

/// `GET /v1/lists/{id}/members?status=&after=&limit=`
pub(crate) async fn members<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    known_only(&query, &["status", "after", "limit"])?;
    let list = tenants_list(&state, &key.tenant_id, &id).await?;
    let status =
        match query.get("status") {
            None => None,
            Some(s) => Some(MemberStatus::parse(s).ok_or_else(|| {
                invalid("status", "must be subscribed, unconfirmed or unsubscribed")
            })?),
        };
    let after = match query.get("after") {
        None => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| invalid("after", "must be a contact id"))?,
        ),
    };
    let limit = limit(&query)?;
    let store = &state.tenancy.store;
    let found = store
        .members(&key.tenant_id, &list.id, status, after, limit)
        .await?;
    let declared = store.properties(&key.tenant_id).await?;
    let next = (found.len() as u32 >= limit)
        .then(|| found.last().map(|(c, _)| c.id))
        .flatten();
    let members: Vec<Value> = found
        .iter()
        .map(|(contact, m)| {
            json!({
                "contact": contact_json(contact, &declared),
                "status": m.status.as_str(),
                "consent": {"source": m.consent.source, "time_ms": m.consent.time_ms,
                    "address": m.consent.address, "confirmed_ms": m.consent.confirmed_ms},
            })
        })
        .collect();
    Ok(Json(json!({ "members": members, "next": next })).into_response())
}

/// The contacts a members body names (ids, or addresses: unknown ones become contacts).
async fn named_contacts<S: Store>(
    state: &ApiState<S>,
    tenant_id: &str,
    items: &[Value],
) -> Result<Vec<i64>, ApiError> {
    let mut ids = Vec::with_capacity(items.len());
    let mut addresses = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::Number(n) if n.as_i64().is_some() => ids.push(n.as_i64().unwrap_or_default()),
            Value::String(s) => match ::audience::fields::address(s) {
                Ok(address) => addresses.push(ContactInput {
                    address,
                    ..ContactInput::default()
                }),
                Err(e) => errors.push(FieldError::at(format!("contacts[{i}]"), e.reason)),
            },
            _ => errors.push(FieldError::at(
                format!("contacts[{i}]"),
                "a contact id or an address",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    if !addresses.is_empty() {
        let made = state
            .tenancy
            .store
            .upsert_contacts(tenant_id, &addresses, Existing::Keep)
            .await
            .map_err(refused)?;
        ids.extend(made.ids);
    }
    Ok(ids)
}

fn contacts_field(map: &serde_json::Map<String, Value>) -> Result<&Vec<Value>, ApiError> {
    match map.get("contacts") {
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MEMBERS_PER_REQUEST => {
            Ok(items)
        }
        _ => Err(invalid(
            "contacts",
            "an array of 1 to 10,000 contact ids or addresses",
        )),
    }
}

/// `POST /v1/lists/{id}/members`: `{"contacts": [id or address...], "status"?,
/// "consent_address"?}`. The status defaults to subscribed, or unconfirmed on a double
/// opt-in list. The consent is recorded as given through the API, now.
pub(crate) async fn add_members<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["contacts", "status", "consent_address"])?;
    let list = tenants_list(&state, &key.tenant_id, &id).await?;
    let status = match optional_string(&map, "status")? {
        None if list.double_opt_in => MemberStatus::Unconfirmed,
        None => MemberStatus::Subscribed,
        Some(s) => MemberStatus::parse(&s)
            .ok_or_else(|| invalid("status", "must be subscribed, unconfirmed or unsubscribed"))?,
    };
    let consent_address = optional_string(&map, "consent_address")?;
    if consent_address
        .as_deref()
        .is_some_and(|a| a.parse::<std::net::IpAddr>().is_err())
    {
        return Err(invalid("consent_address", "must be an IP address"));
    }
    let ids = named_contacts(&state, &key.tenant_id, contacts_field(&map)?).await?;
    let consent = Consent::given(
        "api",
        super::now_ms(),
        consent_address.or_else(|| Some(peer.ip().to_string())),
    );
    let members: Vec<(i64, MemberStatus)> = ids.into_iter().map(|id| (id, status)).collect();
    let list = state
        .tenancy
        .store
        .set_members(&key.tenant_id, &list.id, &members, &consent)
        .await
        .map_err(refused)?;
    Ok(Json(list_json(&list)).into_response())
}

/// `POST /v1/lists/{id}/members/remove`: `{"contacts": [id or address...]}`.
pub(crate) async fn remove_members<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["contacts"])?;
    let list = tenants_list(&state, &key.tenant_id, &id).await?;
    let store = &state.tenancy.store;
    let mut ids = Vec::new();
    for (i, item) in contacts_field(&map)?.iter().enumerate() {
        let found = match item {
            Value::Number(n) if n.is_i64() => n.as_i64(),
            Value::String(s) => store.contact(&key.tenant_id, s).await?.map(|c| c.id),
            _ => {
                return Err(invalid(
                    &format!("contacts[{i}]"),
                    "a contact id or an address",
                ));
            }
        };
        ids.extend(found);
    }
    let list = store
        .remove_members(&key.tenant_id, &list.id, &ids)
        .await
        .map_err(refused)?;
    Ok(Json(list_json(&list)).into_response())
}
