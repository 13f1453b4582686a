//! Mailjet's `contactslist`, `listrecipient` and `managemanycontacts`. Counts come from the
//! list's kept counters. `managemanycontacts` is done before the answer (Mailjet queues it);
//! its result is kept for the client's status poll. Actions: `addforce` (subscribe, again
//! if they had left), `addnoforce` (subscribe; who unsubscribed stays unsubscribed),
//! `unsub`, `remove`. A double opt-in list takes new members as unconfirmed.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use store::{CompatKind, Consent, Contact, ContactList, Existing, MemberStatus, Membership};

use super::contacts::{declare_name, exclude, input};
use super::{
    MjError, MjKey, MjStore, Page, body, created, data, integer, number, numbers, object, text,
};
use crate::ApiState;
use crate::auth::{Manage, Read};

/// Contacts per `managemanycontacts` request.
const CONTACTS_PER_REQUEST: usize = 10_000;
const MANY_JOB: &str = "managemanycontacts";

pub fn list_json(list: &ContactList, number: i64) -> Value {
    json!({
        "Address": list.id,
        "CreatedAt": super::time(Some(list.created_ms)),
        "ID": number,
        "IsDeleted": false,
        "Name": list.name,
        "SubscriberCount": list.subscribed,
    })
}

/// The tenant's list a number names.
pub async fn tenants_list<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    number: &str,
) -> Result<ContactList, MjError> {
    let id = object(state, tenant_id, CompatKind::List, number).await?;
    state
        .tenancy
        .store
        .list(tenant_id, &id)
        .await?
        .ok_or_else(MjError::not_found)
}

/// `Offset` + `Limit` members of a list, walking it a page at a time.
pub async fn walk_members<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    list_id: &str,
    page: &Page,
) -> Result<Vec<(Contact, Membership)>, MjError> {
    let mut out = Vec::new();
    let mut after = None;
    let mut skipped = 0;
    loop {
        let batch = state
            .tenancy
            .store
            .members(tenant_id, list_id, None, after, 1000)
            .await?;
        let Some((last, _)) = batch.last() else {
            return Ok(out);
        };
        after = Some(last.id);
        if page.take(&mut skipped, &mut out, batch) {
            return Ok(out);
        }
    }
}

/// `GET /v3/REST/contactslist?Limit=&Offset=&Name=`
pub(crate) async fn all<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Query(query): Query<HashMap<String, String>>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let page = Page::from(&query)?;
    let mut lists = state.tenancy.store.lists(&key.tenant_id).await?;
    if let Some(name) = query.get("Name") {
        lists.retain(|l| &l.name == name);
    }
    let ids: Vec<String> = lists.iter().map(|l| l.id.clone()).collect();
    let numbers = numbers(&state, &key.tenant_id, CompatKind::List, &ids).await?;
    let items: Vec<Value> = lists
        .iter()
        .zip(numbers)
        .map(|(l, n)| list_json(l, n))
        .collect();
    let (items, total) = page.apply(items);
    Ok(data(items, total))
}

/// `POST /v3/REST/contactslist`: `{"Name"}`.
pub(crate) async fn add<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let map = body(&bytes)?;
    let name = text(&map, "Name")?.ok_or_else(|| MjError::bad("\"Name\" is required"))?;
    let list = state
        .tenancy
        .store
        .add_list(&key.tenant_id, name, false)
        .await
        .map_err(MjError::name_taken("Contacts List", name))?;
    let number = number(&state, &key.tenant_id, CompatKind::List, &list.id).await?;
    Ok(created(list_json(&list, number)))
}

/// `GET /v3/REST/contactslist/{id}`
pub(crate) async fn get<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let list = tenants_list(&state, &key.tenant_id, &id).await?;
    let number = number(&state, &key.tenant_id, CompatKind::List, &list.id).await?;
    Ok(data(vec![list_json(&list, number)], 1))
}

