//! Alerts for the operators: the open ones with acknowledge, resolve (a late one with its
//! miss reason) and silence; the last 30 days; an alert's timeline with notes of what was
//! done; the silences in force and the maintenance windows. The console calls the same
//! operations runner as the admin API and the CLI, signed with the operator's login.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::{AlertRecord, OpsStore};

use crate::auth::{OperatorViewer, audit};
use crate::pages::{done, notice, store_failed};
use crate::{ConsoleState, Store};

/// The runner, or a 404 page when this node runs without one.
pub(crate) fn runner<S>(state: &ConsoleState<S>) -> Option<&Arc<::ops::runner::Ops>> {
    state.operations.get()
}

fn alert_view(a: &AlertRecord, now_ms: i64) -> minijinja::Value {
    let life = ::ops::runner::life_of(a);
    let state = if a.resolved.is_some() {
        "resolved"
    } else if a.acknowledged.is_some() {
        "acknowledged"
    } else {
        "triggered"
    };
    minijinja::context! {
        id => a.id.clone(),
        rule => a.rule.clone(),
        priority => a.priority.clone(),
        level => a.level,
        summary => a.summary.clone(),
        members => a.members.clone(),
        labels => a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        state => state,
        triggered_ms => a.triggered_ms,
        acknowledged_by => a.acknowledged.as_ref().map(|x| x.0.clone()),
        acknowledged_ms => a.acknowledged.as_ref().map(|x| x.1),
        resolved_by => a.resolved.as_ref().map(|x| x.0.clone()),
        resolved_ms => a.resolved.as_ref().map(|x| x.1),
        cleared_ms => a.cleared_ms,
        silenced_by => a.silenced_by.clone(),
        window => life.priority.response_window().as_secs() / 60,
        late => life.in_time_at(now_ms) == Some(false),
        miss => a.miss.as_ref().and_then(|(m, _)| ::ops::lifecycle::MissReason::parse(m)).map(|m| m.as_str()),
        miss_text => a.miss.as_ref().map(|m| m.1.clone()),
    }
}

fn reasons() -> Vec<&'static str> {
    ::ops::lifecycle::MissReason::ALL
        .iter()
        .map(|m| m.as_str())
        .collect()
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    notice: Option<String>,
}

/// `GET /ops/alerts`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
    Query(query): Query<PageQuery>,
) -> Response {
    let Some(ops) = runner(&state) else {
        return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND);
    };
    let now = ops.clock.now_ms();
    let (open, recent, silences) = match (
        ops.alerts(true, 30).await,
        ops.alerts(false, 30).await,
        ops.store().silences(now).await,
    ) {
        (Ok(o), Ok(r), Ok(s)) => (o, r, s),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return store_failed(&state, &who.viewer, e);
        }
    };
    let windows: Vec<minijinja::Value> = ops
        .config()
        .maintenance
        .iter()
        .map(|m| {
            minijinja::context! {
                name => m.name.clone(),
                days => m.days.iter().map(|d| ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][usize::from(*d).min(6)]).collect::<Vec<_>>().join(", "),
                start => format!("{:02}:{:02}", m.start_minute / 60, m.start_minute % 60),
                minutes => m.length.as_secs() / 60,
                matchers => m.matchers.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "),
                active => m.silence_at(now).is_some(),
            }
        })
        .collect();
    let base = who.viewer.context("alerts", None);
    state.views.page(
        StatusCode::OK,
        "ops_alerts.html",
        minijinja::context! {
            open => open.iter().map(|a| alert_view(a, now)).collect::<Vec<_>>(),
            recent => recent.iter().filter(|a| a.resolved.is_some()).map(|a| alert_view(a, now)).collect::<Vec<_>>(),
            silences => silences.iter().map(|s| minijinja::context! {
                id => s.id.clone(),
                matchers => s.matchers.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "),
                starts_ms => s.starts_ms,
                ends_ms => s.ends_ms,
                by => s.created_by.clone(),
                comment => s.comment.clone(),
            }).collect::<Vec<_>>(),
            windows => windows,
            reasons => reasons(),
            notice => notice(query.notice.as_deref()),
            ..base
        },
    )
}

