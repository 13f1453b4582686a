//! Activity: a tenant's events, newest first, searched by recipient, message id, custom id
//! or tag over a period; and one message's timeline (every event of every recipient).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::{EventFilter, EventKind, StoredEvent};

use super::store_failed;
use crate::auth::TenantViewer;
use crate::{ConsoleState, Store};

const PAGE_ROWS: u32 = 50;

#[derive(Deserialize, Default)]
pub struct ActivityQuery {
    /// What `q` is: `recipient` (default), `message`, `custom_id`, `tag`.
    field: Option<String>,
    q: Option<String>,
    kind: Option<String>,
    /// `1h`, `24h` (default), `7d`, `30d`, `all`.
    period: Option<String>,
    before: Option<i64>,
}

/// An event as the pages show it: the detail's reply and host pulled out.
pub fn event_view(e: &StoredEvent) -> minijinja::Value {
    let detail: serde_json::Value = e
        .event
        .detail
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let text = |key: &str| detail.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let tags: Vec<String> = e
        .event
        .tags
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    minijinja::context! {
        id => e.id,
        time_ms => e.event.time_ms,
        kind => e.event.kind.as_str(),
        message_id => e.event.message_id.clone(),
        recipient => e.event.recipient.clone(),
        custom_id => e.event.custom_id.clone(),
        tags => tags,
        reply => text("reply").or_else(|| text("response")),
        category => text("category"),
        host => text("remote_host").or_else(|| text("mx")),
    }
}

fn period_ms(period: &str) -> Option<i64> {
    match period {
        "1h" => Some(3_600_000),
        "7d" => Some(7 * 86_400_000),
        "30d" => Some(30 * 86_400_000),
        "all" => None,
        _ => Some(86_400_000),
    }
}

/// `GET /activity`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Query(query): Query<ActivityQuery>,
) -> Response {
    let field = query.field.as_deref().unwrap_or("recipient");
    let q = query.q.as_deref().unwrap_or("").trim().to_string();
    let period = query.period.as_deref().unwrap_or("24h");
    let mut filter = EventFilter {
        kinds: query
            .kind
            .as_deref()
            .and_then(EventKind::parse)
            .into_iter()
            .collect(),
        from_ms: period_ms(period).map(|span| crate::auth::sessions::now_ms() - span),
        before_id: query.before,
        newest_first: true,
        limit: PAGE_ROWS,
        ..EventFilter::default()
    };
    if !q.is_empty() {
        match field {
            "message" => filter.message_id = Some(q.clone()),
            "custom_id" => filter.custom_id = Some(q.clone()),
            "tag" => filter.tag = Some(q.clone()),
            _ => filter.recipient = Some(q.to_lowercase()),
        }
    }
    let events = match state.store().events(&who.tenant.id, &filter).await {
        Ok(events) => events,
        Err(err) => return store_failed(&state, &who.viewer, err),
    };
    let older = (events.len() as u32 >= PAGE_ROWS)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    let base = who.viewer.context("activity", Some(&who.tenant));
    state.views.page(
        StatusCode::OK,
        "activity.html",
        minijinja::context! {
            events => events.iter().map(event_view).collect::<Vec<_>>(),
            field => field,
            q => q,
            kind => query.kind.clone().unwrap_or_default(),
            kinds => EventKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            period => period,
            older => older,
            ..base
        },
    )
}

/// `GET /activity/{message id}`: the message's timeline, oldest first.
pub async fn message<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
) -> Response {
    let filter = EventFilter {
        message_id: Some(id.clone()),
        limit: 1000,
        ..EventFilter::default()
    };
    let events = match state.store().events(&who.tenant.id, &filter).await {
        Ok(events) => events,
        Err(err) => return store_failed(&state, &who.viewer, err),
    };
    if events.is_empty() {
        return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND);
    }
    let first = &events[0].event;
    let base = who.viewer.context("activity", Some(&who.tenant));
    state.views.page(
        StatusCode::OK,
        "message.html",
        minijinja::context! {
            message_id => id,
            custom_id => first.custom_id.clone(),
            events => events.iter().map(event_view).collect::<Vec<_>>(),
            ..base
        },
    )
}
