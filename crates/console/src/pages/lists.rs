//! Lists: each with its counts (kept as members change), and a form to make one.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::domains::PageQuery;
use super::{done, notice, permitted, store_failed};
use crate::auth::{Power, TenantViewer, audit};
use crate::{ConsoleState, Store};

async fn listing<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
    status: StatusCode,
    error: Option<String>,
    notice_key: Option<&str>,
) -> Response {
    let lists = match state.store().lists(&who.tenant.id).await {
        Ok(lists) => lists,
        Err(err) => return store_failed(state, &who.viewer, err),
    };
    let rows: Vec<minijinja::Value> = lists
        .iter()
        .map(|l| {
            minijinja::context! {
                id => l.id.clone(), name => l.name.clone(), double_opt_in => l.double_opt_in,
                subscribed => l.subscribed, unconfirmed => l.unconfirmed,
                unsubscribed => l.unsubscribed, created_ms => l.created_ms,
            }
        })
        .collect();
    let base = who.viewer.context("lists", Some(&who.tenant));
    state.views.page(
        status,
        "lists.html",
        minijinja::context! {
            lists => rows, error => error, notice => notice_key,
            can_change => who.viewer.may(Power::Audience), ..base
        },
    )
}

/// `GET /lists`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Query(query): Query<PageQuery>,
) -> Response {
    listing(
        &state,
        &who,
        StatusCode::OK,
        None,
        notice(query.notice.as_deref()),
    )
    .await
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    name: String,
    double_opt_in: Option<String>,
}

/// `POST /lists`
pub async fn add<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Form(form): Form<AddForm>,
) -> Response {
    if let Err(refused) = permitted(&state, &who.viewer, &form.csrf, Power::Audience) {
        return refused;
    }
    let made = state
        .store()
        .add_list(&who.tenant.id, &form.name, form.double_opt_in.is_some())
        .await;
    match made {
        Ok(list) => {
            audit(
                &state,
                &who.viewer,
                Some(&who.tenant.id),
                "list.add",
                &list.id,
            )
            .await;
            done("/lists", "notice.list_added")
        }
        Err(err @ store::StoreError::Invalid { .. }) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            listing(&state, &who, status, Some(err.to_string()), None).await
        }
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}
