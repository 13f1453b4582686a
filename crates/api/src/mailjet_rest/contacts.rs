//! Mailjet's `contact`, `contactdata` and `contactmetadata`. A Mailjet contact's `Name` is
//! kept in the text property `name` (declared on first use); `IsExcludedFromCampaigns`
//! reads the suppression list (the one source of truth for "never mail"), and setting it
//! adds the address there. Property values may be given as Mailjet clients send them (text
//! for numbers and dates too).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use store::{CompatKind, Contact, ContactInput, ContactQuery, Existing, PropertyDef, PropertyKind};

use super::{MjError, MjKey, MjStore, Page, body, created, data, number, numbers, object, text};
use crate::ApiState;
use crate::auth::{Manage, Read};

/// The property a Mailjet contact's `Name` lives in.
pub const NAME: &str = "name";

/// A contact as Mailjet shows it; `excluded`: the suppression's reason, if any.
pub fn contact_json(contact: &Contact, excluded: Option<&str>) -> Value {
    json!({
        "CreatedAt": super::time(Some(contact.created_ms)),
        "DeliveredCount": 0,
        "Email": contact.address,
        "ExclusionFromCampaignsUpdatedAt": "",
        "ID": contact.id,
        "IsExcludedFromCampaigns": excluded.is_some(),
        "IsOptInPending": false,
        "IsSpamComplaining": excluded == Some("complaint"),
        "LastActivityAt": "",
        "LastUpdateAt": super::time(Some(contact.updated_ms)),
        "Name": contact.properties.get(NAME).and_then(Value::as_str).unwrap_or(""),
        "UnsubscribedAt": "",
        "UnsubscribedBy": "",
    })
}

/// Contacts as Mailjet shows them, with their suppressions looked up at once.
pub async fn contacts_json<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    contacts: &[Contact],
) -> Result<Vec<Value>, MjError> {
    let addresses: Vec<String> = contacts.iter().map(|c| c.address.clone()).collect();
    let suppressed = state
        .tenancy
        .store
        .suppressed(tenant_id, &addresses)
        .await?;
    let mut out = Vec::with_capacity(contacts.len());
    for contact in contacts {
        let reason = if suppressed.contains(&contact.address) {
            state
                .tenancy
                .store
                .suppression(tenant_id, &contact.address)
                .await?
                .map(|s| s.reason)
        } else {
            None
        };
        out.push(contact_json(contact, reason.as_deref()));
    }
    Ok(out)
}

/// Declares `name` when a Mailjet client first gives a contact a Name.
pub async fn declare_name<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
) -> Result<Vec<PropertyDef>, MjError> {
    let store = &state.tenancy.store;
    let declared = store.properties(tenant_id).await?;
    if declared.iter().any(|p| p.name == NAME) {
        return Ok(declared);
    }
    match store
        .add_property(tenant_id, NAME, &PropertyKind::Text)
        .await
    {
        Ok(_) | Err(store::StoreError::Invalid { .. }) => {}
        Err(err) => return Err(err.into()),
    }
    Ok(store.properties(tenant_id).await?)
}

/// A contact to write from Mailjet's `Email`, `Name` and `Properties`.
pub fn input(
    declared: &[PropertyDef],
    item: &Map<String, Value>,
) -> Result<(ContactInput, bool), String> {
    let email = item
        .get("Email")
        .and_then(Value::as_str)
        .ok_or("\"Email\" is required")?;
    let address =
        audience::fields::address(email).map_err(|e| format!("\"Email\" {}", e.reason))?;
    let mut given: Vec<(String, Value)> = match item.get("Properties") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(p)) => p.clone().into_iter().collect(),
        Some(_) => return Err("\"Properties\" must be an object".into()),
    };
    if let Some(name) = item.get("Name").filter(|v| !v.is_null()) {
        given.push((NAME.to_string(), name.clone()));
    }
    let excluded = match item.get("IsExcludedFromCampaigns") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        Some(_) => return Err("\"IsExcludedFromCampaigns\" must be a boolean".into()),
    };
    Ok((
        ContactInput {
            address,
            properties: crate::contacts::loose_properties(declared, given, "contactmetadata")?,
            ..ContactInput::default()
        },
        excluded,
    ))
}