/// `PUT /v3/REST/contactslist/{id}`: `{"Name"}`.
pub(crate) async fn rename<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let map = body(&bytes)?;
    let list = tenants_list(&state, &key.tenant_id, &id).await?;
    if let Some(name) = text(&map, "Name")? {
        state
            .tenancy
            .store
            .rename_list(&key.tenant_id, &list.id, name)
            .await
            .map_err(MjError::name_taken("Contacts List", name))?;
    }
    let list = tenants_list(&state, &key.tenant_id, &id).await?;
    let number = number(&state, &key.tenant_id, CompatKind::List, &list.id).await?;
    Ok(data(vec![list_json(&list, number)], 1))
}

/// `DELETE /v3/REST/contactslist/{id}`: the list and its memberships (not the contacts).
pub(crate) async fn remove<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
) -> Result<Response, MjError> {
    let list = tenants_list(&state, &key.tenant_id, &id).await?;
    state
        .tenancy
        .store
        .remove_list(&key.tenant_id, &list.id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// What `managemanycontacts` does to each list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    AddForce,
    AddNoForce,
    Unsub,
    Remove,
}

impl Action {
    fn parse(text: &str) -> Option<Action> {
        match text.to_ascii_lowercase().as_str() {
            "addforce" => Some(Action::AddForce),
            "addnoforce" => Some(Action::AddNoForce),
            "unsub" => Some(Action::Unsub),
            "remove" => Some(Action::Remove),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Action::AddForce => "addforce",
            Action::AddNoForce => "addnoforce",
            Action::Unsub => "unsub",
            Action::Remove => "remove",
        }
    }
}

fn action(value: Option<&Value>) -> Result<Action, MjError> {
    value
        .and_then(Value::as_str)
        .and_then(Action::parse)
        .ok_or_else(|| MjError::bad("\"Action\" must be addforce, addnoforce, unsub or remove"))
}

/// Writes the contacts, then applies each list's action; contacts that do not check are
/// left out and named in the job's `Error`. Returns the job's result.
async fn apply_many<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    lists: &[(ContactList, i64, Action)],
    contacts: &[Value],
) -> Result<Value, MjError> {
    if contacts.len() > CONTACTS_PER_REQUEST {
        return Err(MjError::bad(format!(
            "\"Contacts\" at most {CONTACTS_PER_REQUEST} per request (upload a CSV file for more)"
        )));
    }
    let started = crate::contacts::now_ms();
    let declared = if contacts
        .iter()
        .any(|c| c.get("Name").is_some_and(|v| !v.is_null()))
    {
        declare_name(state, tenant_id).await?
    } else {
        state.tenancy.store.properties(tenant_id).await?
    };
    let mut inputs = Vec::with_capacity(contacts.len());
    let mut excluded = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in contacts.iter().enumerate() {
        let Some(map) = item.as_object() else {
            errors.push(format!("Contacts[{i}]: must be an object"));
            continue;
        };
        match input(&declared, map) {
            Ok((input, exclude)) => {
                if exclude {
                    excluded.push(input.address.clone());
                }
                inputs.push(input);
            }
            Err(reason) => errors.push(format!("Contacts[{i}]: {reason}")),
        }
    }
    let store = &state.tenancy.store;
    let written = store
        .upsert_contacts(tenant_id, &inputs, Existing::Update)
        .await?;
    exclude(state, tenant_id, excluded).await?;
    let consent = Consent::given("api", started, None);
    for (list, _, action) in lists {
        let joining = if list.double_opt_in {
            MemberStatus::Unconfirmed
        } else {
            MemberStatus::Subscribed
        };
        let with = |status| {
            written
                .ids
                .iter()
                .map(|id| (*id, status))
                .collect::<Vec<_>>()
        };
        match action {
            Action::AddForce => {
                store
                    .set_members(tenant_id, &list.id, &with(joining), &consent)
                    .await?;
            }
            Action::AddNoForce => {
                store
                    .add_members(tenant_id, &list.id, &with(joining), &consent)
                    .await?;
            }
            Action::Unsub => {
                store
                    .set_members(
                        tenant_id,
                        &list.id,
                        &with(MemberStatus::Unsubscribed),
                        &consent,
                    )
                    .await?;
            }
            Action::Remove => {
                store
                    .remove_members(tenant_id, &list.id, &written.ids)
                    .await?;
            }
        }
    }
    let lists: Vec<Value> = lists
        .iter()
        .map(|(_, n, a)| json!({ "ListID": n, "Action": a.as_str() }))
        .collect();
    Ok(json!({
        "ContactsLists": lists,
        "Count": inputs.len(),
        "Error": errors.join("\n"),
        "ErrorFile": "",
        "JobStart": super::time(Some(started)),
        "JobEnd": super::time(Some(crate::contacts::now_ms())),
        "Status": if errors.is_empty() { "Completed" } else { "Error" },
    }))
}

