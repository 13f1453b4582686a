//! Contacts: search by address prefix, pages by id, and a contact's page: its fields and
//! properties, the lists it is on (with consent), whether it is suppressed, and its history
//! (the events of mail to it).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::{Contact, ContactQuery, EventFilter, PropertyDef};

use super::store_failed;
use crate::auth::TenantViewer;
use crate::{ConsoleState, Store};

const PAGE_ROWS: u32 = 50;

#[derive(Deserialize, Default)]
pub struct ContactsQuery {
    q: Option<String>,
    after: Option<i64>,
}

/// A contact for templates: own fields and properties as shown by the API.
pub fn contact_view(contact: &Contact, declared: &[PropertyDef]) -> minijinja::Value {
    let shown = audience::values::shown(declared, &contact.properties);
    let properties: Vec<minijinja::Value> = declared
        .iter()
        .filter_map(|p| {
            let value = shown.get(&p.name)?;
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some(minijinja::context! { name => p.name.clone(), value => text })
        })
        .collect();
    minijinja::context! {
        id => contact.id,
        address => contact.address.clone(),
        timezone => contact.timezone.clone(),
        locale => contact.locale.clone(),
        country => contact.country.clone(),
        properties => properties,
        created_ms => contact.created_ms,
        updated_ms => contact.updated_ms,
    }
}

/// `GET /contacts?q=&after=`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Query(query): Query<ContactsQuery>,
) -> Response {
    let store = state.store();
    let tenant = &who.tenant.id;
    let q = query.q.clone().unwrap_or_default().trim().to_lowercase();
    let wanted = ContactQuery {
        prefix: Some(q.clone()).filter(|q| !q.is_empty()),
        after_id: query.after,
        limit: PAGE_ROWS,
    };
    let found = tokio::try_join!(
        store.contacts(tenant, &wanted),
        store.properties(tenant),
        store.contact_count(tenant),
    );
    let (contacts, declared, total) = match found {
        Ok(found) => found,
        Err(err) => return store_failed(&state, &who.viewer, err),
    };
    let next = (contacts.len() as u32 >= PAGE_ROWS)
        .then(|| contacts.last().map(|c| c.id))
        .flatten();
    let rows: Vec<minijinja::Value> = contacts
        .iter()
        .map(|c| contact_view(c, &declared))
        .collect();
    let base = who.viewer.context("contacts", Some(&who.tenant));
    state.views.page(
        StatusCode::OK,
        "contacts.html",
        minijinja::context! { contacts => rows, q => q, next => next, total => total, ..base },
    )
}

/// `GET /contacts/{id}`: another tenant's id is a 404.
pub async fn detail<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
) -> Response {
    let store = state.store();
    let tenant = &who.tenant.id;
    let contact = match store.contact(tenant, &id).await {
        Ok(Some(contact)) => contact,
        Ok(None) => return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
        Err(err) => return store_failed(&state, &who.viewer, err),
    };
    let history = EventFilter {
        recipient: Some(contact.address.clone()),
        newest_first: true,
        limit: 50,
        ..EventFilter::default()
    };
    let found = tokio::try_join!(
        store.properties(tenant),
        store.memberships(tenant, contact.id),
        store.lists(tenant),
        store.suppression(tenant, &contact.address),
        store.events(tenant, &history),
    );
    let (declared, memberships, lists, suppression, events) = match found {
        Ok(found) => found,
        Err(err) => return store_failed(&state, &who.viewer, err),
    };
    let on_lists: Vec<minijinja::Value> = memberships
        .iter()
        .map(|m| {
            let name = lists
                .iter()
                .find(|l| l.id == m.list_id)
                .map_or(m.list_id.clone(), |l| l.name.clone());
            minijinja::context! {
                name => name, status => m.status.as_str(), source => m.consent.source.clone(),
                consent_ms => m.consent.time_ms, address => m.consent.address.clone(),
                confirmed_ms => m.consent.confirmed_ms,
            }
        })
        .collect();
    let history: Vec<minijinja::Value> = events
        .iter()
        .map(|e| {
            minijinja::context! {
                kind => e.event.kind.as_str(), time_ms => e.event.time_ms,
                message_id => e.event.message_id.clone(),
            }
        })
        .collect();
    let base = who.viewer.context("contacts", Some(&who.tenant));
    state.views.page(
        StatusCode::OK,
        "contact.html",
        minijinja::context! {
            contact => contact_view(&contact, &declared),
            lists => on_lists,
            suppressed => suppression.map(|s| minijinja::context! { reason => s.reason, created_ms => s.created_ms }),
            history => history,
            ..base
        },
    )
}