/// Adds addresses to the suppression list (Mailjet's exclusion from campaigns).
pub async fn exclude<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    addresses: Vec<String>,
) -> Result<(), MjError> {
    if addresses.is_empty() {
        return Ok(());
    }
    let entries: Vec<(String, String)> = addresses
        .into_iter()
        .map(|a| (a, "manual".to_string()))
        .collect();
    state
        .tenancy
        .store
        .add_suppressions(tenant_id, &entries)
        .await?;
    Ok(())
}

async fn tenants_contact<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    id: &str,
) -> Result<Contact, MjError> {
    state
        .tenancy
        .store
        .contact(tenant_id, id)
        .await?
        .ok_or_else(MjError::not_found)
}

/// `Offset` + `Limit` contacts by id, walking the id index a page at a time.
async fn walk_contacts<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    page: &Page,
) -> Result<Vec<Contact>, MjError> {
    let mut out = Vec::new();
    let mut after = None;
    let mut skipped = 0;
    loop {
        let batch = state
            .tenancy
            .store
            .contacts(
                tenant_id,
                &ContactQuery {
                    prefix: None,
                    after_id: after,
                    limit: 1000,
                },
            )
            .await?;
        let Some(last) = batch.last() else {
            return Ok(out);
        };
        after = Some(last.id);
        if page.take(&mut skipped, &mut out, batch) {
            return Ok(out);
        }
    }
}

/// `GET /v3/REST/contact?ContactsList=&Limit=&Offset=`
pub(crate) async fn all<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Query(query): Query<HashMap<String, String>>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let page = Page::from(&query)?;
    let (contacts, total) = match query.get("ContactsList") {
        Some(number) => {
            let list_id = object(&state, &key.tenant_id, CompatKind::List, number).await?;
            let members =
                super::lists::walk_members(&state, &key.tenant_id, &list_id, &page).await?;
            let list = state
                .tenancy
                .store
                .list(&key.tenant_id, &list_id)
                .await?
                .ok_or_else(MjError::not_found)?;
            let total = list.subscribed + list.unconfirmed + list.unsubscribed;
            (
                members.into_iter().map(|(c, _)| c).collect(),
                total as usize,
            )
        }
        None => {
            let total = state.tenancy.store.contact_count(&key.tenant_id).await?;
            (
                walk_contacts(&state, &key.tenant_id, &page).await?,
                total as usize,
            )
        }
    };
    let items = contacts_json(&state, &key.tenant_id, &contacts).await?;
    Ok(data(items, total))
}

/// `POST /v3/REST/contact`: `{"Email", "Name"?, "IsExcludedFromCampaigns"?}`; an address
/// the account has already is refused as Mailjet does (MJ18).
pub(crate) async fn add<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let map = body(&bytes)?;
    let declared = if map.get("Name").is_some_and(|v| !v.is_null()) {
        declare_name(&state, &key.tenant_id).await?
    } else {
        state.tenancy.store.properties(&key.tenant_id).await?
    };
    let (input, excluded) = input(&declared, &map).map_err(MjError::bad)?;
    let store = &state.tenancy.store;
    if store
        .contact(&key.tenant_id, &input.address)
        .await?
        .is_some()
    {
        return Err(MjError::exists("Contact", &input.address, "Email"));
    }
    store
        .upsert_contacts(&key.tenant_id, std::slice::from_ref(&input), Existing::Keep)
        .await?;
    if excluded {
        exclude(&state, &key.tenant_id, vec![input.address.clone()]).await?;
    }
    let contact = tenants_contact(&state, &key.tenant_id, &input.address).await?;
    let shown = contacts_json(&state, &key.tenant_id, std::slice::from_ref(&contact)).await?;
    Ok(created(shown.into_iter().next().unwrap_or_default()))
}

