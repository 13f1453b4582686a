//! `/admin/v1/alerts`, `/admin/v1/silences`, `/admin/v1/oncall`, `/admin/v1/reports` and
//! `/admin/v1/ops/...`: the operators' alert lifecycle (acknowledge, resolve with a miss
//! reason, notes), silences, the rotation, the reports archive, and for drills an
//! evaluation on demand and the adjustable clock.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ops::runner::OpsFailure;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use store::{AlertRecord, OpsStore};

use crate::{AdminState, error};

fn failure(e: OpsFailure) -> Response {
    match e {
        OpsFailure::Refused(m) => error(StatusCode::UNPROCESSABLE_ENTITY, &m),
        OpsFailure::NotFound(m) => {
            error(StatusCode::NOT_FOUND, &format!("no alert or silence {m}"))
        }
        OpsFailure::Store(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

fn store_failure(e: store::StoreError) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
}

fn time(ms: i64) -> String {
    ops::notify::payload::rfc3339(ms)
}

pub fn alert_json(a: &AlertRecord) -> Value {
    let life = ops::runner::life_of(a);
    json!({
        "id": a.id,
        "rule": a.rule,
        "priority": a.priority,
        "level": a.level,
        "labels": a.labels,
        "summary": a.summary,
        "members": a.members,
        "state": if a.resolved.is_some() { "resolved" } else if a.acknowledged.is_some() { "acknowledged" } else { "triggered" },
        "triggered_at": time(a.triggered_ms),
        "acknowledged_by": a.acknowledged.as_ref().map(|x| x.0.clone()),
        "acknowledged_at": a.acknowledged.as_ref().map(|x| time(x.1)),
        "resolved_by": a.resolved.as_ref().map(|x| x.0.clone()),
        "resolved_at": a.resolved.as_ref().map(|x| time(x.1)),
        "cleared_at": a.cleared_ms.map(time),
        "silenced_by": a.silenced_by,
        "refired": a.refired,
        "response_window_minutes": life.priority.response_window().as_secs() / 60,
        "in_time": life.in_time(),
        "miss_reason": a.miss.as_ref().map(|m| m.0.clone()),
        "miss_text": a.miss.as_ref().map(|m| m.1.clone()),
    })
}

#[derive(Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    days: Option<i64>,
}

/// `GET /admin/v1/alerts?state=open|all&days=30`.
pub async fn list(State(s): State<AdminState>, Query(q): Query<ListQuery>) -> Response {
    let open = q.state.as_deref() != Some("all");
    match s.ops.alerts(open, q.days.unwrap_or(30).clamp(1, 400)).await {
        Ok(alerts) => Json(json!({"alerts": alerts.iter().map(alert_json).collect::<Vec<_>>()}))
            .into_response(),
        Err(e) => store_failure(e),
    }
}

/// `GET /admin/v1/alerts/{id}`: the alert and its timeline.
pub async fn show(State(s): State<AdminState>, Path(id): Path<String>) -> Response {
    let store = s.ops.store();
    match (store.alert(&id).await, store.alert_actions(&id).await) {
        (Ok(Some(a)), Ok(actions)) => {
            let mut v = alert_json(&a);
            v["timeline"] = actions
                .iter()
                .map(|x| json!({"at": time(x.at_ms), "action": x.action, "who": x.who, "text": x.text}))
                .collect();
            Json(v).into_response()
        }
        (Ok(None), _) => error(StatusCode::NOT_FOUND, &format!("no alert {id}")),
        (Err(e), _) | (_, Err(e)) => store_failure(e),
    }
}

#[derive(Deserialize)]
pub struct Act {
    by: Option<String>,
    reason: Option<String>,
    text: Option<String>,
}

async fn answer(s: &AdminState, id: &str) -> Response {
    match s.ops.store().alert(id).await {
        Ok(Some(a)) => Json(alert_json(&a)).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("no alert {id}")),
        Err(e) => store_failure(e),
    }
}

/// `POST /admin/v1/alerts/{id}/ack` `{"by": "ann"}`.
pub async fn ack(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    Json(b): Json<Act>,
) -> Response {
    match s.ops.acknowledge(&id, b.by.as_deref().unwrap_or("")).await {
        Ok(_) => answer(&s, &id).await,
        Err(e) => failure(e),
    }
}

