//! A message looked up by id across tenants: its envelope while it is queued, its delivery
//! attempts, and its tenant's events.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::EventFilter;

use crate::auth::OperatorViewer;
use crate::pages::activity::event_view;
use crate::{ConsoleState, Store};

#[derive(Deserialize, Default)]
pub struct LookupQuery {
    id: Option<String>,
}

/// `GET /ops/messages?id=`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
    Query(query): Query<LookupQuery>,
) -> Response {
    let id_text = query.id.as_deref().unwrap_or("").trim().to_string();
    let base = who.viewer.context("messages", None);
    if id_text.is_empty() {
        return state.views.page(
            StatusCode::OK,
            "ops_messages.html",
            minijinja::context! {  id => "", found => false, searched => false, ..base },
        );
    }
    let id = spool::MessageId::parse(&id_text);
    let envelope = id.and_then(|id| state.spool.envelope(id).ok());
    let attempts: Vec<minijinja::Value> = match (&state.delivery, id) {
        (Some(engine), Some(id)) => engine
            .attempts(id)
            .iter()
            .map(|a| {
                minijinja::context! {
                    time_ms => a.time_ms,
                    outcome => format!("{:?}", a.outcome).to_lowercase(),
                    recipient => a.recipient.clone(),
                    site => a.site.clone(),
                    response => a.response.clone(),
                    remote_host => a.remote_host.clone(),
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    let tenant_id = envelope.as_ref().and_then(|(e, _)| {
        e.auth_user
            .as_deref()
            .and_then(spool::tenant_of)
            .map(str::to_string)
    });
    let mut events = Vec::new();
    let mut tenant_name = None;
    // The tenant is known from the envelope while queued; afterwards its events say it.
    let tenants = match &tenant_id {
        Some(t) => vec![t.clone()],
        None => store::ControlStore::tenants(state.store())
            .await
            .map(|ts| ts.into_iter().map(|t| t.id).collect())
            .unwrap_or_default(),
    };
    for tenant in tenants {
        let filter = EventFilter {
            message_id: Some(id_text.clone()),
            limit: 1000,
            ..EventFilter::default()
        };
        if let Ok(found) = state.store().events(&tenant, &filter).await
            && !found.is_empty()
        {
            events = found;
            tenant_name = store::ControlStore::tenant(state.store(), &tenant)
                .await
                .ok()
                .flatten()
                .map(|t| t.name);
            break;
        }
    }
    let queued = envelope.as_ref().map(|(e, done)| {
        minijinja::context! {
            sender => e.sender.clone(),
            received_ms => e.received_ms,
            client_ip => e.client_ip.clone(),
            recipients => e.recipients.iter().zip(done.iter().chain(std::iter::repeat(&false))).map(|(r, d)| minijinja::context! { address => r.address.clone(), done => *d }).collect::<Vec<_>>(),
        }
    });
    let found = queued.is_some() || !events.is_empty();
    state.views.page(
        if found {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        },
        "ops_messages.html",
        minijinja::context! {
            id => id_text,
            searched => true,
            found => found,
            queued => queued,
            attempts => attempts,
            tenant => tenant_name,
            events => events.iter().map(event_view).collect::<Vec<_>>(),
            ..base
        },
    )
}