/// `GET /v3/REST/contact/{id or address}`
pub(crate) async fn get<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let contact = tenants_contact(&state, &key.tenant_id, &id).await?;
    let shown = contacts_json(&state, &key.tenant_id, &[contact]).await?;
    Ok(data(shown, 1))
}

/// `PUT /v3/REST/contact/{id or address}`: `{"Name"?, "IsExcludedFromCampaigns"?}`.
/// Exclusion adds the address to the suppression list; clearing it does not lift a
/// suppression (that is `DELETE /v1/suppressions/{address}`, where its reason is shown).
pub(crate) async fn update<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let mut map = body(&bytes)?;
    let contact = tenants_contact(&state, &key.tenant_id, &id).await?;
    let declared = if map.get("Name").is_some_and(|v| !v.is_null()) {
        declare_name(&state, &key.tenant_id).await?
    } else {
        state.tenancy.store.properties(&key.tenant_id).await?
    };
    map.insert("Email".into(), Value::String(contact.address.clone()));
    let (input, excluded) = input(&declared, &map).map_err(MjError::bad)?;
    state
        .tenancy
        .store
        .upsert_contacts(&key.tenant_id, &[input], Existing::Update)
        .await?;
    if excluded {
        exclude(&state, &key.tenant_id, vec![contact.address.clone()]).await?;
    }
    let contact = tenants_contact(&state, &key.tenant_id, &contact.address).await?;
    let shown = contacts_json(&state, &key.tenant_id, &[contact]).await?;
    Ok(data(shown, 1))
}

/// `GET /v3/REST/contact/{id}/getcontactslists`
pub(crate) async fn contact_lists<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let contact = tenants_contact(&state, &key.tenant_id, &id).await?;
    let memberships = state
        .tenancy
        .store
        .memberships(&key.tenant_id, contact.id)
        .await?;
    let ids: Vec<String> = memberships.iter().map(|m| m.list_id.clone()).collect();
    let numbers = numbers(&state, &key.tenant_id, CompatKind::List, &ids).await?;
    let items: Vec<Value> = memberships
        .iter()
        .zip(numbers)
        .map(|(m, n)| {
            json!({
                "IsActive": m.status != store::MemberStatus::Unconfirmed,
                "IsUnsub": m.status == store::MemberStatus::Unsubscribed,
                "ListID": n,
                "SubscribedAt": super::time(Some(m.consent.time_ms)),
            })
        })
        .collect();
    let total = items.len();
    Ok(data(items, total))
}

fn data_json(contact: &Contact, declared: &[PropertyDef]) -> Value {
    let shown = audience::values::shown(declared, &contact.properties);
    let items: Vec<Value> = shown
        .into_iter()
        .map(|(name, value)| json!({ "Name": name, "Value": value }))
        .collect();
    json!({ "ContactID": contact.id, "Data": items, "ID": contact.id })
}

/// `GET /v3/REST/contactdata/{id or address}`: the contact's properties.
pub(crate) async fn contact_data<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let contact = tenants_contact(&state, &key.tenant_id, &id).await?;
    let declared = state.tenancy.store.properties(&key.tenant_id).await?;
    Ok(data(vec![data_json(&contact, &declared)], 1))
}

/// `PUT /v3/REST/contactdata/{id or address}`: `{"Data": [{"Name", "Value"}]}`; an empty
/// or null value clears the property.
pub(crate) async fn set_data<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let map = body(&bytes)?;
    let contact = tenants_contact(&state, &key.tenant_id, &id).await?;
    let Some(Value::Array(items)) = map.get("Data") else {
        return Err(MjError::bad("\"Data\" must be an array of {Name, Value}"));
    };
    let mut given = Vec::with_capacity(items.len());
    for item in items {
        let name = item
            .get("Name")
            .and_then(Value::as_str)
            .ok_or_else(|| MjError::bad("each of \"Data\" needs a \"Name\""))?;
        given.push((
            name.to_string(),
            item.get("Value").cloned().unwrap_or(Value::Null),
        ));
    }
    let declared = state.tenancy.store.properties(&key.tenant_id).await?;
    let properties = crate::contacts::loose_properties(&declared, given, "contactmetadata")
        .map_err(MjError::bad)?;
    let input = ContactInput {
        address: contact.address.clone(),
        properties,
        ..ContactInput::default()
    };
    state
        .tenancy
        .store
        .upsert_contacts(&key.tenant_id, &[input], Existing::Update)
        .await?;
    let contact = tenants_contact(&state, &key.tenant_id, &contact.address).await?;
    Ok(data(vec![data_json(&contact, &declared)], 1))
}

