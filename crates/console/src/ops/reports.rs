//! The reports archive: every daily, weekly and monthly report made (scheduled or asked
//! for), to open or download, and a button to make one for the period so far.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use store::OpsStore;

use crate::auth::{OperatorViewer, audit};
use crate::pages::{done, notice, store_failed};
use crate::{ConsoleState, Store};

#[derive(Deserialize, Default)]
pub struct PageQuery {
    notice: Option<String>,
}

/// `GET /ops/reports`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
    Query(query): Query<PageQuery>,
) -> Response {
    let Some(ops) = super::alerts::runner(&state) else {
        return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND);
    };
    let reports = match ops.store().reports().await {
        Ok(r) => r,
        Err(e) => return store_failed(&state, &who.viewer, e),
    };
    let base = who.viewer.context("reports", None);
    state.views.page(
        StatusCode::OK,
        "ops_reports.html",
        minijinja::context! {
            reports => reports.iter().map(|r| minijinja::context! {
                id => r.id.clone(), kind => r.kind.clone(), period => r.period.clone(),
                created_ms => r.created_ms, html => r.content_type.starts_with("text/html"),
            }).collect::<Vec<_>>(),
            notice => notice(query.notice.as_deref()),
            ..base
        },
    )
}

#[derive(Deserialize)]
pub struct MakeForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    kind: String,
}

/// `POST /ops/reports`: the period so far, now.
pub async fn make<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
    Form(form): Form<MakeForm>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&form.csrf) {
        return refused;
    }
    let Some(ops) = super::alerts::runner(&state) else {
        return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND);
    };
    match ops.report(&form.kind, true).await {
        Ok(r) => {
            audit(&state, &who.viewer, None, "report.make", &r.id).await;
            done("/ops/reports", "notice.report_made")
        }
        Err(::ops::runner::OpsFailure::Store(e)) => store_failed(&state, &who.viewer, e),
        Err(_) => state.views.error(who.viewer.lang, StatusCode::BAD_REQUEST),
    }
}

/// `GET /ops/reports/{id}`: the report itself, sandboxed (no scripts, nothing fetched).
pub async fn download<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
    Path(id): Path<String>,
) -> Response {
    let Some(ops) = super::alerts::runner(&state) else {
        return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND);
    };
    match ops.store().report(&id).await {
        Ok(Some(r)) => (
            [
                (header::CONTENT_TYPE, r.content_type.clone()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "inline; filename=\"{}\"",
                        ::ops::report::file_name(&r.kind, &r.period, &r.content_type)
                    ),
                ),
                (
                    header::CONTENT_SECURITY_POLICY,
                    ::ops::report::CONTENT_SECURITY_POLICY.to_string(),
                ),
            ],
            r.body,
        )
            .into_response(),
        Ok(None) => state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
        Err(e) => store_failed(&state, &who.viewer, e),
    }
}
