//! `/admin/v1/cluster`: the nodes as this node sees them, and the drain request.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AdminState;

/// Nodes, their health and share, and this node's recent takeovers.
pub async fn nodes(State(state): State<AdminState>) -> Response {
    let Some(node) = &state.cluster else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "not in cluster mode (no [cluster] section)"})),
        )
            .into_response();
    };
    let active = node.active_nodes();
    let members: Vec<serde_json::Value> = node
        .view()
        .into_iter()
        .map(|m| {
            let mut record = serde_json::to_value(&m.record).unwrap_or_default();
            if let Some(fields) = record.as_object_mut() {
                fields.insert("alive".into(), json!(m.alive));
                fields.insert("silent_ms".into(), json!(m.silent_for.as_millis() as u64));
                // Cluster-wide limits are split evenly between the nodes taking traffic.
                let share = if m.active() { 1.0 / active as f64 } else { 0.0 };
                fields.insert("share".into(), json!(share));
            }
            record
        })
        .collect();
    let takeovers: Vec<serde_json::Value> = node
        .takeovers()
        .into_iter()
        .map(|t| {
            json!({"node": t.node, "imported": t.imported, "dropped_held": t.dropped_held,
                   "took_ms": t.took.as_millis() as u64})
        })
        .collect();
    axum::Json(json!({
        "node": node.name(),
        "fenced": node.fenced(),
        "active_nodes": active,
        "nodes": members,
        "takeovers": takeovers,
    }))
    .into_response()
}

/// Starts a drain: the node stops accepting, finishes what it can within its shutdown
/// grace, hands the rest to the other nodes and exits.
pub async fn drain(State(state): State<AdminState>) -> Response {
    if let Some(node) = &state.cluster {
        node.set_draining();
    }
    state.drain.notify_one();
    (StatusCode::ACCEPTED, axum::Json(json!({"draining": true}))).into_response()
}