async fn keep_job<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    result: &Value,
) -> Result<Response, MjError> {
    let job = state
        .tenancy
        .store
        .add_job(tenant_id, MANY_JOB, &result.to_string())
        .await?;
    Ok(created(json!({ "JobID": job })))
}

async fn show_job<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    job: &str,
) -> Result<Response, MjError> {
    let number = job.parse::<i64>().map_err(|_| MjError::not_found())?;
    let result = state
        .tenancy
        .store
        .job(tenant_id, MANY_JOB, number)
        .await?
        .ok_or_else(MjError::not_found)?;
    let value: Value = serde_json::from_str(&result).unwrap_or_default();
    Ok(data(vec![value], 1))
}

fn contacts_of(map: &Map<String, Value>) -> Result<&Vec<Value>, MjError> {
    match map.get("Contacts") {
        Some(Value::Array(items)) => Ok(items),
        _ => Err(MjError::bad("\"Contacts\" must be an array of contacts")),
    }
}

/// `POST /v3/REST/contactslist/{id}/managemanycontacts`: `{"Action", "Contacts": [{"Email",
/// "Name"?, "IsExcludedFromCampaigns"?, "Properties"?}]}` → `{"JobID"}`.
pub(crate) async fn manage_many<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let map = body(&bytes)?;
    let list = tenants_list(&state, &key.tenant_id, &id).await?;
    let action = action(map.get("Action"))?;
    let number = number(&state, &key.tenant_id, CompatKind::List, &list.id).await?;
    let result = apply_many(
        &state,
        &key.tenant_id,
        &[(list, number, action)],
        contacts_of(&map)?,
    )
    .await?;
    keep_job(&state, &key.tenant_id, &result).await
}

/// `GET /v3/REST/contactslist/{id}/managemanycontacts/{job}`
pub(crate) async fn many_job<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path((id, job)): Path<(String, String)>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    tenants_list(&state, &key.tenant_id, &id).await?;
    show_job(&state, &key.tenant_id, &job).await
}

/// `POST /v3/REST/contact/managemanycontacts`: `{"ContactsLists": [{"ListID", "Action"}],
/// "Contacts": [...]}`; without lists, the contacts are only written.
pub(crate) async fn manage_many_lists<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let map = body(&bytes)?;
    let mut lists = Vec::new();
    match map.get("ContactsLists") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let number = integer(item.get("ListID"))
                    .ok_or_else(|| MjError::bad("\"ContactsLists\" each needs a \"ListID\""))?;
                let list = tenants_list(&state, &key.tenant_id, &number.to_string()).await?;
                lists.push((list, number, action(item.get("Action"))?));
            }
        }
        Some(_) => return Err(MjError::bad("\"ContactsLists\" must be an array")),
    }
    let result = apply_many(&state, &key.tenant_id, &lists, contacts_of(&map)?).await?;
    keep_job(&state, &key.tenant_id, &result).await
}

/// `GET /v3/REST/contact/managemanycontacts/{job}`
pub(crate) async fn many_lists_job<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(job): Path<String>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    show_job(&state, &key.tenant_id, &job).await
}

