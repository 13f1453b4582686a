//! API keys: create with scopes (the token is shown once, on the answer to the POST, and
//! never again), revoke. SMTP credentials are API keys too: the page says how to use one.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::{ApiKey, Scopes};

use super::domains::{CsrfOnly, PageQuery};
use super::{done, notice, require, store_failed};
use crate::auth::{Power, TenantViewer, audit};
use crate::{ConsoleState, Store};

fn key_value(key: &ApiKey) -> minijinja::Value {
    minijinja::context! {
        id => key.id.clone(),
        name => key.name.clone(),
        scopes => key.scopes.to_text(),
        created_ms => key.created_ms,
        revoked_ms => key.revoked_ms,
    }
}

async fn listing<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
    status: StatusCode,
    token: Option<String>,
    error: Option<String>,
    notice_key: Option<&str>,
) -> Response {
    let keys = match state.store().keys(&who.tenant.id).await {
        Ok(keys) => keys,
        Err(err) => return store_failed(state, &who.viewer, err),
    };
    let list: Vec<minijinja::Value> = keys.iter().rev().map(key_value).collect();
    let base = who.viewer.context("keys", Some(&who.tenant));
    state.views.page(
        status,
        "keys.html",
        minijinja::context! {
            keys => list,
            token => token,
            error => error,
            notice => notice_key,
            can_change => who.viewer.may(Power::Integrate),
            ..base
        },
    )
}

/// `GET /keys`
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
    send: Option<String>,
    read: Option<String>,
    manage: Option<String>,
}

/// `POST /keys`: the answer shows the token; it is not stored anywhere readable.
pub async fn add<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Form(form): Form<AddForm>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&form.csrf) {
        return refused;
    }
    if let Err(refused) = require(&state, &who.viewer, Power::Integrate) {
        return refused;
    }
    let scopes = Scopes {
        send: form.send.is_some(),
        read: form.read.is_some(),
        manage: form.manage.is_some(),
    };
    if !(scopes.send || scopes.read || scopes.manage) {
        let error = crate::i18n::text(who.viewer.lang, "keys.no_scope").map(str::to_string);
        return listing(
            &state,
            &who,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            error,
            None,
        )
        .await;
    }
    let name = if form.name.trim().is_empty() {
        "default"
    } else {
        form.name.trim()
    };
    match state.store().add_key(&who.tenant.id, name, scopes).await {
        Ok(made) => {
            audit(
                &state,
                &who.viewer,
                Some(&who.tenant.id),
                "key.create",
                &made.key.id,
            )
            .await;
            listing(
                &state,
                &who,
                StatusCode::CREATED,
                Some(made.token),
                None,
                None,
            )
            .await
        }
        Err(err @ store::StoreError::Invalid { .. }) => {
            listing(
                &state,
                &who,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(err.to_string()),
                None,
            )
            .await
        }
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}

/// `POST /keys/{id}/revoke`
pub async fn revoke<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&form.csrf) {
        return refused;
    }
    if let Err(refused) = require(&state, &who.viewer, Power::Integrate) {
        return refused;
    }
    match state.store().revoke_key(&who.tenant.id, &id).await {
        Ok(true) => {
            audit(&state, &who.viewer, Some(&who.tenant.id), "key.revoke", &id).await;
            done("/keys", "notice.key_revoked")
        }
        Ok(false) => state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}
