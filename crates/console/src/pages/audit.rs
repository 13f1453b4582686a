//! The audit log: who did what, when, from where. Owners see their tenant's; operators
//! see everything (`/audit` for them is the platform's log).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::AuditEntry;

use super::{require, store_failed};
use crate::auth::{Power, TenantViewer};
use crate::{ConsoleState, Store};

const PAGE_ROWS: u32 = 100;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    before: Option<i64>,
}

pub fn entry_view(e: &AuditEntry) -> minijinja::Value {
    minijinja::context! {
        id => e.id,
        time_ms => e.time_ms,
        tenant_id => e.tenant_id.clone(),
        actor => e.actor.clone(),
        action => e.action.clone(),
        target => e.target.clone(),
        address => e.address.clone(),
    }
}

/// `GET /audit`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Query(query): Query<AuditQuery>,
) -> Response {
    if let Err(refused) = require(&state, &who.viewer, Power::Administer) {
        return refused;
    }
    let entries = match state
        .store()
        .audit_log(Some(&who.tenant.id), query.before, PAGE_ROWS)
        .await
    {
        Ok(entries) => entries,
        Err(err) => return store_failed(&state, &who.viewer, err),
    };
    let older = (entries.len() as u32 >= PAGE_ROWS)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    let base = who.viewer.context("audit", Some(&who.tenant));
    state.views.page(
        StatusCode::OK,
        "audit.html",
        minijinja::context! {  entries => entries.iter().map(entry_view).collect::<Vec<_>>(), older => older, ..base },
    )
}
