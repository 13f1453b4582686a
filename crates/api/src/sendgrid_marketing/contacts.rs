//! `PUT /v3/marketing/contacts` and friends. An upsert is a job, as at SendGrid; tsubame does
//! it before answering 202 and keeps the result for `GET /v3/marketing/contacts/imports/{id}`.
//! Reserved fields kept: `email`, `first_name` and `last_name` (text properties of those
//! names, declared on first use) and `country` (ISO 3166 code); other reserved fields are
//! refused per contact rather than dropped. Custom fields are keyed by their id, which here
//! is the property's name. Adding to lists never re-subscribes who unsubscribed.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use store::{Consent, Contact, ContactInput, Existing, MemberStatus, PropertyDef, PropertyKind};

use crate::ApiState;
use crate::auth::{Authorized, Manage, Read};
use crate::contacts::refused;
use crate::error::ApiError;
use crate::manage::{not_found, object_body};
use crate::records::invalid;
use crate::stored_templates::TemplatesStore;

/// Contacts per request (SendGrid's limit).
const CONTACTS_PER_REQUEST: usize = 30_000;
/// The kind of the kept job results.
pub const JOB: &str = "sendgrid_contacts";
const NAMES: [&str; 2] = ["first_name", "last_name"];

/// Declares `first_name` / `last_name` when a request first uses them.
async fn declare_names<S: TemplatesStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    wanted: &[&str],
) -> Result<Vec<PropertyDef>, ApiError> {
    let store = &state.tenancy.store;
    let declared = store.properties(tenant_id).await?;
    let mut added = false;
    for name in wanted {
        if !declared.iter().any(|p| p.name == *name) {
            match store
                .add_property(tenant_id, name, &PropertyKind::Text)
                .await
            {
                Ok(_) | Err(store::StoreError::Invalid { .. }) => added = true,
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok(if added {
        store.properties(tenant_id).await?
    } else {
        declared
    })
}

/// One contact of the request, or why it is refused.
fn contact_input(declared: &[PropertyDef], item: &Value) -> Result<ContactInput, String> {
    let Some(map) = item.as_object() else {
        return Err("must be an object".into());
    };
    let email = map
        .get("email")
        .and_then(Value::as_str)
        .ok_or("email is required")?;
    let address = audience::fields::address(email).map_err(|e| format!("email: {}", e.reason))?;
    let mut given: Vec<(String, Value)> = Vec::new();
    let mut country = None;
    for (key, value) in map {
        match key.as_str() {
            "email" => {}
            "first_name" | "last_name" => given.push((key.clone(), value.clone())),
            "country" => match value.as_str() {
                Some(text) if !text.is_empty() => {
                    country = Some(
                        audience::fields::country(text)
                            .map_err(|e| format!("country: {}", e.reason))?,
                    )
                }
                _ => {}
            },
            "custom_fields" => match value {
                Value::Object(fields) => given.extend(fields.clone()),
                Value::Null => {}
                _ => return Err("custom_fields must be an object".into()),
            },
            other => return Err(format!("{other} is not a field this server keeps")),
        }
    }
    let properties = crate::contacts::loose_properties(declared, given, "field_definitions")?;
    Ok(ContactInput {
        address,
        country,
        properties,
        ..ContactInput::default()
    })
}

/// `PUT /v3/marketing/contacts`: `{"list_ids"?, "contacts": [{"email", "first_name"?,
/// "last_name"?, "country"?, "custom_fields"?}]}` → 202 `{"job_id"}`.
pub(crate) async fn upsert<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = crate::contacts::now_ms();
    let map = object_body(&body, &["list_ids", "contacts"])?;
    let Some(Value::Array(items)) = map.get("contacts") else {
        return Err(invalid("contacts", "must be an array of contacts"));
    };
    if items.is_empty() || items.len() > CONTACTS_PER_REQUEST {
        return Err(invalid("contacts", "1 to 30,000 contacts per request"));
    }
    let mut lists = Vec::new();
    match map.get("list_ids") {
        None | Some(Value::Null) => {}
        Some(Value::Array(ids)) => {
            for (i, id) in ids.iter().enumerate() {
                let id = id
                    .as_str()
                    .ok_or_else(|| invalid(&format!("list_ids[{i}]"), "must be a list id"))?;
                let list = super::lists::tenants_list(&state, &key.tenant_id, id)
                    .await
                    .map_err(|_| {
                        invalid(&format!("list_ids[{i}]"), "is not a list of this account")
                    })?;
                lists.push(list);
            }
        }
        Some(_) => return Err(invalid("list_ids", "must be an array of list ids")),
    }
    let wanted: Vec<&str> = NAMES
        .into_iter()
        .filter(|n| items.iter().any(|c| c.get(*n).is_some()))
        .collect();
    let declared = declare_names(&state, &key.tenant_id, &wanted).await?;
    let mut inputs = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match contact_input(&declared, item) {
            Ok(input) => inputs.push(input),
            Err(message) => {
                errors.push(json!({ "field": format!("contacts[{i}]"), "message": message }))
            }
        }
    }
    let store = &state.tenancy.store;
    let done = store
        .upsert_contacts(&key.tenant_id, &inputs, Existing::Update)
        .await
        .map_err(refused)?;
    let consent = Consent::given("api", started, None);
    for list in &lists {
        let status = if list.double_opt_in {
            MemberStatus::Unconfirmed
        } else {
            MemberStatus::Subscribed
        };
        let members: Vec<(i64, MemberStatus)> = done.ids.iter().map(|id| (*id, status)).collect();
        store
            .add_members(&key.tenant_id, &list.id, &members, &consent)
            .await
            .map_err(refused)?;
    }
    let result = json!({
        "status": if errors.is_empty() { "completed" } else { "errored" },
        "job_type": "upsert",
        "results": {
            "requested_count": items.len(),
            "created_count": done.added,
            "updated_count": done.updated + done.unchanged,
            "deleted_count": 0,
            "errored_count": errors.len(),
            "errors": errors,
        },
        "started_at": super::time(started),
        "finished_at": super::time(crate::contacts::now_ms()),
    });
    let number = store
        .add_job(&key.tenant_id, JOB, &result.to_string())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "job_id": number.to_string() })),
    )
        .into_response())
}