/// A membership as Mailjet's `listrecipient`.
fn recipient_json(m: &Membership, list: &ContactList, list_number: i64, number: i64) -> Value {
    let unsubscribed = m.status == MemberStatus::Unsubscribed;
    json!({
        "ContactID": m.contact_id,
        "ID": number,
        "IsActive": m.status != MemberStatus::Unconfirmed,
        "IsUnsubscribed": unsubscribed,
        "ListID": list_number,
        "ListName": list.name,
        "SubscribedAt": super::time(Some(m.consent.time_ms)),
        "UnsubscribedAt": if unsubscribed { super::time(Some(m.updated_ms)) } else { String::new() },
    })
}

fn membership_key(list_id: &str, contact_id: i64) -> String {
    format!("{list_id}/{contact_id}")
}

async fn recipients_json<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    rows: &[(Membership, ContactList)],
) -> Result<Vec<Value>, MjError> {
    let keys: Vec<String> = rows
        .iter()
        .map(|(m, _)| membership_key(&m.list_id, m.contact_id))
        .collect();
    let list_ids: Vec<String> = rows.iter().map(|(_, l)| l.id.clone()).collect();
    let numbers_ = numbers(state, tenant_id, CompatKind::Membership, &keys).await?;
    let lists = numbers(state, tenant_id, CompatKind::List, &list_ids).await?;
    Ok(rows
        .iter()
        .zip(numbers_.into_iter().zip(lists))
        .map(|((m, l), (n, ln))| recipient_json(m, l, ln, n))
        .collect())
}

/// `GET /v3/REST/listrecipient?ContactsList=&Contact=&Limit=&Offset=`
pub(crate) async fn recipients<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Query(query): Query<HashMap<String, String>>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let page = Page::from(&query)?;
    let store = &state.tenancy.store;
    let (rows, total) = if let Some(number) = query.get("ContactsList") {
        let list = tenants_list(&state, &key.tenant_id, number).await?;
        let members = walk_members(&state, &key.tenant_id, &list.id, &page).await?;
        let total = (list.subscribed + list.unconfirmed + list.unsubscribed) as usize;
        let rows: Vec<(Membership, ContactList)> = members
            .into_iter()
            .map(|(_, m)| (m, list.clone()))
            .collect();
        (rows, total)
    } else if let Some(contact) = query.get("Contact") {
        let contact = store
            .contact(&key.tenant_id, contact)
            .await?
            .ok_or_else(MjError::not_found)?;
        let lists = store.lists(&key.tenant_id).await?;
        let rows: Vec<(Membership, ContactList)> = store
            .memberships(&key.tenant_id, contact.id)
            .await?
            .into_iter()
            .filter_map(|m| {
                let list = lists.iter().find(|l| l.id == m.list_id)?.clone();
                Some((m, list))
            })
            .collect();
        page.apply(rows)
    } else {
        return Err(MjError::bad(
            "filter by \"ContactsList\" or \"Contact\" to list recipients",
        ));
    };
    let items = recipients_json(&state, &key.tenant_id, &rows).await?;
    Ok(data(items, total))
}

/// The membership a `listrecipient` number names.
async fn tenants_recipient<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    number: &str,
) -> Result<(Membership, ContactList), MjError> {
    let key = object(state, tenant_id, CompatKind::Membership, number).await?;
    let (list_id, contact_id) = key
        .rsplit_once('/')
        .and_then(|(l, c)| Some((l.to_string(), c.parse::<i64>().ok()?)))
        .ok_or_else(MjError::not_found)?;
    let store = &state.tenancy.store;
    let list = store
        .list(tenant_id, &list_id)
        .await?
        .ok_or_else(MjError::not_found)?;
    let membership = store
        .memberships(tenant_id, contact_id)
        .await?
        .into_iter()
        .find(|m| m.list_id == list_id)
        .ok_or_else(MjError::not_found)?;
    Ok((membership, list))
}

