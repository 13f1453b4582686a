//! The operators' overview: queue depth and age, per-site health, and the platform's
//! accept and delivery rates (from the metrics the delivery engine keeps).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::auth::OperatorViewer;
use crate::{ConsoleState, Store};

/// `GET /ops`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
) -> Response {
    let summary = state.delivery.as_ref().map(|engine| engine.summary());
    let rates = state.rates.sample();
    let base = who.viewer.context("ops", None);
    state.views.page(
        StatusCode::OK,
        "ops_overview.html",
        minijinja::context! {
            delivery => summary.is_some(),
            queue => summary.as_ref().map(|s| minijinja::context! {
                ready => s.ready_recipients,
                deferred => s.deferred_recipients,
                held => s.held_recipients,
                in_flight => s.in_flight_parts,
                oldest_ms => s.oldest_ms,
            }),
            sites => summary.as_ref().map(|s| super::queues::site_views(&s.sites)).unwrap_or_default(),
            rates => rates,
            spool_messages => state.spool.totals().messages,
            ..base
        },
    )
}