async fn detail<S: Store>(
    state: &ConsoleState<S>,
    who: &OperatorViewer,
    id: &str,
    status: StatusCode,
    error: Option<String>,
    notice_key: Option<&str>,
    typed: Option<(String, String)>,
) -> Response {
    let Some(ops) = runner(state) else {
        return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND);
    };
    let (alert, actions) = match (
        ops.store().alert(id).await,
        ops.store().alert_actions(id).await,
    ) {
        (Ok(Some(a)), Ok(actions)) => (a, actions),
        (Ok(None), _) => return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
        (Err(e), _) | (_, Err(e)) => return store_failed(state, &who.viewer, e),
    };
    let now = ops.clock.now_ms();
    let base = who.viewer.context("alerts", None);
    let (reason, text) = typed.unwrap_or_default();
    state.views.page(
        status,
        "ops_alert.html",
        minijinja::context! {
            alert => alert_view(&alert, now),
            timeline => actions.iter().map(|a| minijinja::context! {
                at_ms => a.at_ms, action => a.action.clone(), who => a.who.clone(), text => a.text.clone(),
            }).collect::<Vec<_>>(),
            reasons => reasons(),
            error => error,
            typed_reason => reason,
            typed_text => text,
            notice => notice_key,
            ..base
        },
    )
}

/// `GET /ops/alerts/{id}`
pub async fn show<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    detail(
        &state,
        &who,
        &id,
        StatusCode::OK,
        None,
        notice(query.notice.as_deref()),
        None,
    )
    .await
}

#[derive(Deserialize)]
pub struct ActForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    reason: Option<String>,
    text: Option<String>,
    duration: Option<String>,
    /// Where to go back to: `list` or the alert's page.
    back: Option<String>,
}

fn back_to(form: &ActForm, id: &str) -> String {
    match form.back.as_deref() {
        Some("list") => "/ops/alerts".to_string(),
        _ => format!("/ops/alerts/{}", crate::pages::url_escape(id)),
    }
}

async fn refused<S: Store>(
    state: &ConsoleState<S>,
    who: &OperatorViewer,
    id: &str,
    form: &ActForm,
    e: ::ops::runner::OpsFailure,
) -> Response {
    match e {
        ::ops::runner::OpsFailure::NotFound(_) => {
            state.views.error(who.viewer.lang, StatusCode::NOT_FOUND)
        }
        ::ops::runner::OpsFailure::Store(e) => store_failed(state, &who.viewer, e),
        ::ops::runner::OpsFailure::Refused(message) => {
            let typed = (
                form.reason.clone().unwrap_or_default(),
                form.text.clone().unwrap_or_default(),
            );
            detail(
                state,
                who,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(message),
                None,
                Some(typed),
            )
            .await
        }
    }
}

/// `POST /ops/alerts/{id}/{action}`: `ack`, `resolve`, `note`, `silence`.
pub async fn act<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActForm>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&form.csrf) {
        return refused;
    }
    let Some(ops) = runner(&state) else {
        return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND);
    };
    let by = who.viewer.login.email.clone();
    let result = match action.as_str() {
        "ack" => ops
            .acknowledge(&id, &by)
            .await
            .map(|_| "notice.alert_acknowledged"),
        "resolve" => ops
            .resolve(
                &id,
                &by,
                form.reason.as_deref(),
                form.text.as_deref().unwrap_or(""),
            )
            .await
            .map(|_| "notice.alert_resolved"),
        "note" => ops
            .note(&id, &by, form.text.as_deref().unwrap_or(""))
            .await
            .map(|_| "notice.alert_noted"),
        "silence" => {
            let alert = match ops.store().alert(&id).await {
                Ok(Some(a)) => a,
                Ok(None) => return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
                Err(e) => return store_failed(&state, &who.viewer, e),
            };
            let hours: u64 = match form.duration.as_deref() {
                Some("4h") => 4,
                Some("1d") => 24,
                Some("7d") => 168,
                _ => 1,
            };
            let matchers: BTreeMap<String, String> = alert.labels.clone();
            ops.silence(
                matchers,
                None,
                Duration::from_secs(hours * 3600),
                &by,
                form.text.as_deref().unwrap_or(""),
            )
            .await
            .map(|_| "notice.alert_silenced")
        }
        _ => return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
    };
    match result {
        Ok(notice_key) => {
            audit(&state, &who.viewer, None, &format!("alert.{action}"), &id).await;
            done(&back_to(&form, &id), notice_key)
        }
        Err(e) => refused(&state, &who, &id, &form, e).await,
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

/// `POST /ops/silences/{id}/end`
pub async fn end_silence<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&form.csrf) {
        return refused;
    }
    let Some(ops) = runner(&state) else {
        return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND);
    };
    match ops.expire_silence(&id).await {
        Ok(()) => {
            audit(&state, &who.viewer, None, "silence.end", &id).await;
            done("/ops/alerts", "notice.silence_ended")
        }
        Err(::ops::runner::OpsFailure::Store(e)) => store_failed(&state, &who.viewer, e),
        Err(_) => state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
    }
}
