//! The on-call rotation: who answers at L1, L2 and L3 now, and the coming shifts.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::auth::OperatorViewer;
use crate::{ConsoleState, Store};

/// `GET /ops/oncall`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
) -> Response {
    let Some(ops) = super::alerts::runner(&state) else {
        return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND);
    };
    let now = ops.rotation_now().map(|(levels, ends)| {
        minijinja::context! {
            levels => levels.iter().map(|(l, p)| minijinja::context! {
                level => l, name => p.name.clone(), email => p.email.clone(),
            }).collect::<Vec<_>>(),
            ends_ms => ends,
        }
    });
    let shifts: Vec<minijinja::Value> = ops
        .shifts(5)
        .into_iter()
        .skip(1)
        .map(|(at, names)| minijinja::context! { starts_ms => at, l1 => names[0].clone(), l2 => names[1].clone(), l3 => names[2].clone() })
        .collect();
    let windows: Vec<minijinja::Value> = [::ops::lifecycle::Priority::P1, ::ops::lifecycle::Priority::P2, ::ops::lifecycle::Priority::P3, ::ops::lifecycle::Priority::P4]
        .iter()
        .map(|p| minijinja::context! { priority => p.as_str(), minutes => p.response_window().as_secs() / 60 })
        .collect();
    let base = who.viewer.context("oncall", None);
    state.views.page(
        StatusCode::OK,
        "ops_oncall.html",
        minijinja::context! { now => now, shifts => shifts, windows => windows, ..base },
    )
}