/// `GET /v3/marketing/contacts/imports/{id}`
pub(crate) async fn job<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let number = id.parse::<i64>().map_err(|_| not_found())?;
    let result = state
        .tenancy
        .store
        .job(&key.tenant_id, JOB, number)
        .await?
        .ok_or_else(not_found)?;
    let mut value: Value = serde_json::from_str(&result).unwrap_or_default();
    value["id"] = Value::String(id);
    Ok(Json(value).into_response())
}

/// `GET /v3/marketing/contacts/count`
pub(crate) async fn count<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let n = state.tenancy.store.contact_count(&key.tenant_id).await?;
    Ok(Json(json!({ "contact_count": n, "billable_count": n })).into_response())
}

fn contact_json(contact: &Contact, declared: &[PropertyDef], list_ids: Vec<String>) -> Value {
    let shown = audience::values::shown(declared, &contact.properties);
    let mut custom = Map::new();
    let mut out = json!({
        "id": contact.id.to_string(),
        "email": contact.address,
        "country": contact.country,
        "list_ids": list_ids,
        "created_at": super::time(contact.created_ms),
        "updated_at": super::time(contact.updated_ms),
    });
    for (name, value) in shown {
        if NAMES.contains(&name.as_str()) {
            out[name.as_str()] = value;
        } else {
            custom.insert(name, value);
        }
    }
    out["custom_fields"] = Value::Object(custom);
    out
}

/// `POST /v3/marketing/contacts/search/emails`: `{"emails": [...]}` → each address's
/// contact, or 404 when none is known.
pub(crate) async fn search_emails<S: TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Read>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["emails"])?;
    let Some(Value::Array(emails)) = map.get("emails") else {
        return Err(invalid("emails", "must be an array of addresses"));
    };
    if emails.len() > 100 {
        return Err(invalid("emails", "at most 100 addresses"));
    }
    let store = &state.tenancy.store;
    let declared = store.properties(&key.tenant_id).await?;
    let mut result = Map::new();
    let mut found = 0;
    for email in emails {
        let Some(email) = email.as_str() else {
            return Err(invalid("emails", "must be an array of addresses"));
        };
        let entry = match store.contact(&key.tenant_id, &email.to_lowercase()).await? {
            Some(contact) => {
                found += 1;
                let lists = store
                    .memberships(&key.tenant_id, contact.id)
                    .await?
                    .into_iter()
                    .filter(|m| m.status != MemberStatus::Unsubscribed)
                    .map(|m| m.list_id)
                    .collect();
                json!({ "contact": contact_json(&contact, &declared, lists) })
            }
            None => json!({ "error": "contact not found" }),
        };
        result.insert(email.to_string(), entry);
    }
    if found == 0 {
        return Err(not_found());
    }
    Ok(Json(json!({ "result": result })).into_response())
}