/// `POST /admin/v1/alerts/{id}/resolve` `{"by", "reason", "text"}`: a late alert needs a
/// reason (`out_of_hours`, `several_incidents`, `notification_failed`, `wrong_priority`,
/// `other`).
pub async fn resolve(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    Json(b): Json<Act>,
) -> Response {
    let result = s
        .ops
        .resolve(
            &id,
            b.by.as_deref().unwrap_or(""),
            b.reason.as_deref(),
            b.text.as_deref().unwrap_or(""),
        )
        .await;
    match result {
        Ok(_) => answer(&s, &id).await,
        Err(e) => failure(e),
    }
}

/// `POST /admin/v1/alerts/{id}/notes` `{"by", "text"}`: what was done, on the timeline.
pub async fn note(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    Json(b): Json<Act>,
) -> Response {
    match s
        .ops
        .note(
            &id,
            b.by.as_deref().unwrap_or(""),
            b.text.as_deref().unwrap_or(""),
        )
        .await
    {
        Ok(()) => (StatusCode::CREATED, Json(json!({"ok": true}))).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Deserialize)]
pub struct NewSilence {
    matchers: BTreeMap<String, String>,
    /// RFC 3339; now when absent (a future start makes a one-off maintenance window).
    starts_at: Option<String>,
    duration: String,
    by: Option<String>,
    comment: Option<String>,
}

fn silence_json(x: &store::SilenceRecord) -> Value {
    json!({"id": x.id, "matchers": x.matchers, "starts_at": time(x.starts_ms), "ends_at": time(x.ends_ms),
           "created_by": x.created_by, "comment": x.comment})
}

/// `POST /admin/v1/silences`.
pub async fn add_silence(State(s): State<AdminState>, Json(b): Json<NewSilence>) -> Response {
    let Some(duration) = ops::duration::parse(&b.duration) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("duration: {:?} is not a duration (2h, 30m)", b.duration),
        );
    };
    let starts = match b.starts_at.as_deref() {
        None => None,
        Some(t) => match t.parse::<jiff::Timestamp>() {
            Ok(t) => Some(t.as_millisecond()),
            Err(_) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("starts_at: {t:?} is not an RFC 3339 time"),
                );
            }
        },
    };
    let result = s
        .ops
        .silence(
            b.matchers,
            starts,
            duration,
            b.by.as_deref().unwrap_or(""),
            b.comment.as_deref().unwrap_or(""),
        )
        .await;
    match result {
        Ok(x) => (StatusCode::CREATED, Json(silence_json(&x))).into_response(),
        Err(e) => failure(e),
    }
}

/// `GET /admin/v1/silences`: those not ended, and the maintenance windows.
pub async fn silences(State(s): State<AdminState>) -> Response {
    let now = s.ops.clock.now_ms();
    match s.ops.store().silences(now).await {
        Ok(list) => {
            let windows: Vec<Value> = s
                .ops
                .config()
                .maintenance
                .iter()
                .map(|m| {
                    json!({"name": m.name, "days": m.days, "start_minute": m.start_minute,
                                "minutes": m.length.as_secs() / 60, "matchers": m.matchers,
                                "active": m.silence_at(now).is_some()})
                })
                .collect();
            Json(json!({"silences": list.iter().map(silence_json).collect::<Vec<_>>(), "maintenance": windows}))
                .into_response()
        }
        Err(e) => store_failure(e),
    }
}

/// `DELETE /admin/v1/silences/{id}`: ends it now.
pub async fn expire_silence(State(s): State<AdminState>, Path(id): Path<String>) -> Response {
    match s.ops.expire_silence(&id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failure(e),
    }
}

/// `GET /admin/v1/oncall`.
pub async fn oncall(State(s): State<AdminState>) -> Response {
    match s.ops.rotation_now() {
        None => Json(json!({"levels": [], "shift_ends_at": null})).into_response(),
        Some((levels, ends)) => Json(json!({
            "levels": levels.iter().map(|(l, p)| json!({"level": l, "name": p.name, "email": p.email})).collect::<Vec<_>>(),
            "shift_ends_at": time(ends),
        }))
        .into_response(),
    }
}