/// `POST /v3/REST/listrecipient`: `{"ContactID" | "ContactAlt" (address; the contact is
/// made if new), "ListID" | "ListAlt" (the list's Address or name), "IsUnsubscribed"?}`.
pub(crate) async fn add_recipient<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let map = body(&bytes)?;
    let store = &state.tenancy.store;
    let list = match (integer(map.get("ListID")), text(&map, "ListAlt")?) {
        (Some(n), _) => tenants_list(&state, &key.tenant_id, &n.to_string()).await?,
        (None, Some(alt)) => store
            .list(&key.tenant_id, alt)
            .await?
            .ok_or_else(MjError::not_found)?,
        (None, None) => return Err(MjError::bad("\"ListID\" or \"ListAlt\" is required")),
    };
    let contact = match (integer(map.get("ContactID")), text(&map, "ContactAlt")?) {
        (Some(id), _) => store
            .contact(&key.tenant_id, &id.to_string())
            .await?
            .ok_or_else(MjError::not_found)?,
        (None, Some(alt)) => {
            let address = audience::fields::address(alt)
                .map_err(|e| MjError::bad(format!("\"ContactAlt\" {}", e.reason)))?;
            let input = store::ContactInput {
                address: address.clone(),
                ..Default::default()
            };
            store
                .upsert_contacts(&key.tenant_id, &[input], Existing::Keep)
                .await?;
            store
                .contact(&key.tenant_id, &address)
                .await?
                .ok_or_else(MjError::not_found)?
        }
        (None, None) => return Err(MjError::bad("\"ContactID\" or \"ContactAlt\" is required")),
    };
    if store
        .memberships(&key.tenant_id, contact.id)
        .await?
        .iter()
        .any(|m| m.list_id == list.id)
    {
        return Err(MjError::exists("ListRecipient", contact.id, "ContactID"));
    }
    let status = match map.get("IsUnsubscribed").and_then(Value::as_bool) {
        Some(true) => MemberStatus::Unsubscribed,
        _ if list.double_opt_in => MemberStatus::Unconfirmed,
        _ => MemberStatus::Subscribed,
    };
    let consent = Consent::given("api", crate::contacts::now_ms(), None);
    store
        .set_members(&key.tenant_id, &list.id, &[(contact.id, status)], &consent)
        .await?;
    let number = number(
        &state,
        &key.tenant_id,
        CompatKind::Membership,
        &membership_key(&list.id, contact.id),
    )
    .await?;
    let (membership, list) = tenants_recipient(&state, &key.tenant_id, &number.to_string()).await?;
    let shown = recipients_json(&state, &key.tenant_id, &[(membership, list)]).await?;
    Ok(created(shown.into_iter().next().unwrap_or_default()))
}

/// `GET /v3/REST/listrecipient/{id}`
pub(crate) async fn recipient<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let row = tenants_recipient(&state, &key.tenant_id, &id).await?;
    Ok(data(
        recipients_json(&state, &key.tenant_id, &[row]).await?,
        1,
    ))
}

/// `PUT /v3/REST/listrecipient/{id}`: `{"IsUnsubscribed"}`.
pub(crate) async fn update_recipient<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let map = body(&bytes)?;
    let (membership, list) = tenants_recipient(&state, &key.tenant_id, &id).await?;
    let status = match map.get("IsUnsubscribed") {
        Some(Value::Bool(true)) => MemberStatus::Unsubscribed,
        Some(Value::Bool(false)) => MemberStatus::Subscribed,
        _ => return Err(MjError::bad("\"IsUnsubscribed\" must be a boolean")),
    };
    let consent = Consent::given("api", crate::contacts::now_ms(), None);
    state
        .tenancy
        .store
        .set_members(
            &key.tenant_id,
            &list.id,
            &[(membership.contact_id, status)],
            &consent,
        )
        .await?;
    let row = tenants_recipient(&state, &key.tenant_id, &id).await?;
    Ok(data(
        recipients_json(&state, &key.tenant_id, &[row]).await?,
        1,
    ))
}

/// `DELETE /v3/REST/listrecipient/{id}`
pub(crate) async fn remove_recipient<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
) -> Result<Response, MjError> {
    let (membership, list) = tenants_recipient(&state, &key.tenant_id, &id).await?;
    state
        .tenancy
        .store
        .remove_members(&key.tenant_id, &list.id, &[membership.contact_id])
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
