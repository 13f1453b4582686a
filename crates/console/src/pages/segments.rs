//! The segment editor: a query, its count and a sample, errors pointing at the column;
//! saved segments. The count follows typing (a script asks `/segments/count`); without a
//! script, the form shows it when sent.

use std::sync::Arc;

use axum::Form;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::contacts::contact_view;
use super::{done, notice, permitted, store_failed};
use crate::auth::{Power, TenantViewer, audit};
use crate::{ConsoleState, Store};

#[derive(Deserialize, Default)]
pub struct EditorQuery {
    query: Option<String>,
    notice: Option<String>,
}

/// What a query selects: (count, a sample) or the error, column first.
async fn evaluate<S: Store>(
    state: &ConsoleState<S>,
    tenant: &str,
    text: &str,
) -> Result<Result<(i64, Vec<store::Contact>, u64), String>, store::StoreError> {
    let store = state.store();
    let (properties, lists) = tokio::try_join!(store.properties(tenant), store.lists(tenant))?;
    let condition = match audience::parse_segment(text, &properties, &lists) {
        Ok(condition) => condition,
        Err(err) => return Ok(Err(err.to_string())),
    };
    let started = std::time::Instant::now();
    let (count, sample) = tokio::try_join!(
        store.segment_count(tenant, &condition),
        store.segment_contacts(tenant, &condition, None, 10),
    )?;
    Ok(Ok((count, sample, started.elapsed().as_millis() as u64)))
}

async fn editor<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
    text: &str,
    status: StatusCode,
    name_error: Option<String>,
    notice_key: Option<&str>,
) -> Response {
    let tenant = &who.tenant.id;
    let (result, saved, declared) = match tokio::try_join!(
        evaluate(state, tenant, text),
        state.store().segments(tenant),
        state.store().properties(tenant),
    ) {
        Ok(found) => found,
        Err(err) => return store_failed(state, &who.viewer, err),
    };
    let (count, sample, elapsed, error) = match result {
        Ok((count, sample, ms)) => (
            Some(count),
            sample
                .iter()
                .map(|c| contact_view(c, &declared))
                .collect::<Vec<_>>(),
            Some(ms),
            None,
        ),
        Err(error) => (None, Vec::new(), None, Some(error)),
    };
    let saved: Vec<minijinja::Value> = saved
        .iter()
        .map(|s| minijinja::context! { id => s.id.clone(), name => s.name.clone(), query => s.query.clone() })
        .collect();
    let base = who.viewer.context("segments", Some(&who.tenant));
    state.views.page(
        status,
        "segments.html",
        minijinja::context! {
            query => text, count => count, sample => sample, elapsed_ms => elapsed,
            query_error => error, name_error => name_error, saved => saved, notice => notice_key,
            properties => declared.iter().map(|p| minijinja::context! { name => p.name.clone(), kind => p.kind.as_str() }).collect::<Vec<_>>(),
            can_change => who.viewer.may(Power::Audience),
            ..base
        },
    )
}

/// `GET /segments?query=`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Query(query): Query<EditorQuery>,
) -> Response {
    let text = query.query.clone().unwrap_or_default();
    let notice_key = notice(query.notice.as_deref());
    editor(&state, &who, &text, StatusCode::OK, None, notice_key).await
}

/// `GET /segments/count?query=`: `{"count"}` or `{"error"}`, for the editor's script.
pub async fn count<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Query(query): Query<EditorQuery>,
) -> Response {
    let text = query.query.unwrap_or_default();
    match evaluate(&state, &who.tenant.id, &text).await {
        Ok(Ok((count, _, ms))) => Json(json!({ "count": count, "elapsed_ms": ms })).into_response(),
        Ok(Err(error)) => Json(json!({ "error": error })).into_response(),
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}

#[derive(Deserialize)]
pub struct SaveForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    name: String,
    query: String,
}

/// `POST /segments`: saves the query under a name (checked first).
pub async fn save<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Form(form): Form<SaveForm>,
) -> Response {
    if let Err(refused) = permitted(&state, &who.viewer, &form.csrf, Power::Audience) {
        return refused;
    }
    let tenant = &who.tenant.id;
    match evaluate(&state, tenant, &form.query).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return editor(&state, &who, &form.query, status, None, None).await;
        }
        Err(err) => return store_failed(&state, &who.viewer, err),
    }
    match state
        .store()
        .save_segment(tenant, &form.name, &form.query)
        .await
    {
        Ok(saved) => {
            audit(&state, &who.viewer, Some(tenant), "segment.save", &saved.id).await;
            let query = super::url_escape(&saved.query);
            done(&format!("/segments?query={query}"), "notice.segment_saved")
        }
        Err(err @ store::StoreError::Invalid { .. }) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            editor(
                &state,
                &who,
                &form.query,
                status,
                Some(err.to_string()),
                None,
            )
            .await
        }
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}
