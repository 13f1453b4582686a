//! Queues per site (the MX hosts a set of domains share) and per domain: ready, deferred,
//! held, connections, last errors, automatic holds from the shaping rules with reason and
//! expiry; pause, resume, retry and bounce behind a confirmation.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use delivery::engine::SiteSummary;
use delivery::queue::Filter;
use serde::Deserialize;

use crate::auth::{OperatorViewer, audit};
use crate::pages::{done, notice};
use crate::{ConsoleState, Store};

pub fn site_views(sites: &[SiteSummary]) -> Vec<minijinja::Value> {
    sites
        .iter()
        .map(|s| {
            minijinja::context! {
                site => s.site.clone(),
                provider => s.provider.clone(),
                ready => s.ready_recipients,
                connections => s.connections,
                connections_max => s.connections_max,
                hold => s.hold,
                hold_reason => s.hold_reason.clone(),
                hold_until_ms => s.hold_until_ms,
                throttle => s.throttle.clone(),
                delivered => s.delivered,
                deferred => s.deferred,
                bounced => s.bounced,
            }
        })
        .collect()
}

#[derive(Deserialize, Default)]
pub struct QueueQuery {
    notice: Option<String>,
    /// Asks to confirm this action (`pause`, `resume`, `retry`, `bounce`) on `site`.
    confirm: Option<String>,
    site: Option<String>,
    count: Option<u64>,
}

/// `GET /ops/queues`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
    Query(query): Query<QueueQuery>,
) -> Response {
    let summary = state.delivery.as_ref().map(|engine| engine.summary());
    let domains: Vec<minijinja::Value> = summary
        .as_ref()
        .map(|s| {
            s.domains
                .iter()
                .map(|d| {
                    minijinja::context! {
                        domain => d.domain.clone(),
                        site => d.site.clone(),
                        ready => d.ready_recipients,
                        deferred => d.deferred_recipients,
                        held => d.held_recipients,
                        messages => d.messages,
                        oldest_ms => d.oldest_ms,
                        next_attempt_ms => d.next_attempt_ms,
                        paused => d.paused,
                        last_error => d.last_error.clone(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let confirm = match (query.confirm.as_deref(), &query.site) {
        (Some(action @ ("pause" | "resume" | "retry" | "bounce")), Some(site)) => {
            Some(minijinja::context! { action => action, site => site })
        }
        _ => None,
    };
    let base = who.viewer.context("queues", None);
    state.views.page(
        StatusCode::OK,
        "ops_queues.html",
        minijinja::context! {
            delivery => summary.is_some(),
            sites => summary.as_ref().map(|s| site_views(&s.sites)).unwrap_or_default(),
            domains => domains,
            notice => notice(query.notice.as_deref()),
            count => query.count,
            confirm => confirm,
            ..base
        },
    )
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    action: String,
    site: String,
    /// Set by the confirmation form; without it the page asks first.
    confirmed: Option<String>,
}

/// `POST /ops/queues/action`
pub async fn action<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&form.csrf) {
        return refused;
    }
    let Some(engine) = &state.delivery else {
        return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND);
    };
    if form.confirmed.is_none() {
        return axum::response::Redirect::to(&format!(
            "/ops/queues?confirm={}&site={}",
            crate::pages::url_escape(&form.action),
            crate::pages::url_escape(&form.site)
        ))
        .into_response();
    }
    let filter = Filter {
        site: Some(form.site.clone()),
        ..Filter::default()
    };
    let (notice_key, count) = match form.action.as_str() {
        "pause" | "resume" => {
            let pause = form.action == "pause";
            if !engine.set_site_paused(&form.site, pause) {
                return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND);
            }
            (
                if pause {
                    "notice.site_paused"
                } else {
                    "notice.site_resumed"
                },
                None,
            )
        }
        "retry" => ("notice.retried", Some(engine.retry_now(&filter))),
        "bounce" => (
            "notice.bounced",
            Some(engine.bounce(&filter, &format!("by {}", who.viewer.login.email))),
        ),
        _ => return state.views.error(who.viewer.lang, StatusCode::BAD_REQUEST),
    };
    audit(
        &state,
        &who.viewer,
        None,
        &format!("site.{}", form.action),
        &form.site,
    )
    .await;
    let path = match count {
        Some(n) => format!("/ops/queues?count={n}"),
        None => "/ops/queues".to_string(),
    };
    done(&path, notice_key)
}
