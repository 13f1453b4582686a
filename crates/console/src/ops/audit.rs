//! The platform's audit log for operators: every tenant's console and management actions
//! and the operators' own, newest first, optionally one tenant's.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::auth::OperatorViewer;
use crate::pages::audit::entry_view;
use crate::pages::store_failed;
use crate::{ConsoleState, Store};

const PAGE_ROWS: u32 = 100;

#[derive(Deserialize, Default)]
pub struct OpsAuditQuery {
    before: Option<i64>,
    /// A tenant's name or id; empty: everyone.
    tenant: Option<String>,
}

/// `GET /ops/audit`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
    Query(query): Query<OpsAuditQuery>,
) -> Response {
    let wanted = query
        .tenant
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let tenants = match state.store().tenants().await {
        Ok(tenants) => tenants,
        Err(err) => return store_failed(&state, &who.viewer, err),
    };
    let tenant = wanted.and_then(|w| tenants.iter().find(|t| t.id == w || t.name == w));
    if wanted.is_some() && tenant.is_none() {
        return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND);
    }
    let entries = match state
        .store()
        .audit_log(tenant.map(|t| t.id.as_str()), query.before, PAGE_ROWS)
        .await
    {
        Ok(entries) => entries,
        Err(err) => return store_failed(&state, &who.viewer, err),
    };
    let older = (entries.len() as u32 >= PAGE_ROWS)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    let name_of = |id: &str| {
        tenants
            .iter()
            .find(|t| t.id == id)
            .map_or_else(|| id.to_string(), |t| t.name.clone())
    };
    let rows: Vec<minijinja::Value> = entries
        .iter()
        .map(|e| {
            minijinja::context! {
                tenant => e.tenant_id.as_deref().map(name_of),
                ..entry_view(e)
            }
        })
        .collect();
    let base = who.viewer.context("ops_audit", None);
    state.views.page(
        StatusCode::OK,
        "ops_audit.html",
        minijinja::context! {
            entries => rows,
            older => older,
            tenant => tenant.map(|t| t.name.clone()),
            tenant_names => tenants.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
            ..base
        },
    )
}
