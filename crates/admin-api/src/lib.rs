//! The operators' HTTP API: `/health`, `/metrics`, `/admin/v1/queue/...` (view and
//! delivery controls) and `/admin/v1/slo` (the objectives' budgets and burn rates).
//!
//! This crate is the only one that knows JSON for the admin surface. Queue endpoints require
//! `Authorization: Bearer <token>`, where the token is the one the server wrote into its data
//! directory (mode 0600), so only someone who can read that directory can use them.

mod alerts;
mod auth;
mod cluster;
mod delivery;
mod queue;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use spool::Spool;

/// Renders the Prometheus exposition text; supplied by the binary, which owns the recorder.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// What the handlers need.
#[derive(Clone)]
pub struct AdminState {
    /// The spool to report on.
    pub spool: Spool,
    /// The bearer token, compared in constant time.
    pub token: Arc<str>,
    /// Produces the /metrics body.
    pub metrics: MetricsRender,
    /// The delivery engine; `None` when delivery is disabled.
    pub delivery: Option<::delivery::Engine>,
    /// The service level objectives, evaluated from the server's own counters.
    pub slo: Arc<ops::tracker::Tracker>,
    /// Alerts, silences, on-call and reports.
    pub ops: Arc<ops::runner::Ops>,
    /// Cluster mode: this node's membership; `None` for a single node.
    pub cluster: Option<Arc<::cluster::node::ClusterNode>>,
    /// Woken by a drain request.
    pub drain: Arc<tokio::sync::Notify>,
}

/// The complete router.
pub fn router(state: AdminState) -> Router {
    let admin = Router::new()
        .route("/admin/v1/queue/summary", get(queue::summary))
        .route("/admin/v1/queue/messages", get(queue::list))
        .route("/admin/v1/queue/messages/{id}", get(queue::show))
        .route("/admin/v1/queue/messages/{id}/content", get(queue::content))
        .route(
            "/admin/v1/queue/sites/{site}/pause",
            post(delivery::pause_site),
        )
        .route(
            "/admin/v1/queue/sites/{site}/resume",
            post(delivery::resume_site),
        )
        .route(
            "/admin/v1/queue/domains/{domain}/pause",
            post(delivery::pause_domain),
        )
        .route(
            "/admin/v1/queue/domains/{domain}/resume",
            post(delivery::resume_domain),
        )
        .route("/admin/v1/queue/retry", post(delivery::retry))
        .route("/admin/v1/queue/bounce", post(delivery::bounce))
        .route("/admin/v1/queue/delete", post(delivery::delete))
        .route("/admin/v1/slo", get(slo_status))
        .route("/admin/v1/cluster/nodes", get(cluster::nodes))
        .route("/admin/v1/cluster/drain", post(cluster::drain))
        .route("/admin/v1/alerts", get(alerts::list))
        .route("/admin/v1/alerts/{id}", get(alerts::show))
        .route("/admin/v1/alerts/{id}/ack", post(alerts::ack))
        .route("/admin/v1/alerts/{id}/resolve", post(alerts::resolve))
        .route("/admin/v1/alerts/{id}/notes", post(alerts::note))
        .route(
            "/admin/v1/silences",
            get(alerts::silences).post(alerts::add_silence),
        )
        .route(
            "/admin/v1/silences/{id}",
            axum::routing::delete(alerts::expire_silence),
        )
        .route("/admin/v1/oncall", get(alerts::oncall))
        .route(
            "/admin/v1/reports",
            get(alerts::reports).post(alerts::make_report),
        )
        .route("/admin/v1/reports/{id}", get(alerts::report))
        .route("/admin/v1/ops/evaluate", post(alerts::evaluate))
        .route("/admin/v1/ops/clock", post(alerts::advance_clock))
        .route("/admin/v1/ops/forecast", post(alerts::forecast))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .merge(admin)
        .with_state(state)
}

async fn health(State(state): State<AdminState>) -> Response {
    if state.spool.is_poisoned() {
        let body =
            serde_json::json!({"status": "failing", "spool": "poisoned: restart to recover"});
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    // A load balancer stops sending work to a node that is draining or out of touch with
    // the cluster (its acknowledgements would fail, its mail may be taken over).
    if let Some(node) = &state.cluster
        && let Some(problem) = if node.fenced() {
            Some("out of touch with the cluster")
        } else if node.draining() {
            Some("draining")
        } else {
            None
        }
    {
        let body = serde_json::json!({"status": "failing", "spool": "ok", "cluster": problem});
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    axum::Json(serde_json::json!({"status": "ok", "spool": "ok"})).into_response()
}

async fn metrics_text(State(state): State<AdminState>) -> Response {
    let totals = state.spool.totals();
    metrics::gauge!("tsubame_queue_messages").set(totals.messages as f64);
    metrics::gauge!("tsubame_queue_recipients_pending").set(totals.recipients_pending as f64);
    metrics::gauge!("tsubame_queue_bytes").set(totals.content_bytes as f64);
    metrics::gauge!("tsubame_spool_segments").set(totals.segments as f64);
    metrics::gauge!("tsubame_spool_poisoned").set(if state.spool.is_poisoned() {
        1.0
    } else {
        0.0
    });
    if let Some(engine) = &state.delivery {
        let g = engine.gauges();
        for (name, value) in [
            ("ready", g.ready),
            ("deferred", g.deferred),
            ("held", g.held),
        ] {
            metrics::gauge!("tsubame_delivery_queue_recipients", "state" => name).set(value as f64);
        }
        metrics::gauge!("tsubame_delivery_in_flight").set(g.in_flight_parts as f64);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let age = g.oldest_ms.map_or(0, |o| now_ms.saturating_sub(o)) as f64 / 1000.0;
        metrics::gauge!("tsubame_delivery_oldest_age_seconds").set(age);
        for (site, ready, _connections, held) in g.sites {
            metrics::gauge!("tsubame_delivery_site_ready_recipients", "site" => site.clone())
                .set(ready as f64);
            metrics::gauge!("tsubame_delivery_site_held", "site" => site).set(if held {
                1.0
            } else {
                0.0
            });
        }
    }
    let body = (state.metrics)();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
        .into_response()
}

/// A JSON error body `{"error": "..."}` with a status code.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// `GET /admin/v1/slo`: every objective's budget left, burn rates and alert.
async fn slo_status(State(state): State<AdminState>) -> Response {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    axum::Json(serde_json::json!({ "slos": state.slo.status(now_ms) })).into_response()
}