/// Mailjet's data type of a property.
fn datatype(kind: &PropertyKind) -> &'static str {
    match kind {
        PropertyKind::Text | PropertyKind::Choice(_) => "str",
        PropertyKind::Number => "float",
        PropertyKind::DateTime => "datetime",
        PropertyKind::Boolean => "bool",
    }
}

fn metadata_json(def: &PropertyDef, number: i64) -> Value {
    json!({ "Datatype": datatype(&def.kind), "ID": number, "Name": def.name, "NameSpace": "static" })
}

/// `GET /v3/REST/contactmetadata`
pub(crate) async fn metadata<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Query(query): Query<HashMap<String, String>>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let page = Page::from(&query)?;
    let declared = state.tenancy.store.properties(&key.tenant_id).await?;
    let names: Vec<String> = declared.iter().map(|p| p.name.clone()).collect();
    let numbers = numbers(&state, &key.tenant_id, CompatKind::Property, &names).await?;
    let items: Vec<Value> = declared
        .iter()
        .zip(numbers)
        .map(|(d, n)| metadata_json(d, n))
        .collect();
    let (items, total) = page.apply(items);
    Ok(data(items, total))
}

/// `POST /v3/REST/contactmetadata`: `{"Name", "Datatype": str | int | float | bool |
/// datetime, "NameSpace"?: static}`.
pub(crate) async fn add_metadata<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let map = body(&bytes)?;
    let name = text(&map, "Name")?.ok_or_else(|| MjError::bad("\"Name\" is required"))?;
    let kind = match text(&map, "Datatype")?.unwrap_or("str") {
        "str" => PropertyKind::Text,
        "int" | "float" => PropertyKind::Number,
        "bool" => PropertyKind::Boolean,
        "datetime" => PropertyKind::DateTime,
        other => {
            return Err(MjError::bad(format!(
                "\"Datatype\" {other:?} is not one of str, int, float, bool, datetime"
            )));
        }
    };
    if let Some(space) = text(&map, "NameSpace")?
        && space != "static"
    {
        return Err(MjError::bad(
            "\"NameSpace\" only static properties are kept by this server",
        ));
    }
    let def = state
        .tenancy
        .store
        .add_property(&key.tenant_id, name, &kind)
        .await
        .map_err(MjError::name_taken("ContactMetaData", name))?;
    let number = number(&state, &key.tenant_id, CompatKind::Property, &def.name).await?;
    Ok(created(metadata_json(&def, number)))
}

async fn tenants_property<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    id: &str,
) -> Result<PropertyDef, MjError> {
    let name = match id.parse::<i64>() {
        Ok(_) => object(state, tenant_id, CompatKind::Property, id).await?,
        Err(_) => id.to_string(),
    };
    state
        .tenancy
        .store
        .properties(tenant_id)
        .await?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(MjError::not_found)
}

/// `GET /v3/REST/contactmetadata/{id or name}`
pub(crate) async fn one_metadata<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let def = tenants_property(&state, &key.tenant_id, &id).await?;
    let number = number(&state, &key.tenant_id, CompatKind::Property, &def.name).await?;
    Ok(data(vec![metadata_json(&def, number)], 1))
}

/// `DELETE /v3/REST/contactmetadata/{id or name}`: the declaration and its values.
pub(crate) async fn remove_metadata<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
) -> Result<Response, MjError> {
    let def = tenants_property(&state, &key.tenant_id, &id).await?;
    state
        .tenancy
        .store
        .remove_property(&key.tenant_id, &def.name)
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}