/// `GET /admin/v1/reports`: the archive.
pub async fn reports(State(s): State<AdminState>) -> Response {
    match s.ops.store().reports().await {
        Ok(list) => Json(json!({"reports": list.iter().map(|r| json!({
            "id": r.id, "kind": r.kind, "period": r.period, "created_at": time(r.created_ms),
            "content_type": r.content_type})).collect::<Vec<_>>()}))
        .into_response(),
        Err(e) => store_failure(e),
    }
}

#[derive(Deserialize)]
pub struct MakeReport {
    kind: String,
    /// The period so far rather than the last one due.
    #[serde(default)]
    so_far: bool,
}

/// `POST /admin/v1/reports` `{"kind": "weekly", "so_far": false}`.
pub async fn make_report(State(s): State<AdminState>, Json(b): Json<MakeReport>) -> Response {
    match s.ops.report(&b.kind, b.so_far).await {
        Ok(r) => (
            StatusCode::CREATED,
            Json(json!({"id": r.id, "kind": r.kind, "period": r.period})),
        )
            .into_response(),
        Err(e) => failure(e),
    }
}

/// `GET /admin/v1/reports/{id}`: the report itself (HTML or text), to download.
pub async fn report(State(s): State<AdminState>, Path(id): Path<String>) -> Response {
    match s.ops.store().report(&id).await {
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
                    ::ops::report::CONTENT_SECURITY_POLICY.into(),
                ),
            ],
            r.body,
        )
            .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("no report {id}")),
        Err(e) => store_failure(e),
    }
}

/// `POST /admin/v1/ops/evaluate`: one evaluation now; what changed.
pub async fn evaluate(State(s): State<AdminState>) -> Response {
    match s.ops.evaluate().await {
        Ok(changes) => Json(json!({"changes": changes.iter().map(|c| json!({
            "alert": c.alert.id, "change": c.kind.action(), "rule": c.alert.rule.name(),
            "priority": c.alert.life.priority.as_str(), "level": c.alert.life.level})).collect::<Vec<_>>()}))
        .into_response(),
        Err(e) => store_failure(e),
    }
}

#[derive(Deserialize)]
pub struct Advance {
    advance: String,
}

/// `POST /admin/v1/ops/clock` `{"advance": "31m"}`: only when the server was started with
/// `TSUBAME_OPS_CLOCK=adjustable` (drills, tests).
pub async fn advance_clock(State(s): State<AdminState>, Json(b): Json<Advance>) -> Response {
    let Some(d) = ops::duration::parse(&b.advance) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("advance: {:?} is not a duration", b.advance),
        );
    };
    match s.ops.clock.advance(d.as_millis() as i64) {
        Some(now) => Json(json!({"now": time(now)})).into_response(),
        None => error(
            StatusCode::FORBIDDEN,
            "the operations clock is the system's (start with TSUBAME_OPS_CLOCK=adjustable for drills)",
        ),
    }
}

#[derive(Deserialize)]
pub struct ForecastBody {
    /// Recipients per domain: `{"gmail.com": 550000, "yahoo.co.jp": 400000}`.
    recipients: BTreeMap<String, u64>,
    /// Bytes per message.
    message_bytes: Option<u64>,
    /// RFC 3339; now when absent.
    start: Option<String>,
    rate_per_sec: Option<f64>,
    node_rate: Option<f64>,
}

/// `POST /admin/v1/ops/forecast`: a planned campaign's duration, spool space and whether
/// the delivery latency objective holds.
pub async fn forecast(State(s): State<AdminState>, Json(b): Json<ForecastBody>) -> Response {
    let start_ms = match b.start.as_deref() {
        None => None,
        Some(t) => match t.parse::<jiff::Timestamp>() {
            Ok(t) => Some(t.as_millisecond()),
            Err(_) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("start: {t:?} is not an RFC 3339 time"),
                );
            }
        },
    };
    let request = ops::runner::ForecastRequest {
        recipients: b.recipients,
        message_bytes: b.message_bytes.unwrap_or(50_000),
        start_ms,
        rate_per_sec: b.rate_per_sec,
        node_rate: b.node_rate,
    };
    match s.ops.forecast(&request).await {
        Ok(answer) => Json(answer).into_response(),
        Err(e) => failure(e),
    }
}
