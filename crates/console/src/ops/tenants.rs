//! Tenants: create, change limits, suspend (with a reason the tenant's clients are told)
//! and reactivate.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::StoreError;

use crate::auth::{OperatorViewer, audit};
use crate::pages::{done, notice, store_failed};
use crate::{ConsoleState, Store};

#[derive(Deserialize, Default)]
pub struct TenantsQuery {
    notice: Option<String>,
}

async fn listing<S: Store>(
    state: &ConsoleState<S>,
    who: &OperatorViewer,
    status: StatusCode,
    error: Option<String>,
    notice_key: Option<&str>,
) -> Response {
    let tenants = match state.store().tenants().await {
        Ok(tenants) => tenants,
        Err(err) => return store_failed(state, &who.viewer, err),
    };
    let day = crate::pages::today();
    let list: Vec<minijinja::Value> = tenants
        .iter()
        .map(|t| {
            minijinja::context! {
                id => t.id.clone(),
                name => t.name.clone(),
                created_ms => t.created_ms,
                rate_per_sec => t.rate_per_sec,
                daily_quota => t.daily_quota,
                suspended => t.suspended.clone(),
                used_today => state.tenancy.quotas.used_today(&t.id, day),
            }
        })
        .collect();
    let base = who.viewer.context("tenants", None);
    state.views.page(
        status,
        "ops_tenants.html",
        minijinja::context! {  tenants => list, error => error, notice => notice_key, ..base },
    )
}

/// `GET /ops/tenants`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
    Query(query): Query<TenantsQuery>,
) -> Response {
    listing(
        &state,
        &who,
        StatusCode::OK,
        None,
        notice(query.notice.as_deref()),
    )
    .await
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    name: String,
}

/// `POST /ops/tenants`
pub async fn add<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
    Form(form): Form<AddForm>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&form.csrf) {
        return refused;
    }
    match state.store().add_tenant(form.name.trim()).await {
        Ok(tenant) => {
            audit(
                &state,
                &who.viewer,
                Some(&tenant.id),
                "tenant.add",
                &tenant.name,
            )
            .await;
            done("/ops/tenants", "notice.tenant_added")
        }
        Err(err @ (StoreError::Invalid { .. } | StoreError::DuplicateTenant(_))) => {
            listing(
                &state,
                &who,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(err.to_string()),
                None,
            )
            .await
        }
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    /// `limits`, `suspend` or `reactivate`.
    action: String,
    rate_per_sec: Option<String>,
    daily_quota: Option<String>,
    reason: Option<String>,
}

fn limit(text: Option<&str>, field: &'static str) -> Result<Option<i64>, String> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => t
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("{field}: {t:?} is not a whole number")),
    }
}

/// `POST /ops/tenants/{id}`
pub async fn change<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
    Path(id): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&form.csrf) {
        return refused;
    }
    let result = match form.action.as_str() {
        "limits" => {
            let rate = limit(form.rate_per_sec.as_deref(), "rate_per_sec");
            let quota = limit(form.daily_quota.as_deref(), "daily_quota");
            match (rate, quota) {
                (Ok(rate), Ok(quota)) => state
                    .store()
                    .set_tenant_limits(&id, rate, quota)
                    .await
                    .map_err(|e| e.to_string()),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        "suspend" => {
            let reason = form
                .reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .unwrap_or("suspended by the platform");
            state
                .store()
                .set_tenant_suspended(&id, Some(reason))
                .await
                .map_err(|e| e.to_string())
        }
        "reactivate" => state
            .store()
            .set_tenant_suspended(&id, None)
            .await
            .map_err(|e| e.to_string()),
        _ => Err("unknown action".into()),
    };
    match result {
        Ok(()) => {
            audit(
                &state,
                &who.viewer,
                Some(&id),
                &format!("tenant.{}", form.action),
                &id,
            )
            .await;
            done("/ops/tenants", "notice.tenant_changed")
        }
        Err(error) => {
            listing(
                &state,
                &who,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(error),
                None,
            )
            .await
        }
    }
}
