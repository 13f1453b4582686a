//! The tenant's people: everyone sees who has a login and with which role; owners add
//! logins (address, name, role, a first password to hand over), change roles and remove
//! logins. An owner cannot demote or remove themself, so a tenant always keeps an owner.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::{Login, Role, StoreError};

use super::domains::PageQuery;
use super::{done, notice, permitted, store_failed};
use crate::auth::{Power, TenantViewer, audit, passwords};
use crate::{ConsoleState, Store};

fn person(login: &Login) -> minijinja::Value {
    minijinja::context! {
        id => login.id.clone(),
        email => login.email.clone(),
        name => login.display_name.clone(),
        role => login.role.as_str(),
        totp => login.totp_secret.is_some(),
        created_ms => login.created_ms,
    }
}

#[derive(Default)]
struct Typed {
    email: String,
    name: String,
    role: String,
}

async fn listing<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
    status: StatusCode,
    error: Option<String>,
    notice_key: Option<&str>,
    typed: Typed,
) -> Response {
    let logins = match state.store().logins(Some(&who.tenant.id)).await {
        Ok(logins) => logins,
        Err(err) => return store_failed(state, &who.viewer, err),
    };
    let people: Vec<minijinja::Value> = logins.iter().map(person).collect();
    let roles: Vec<&str> = Role::TENANT_ROLES.iter().map(|r| r.as_str()).collect();
    let base = who.viewer.context("team", Some(&who.tenant));
    state.views.page(
        status,
        "team.html",
        minijinja::context! {
            people => people,
            roles => roles,
            me_id => who.viewer.login.id.clone(),
            error => error,
            notice => notice_key,
            typed => minijinja::context! { email => typed.email, name => typed.name, role => typed.role },
            can_change => who.viewer.may(Power::Administer),
            ..base
        },
    )
}

/// `GET /team`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Query(query): Query<PageQuery>,
) -> Response {
    let notice_key = notice(query.notice.as_deref());
    listing(
        &state,
        &who,
        StatusCode::OK,
        None,
        notice_key,
        Typed::default(),
    )
    .await
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    email: String,
    #[serde(default)]
    name: String,
    role: String,
    password: String,
}

/// `POST /team`: a new login of this tenant.
pub async fn add<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Form(form): Form<AddForm>,
) -> Response {
    if let Err(refused) = permitted(&state, &who.viewer, &form.csrf, Power::Administer) {
        return refused;
    }
    let typed = Typed {
        email: form.email.clone(),
        name: form.name.clone(),
        role: form.role.clone(),
    };
    let refuse = |error: String, typed: Typed| {
        let state = &state;
        let who = &who;
        async move {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            listing(state, who, status, Some(error), None, typed).await
        }
    };
    let Some(role) = Role::parse(&form.role).filter(|r| Role::TENANT_ROLES.contains(r)) else {
        return refuse("role: owner, developer, marketer or viewer".into(), typed).await;
    };
    let password = form.password.clone();
    let hashed = tokio::task::spawn_blocking(move || passwords::hash(&password)).await;
    let hash = match hashed {
        Ok(Ok(hash)) => hash,
        Ok(Err(policy)) => return refuse(policy.to_string(), typed).await,
        Err(err) => return refuse(err.to_string(), typed).await,
    };
    let added = state
        .store()
        .add_login(&form.email, Some(&who.tenant.id), role, &hash)
        .await;
    let login = match added {
        Ok(login) => login,
        Err(err @ StoreError::Invalid { .. }) => return refuse(err.to_string(), typed).await,
        Err(err) => return store_failed(&state, &who.viewer, err),
    };
    if let Err(err) = state.store().set_display_name(&login.id, &form.name).await {
        // All or nothing: a login with a refused name is not left behind.
        let _ = state.store().remove_login(&login.id).await;
        return match err {
            StoreError::Invalid { .. } => refuse(err.to_string(), typed).await,
            err => store_failed(&state, &who.viewer, err),
        };
    }
    audit(
        &state,
        &who.viewer,
        Some(&who.tenant.id),
        "login.add",
        &login.email,
    )
    .await;
    done("/team", "notice.login_added")
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    /// `role` or `remove`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    role: String,
}

/// `POST /team/{id}`: change a login's role, or remove it.
pub async fn change<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Response {
    if let Err(refused) = permitted(&state, &who.viewer, &form.csrf, Power::Administer) {
        return refused;
    }
    let login = match state.store().login(&id).await {
        Ok(Some(login)) if login.tenant_id.as_deref() == Some(who.tenant.id.as_str()) => login,
        Ok(_) => return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
        Err(err) => return store_failed(&state, &who.viewer, err),
    };
    if login.id == who.viewer.login.id {
        let error = crate::i18n::text(who.viewer.lang, "team.not_yourself").map(str::to_string);
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return listing(&state, &who, status, error, None, Typed::default()).await;
    }
    let (result, action, notice_key) = match form.action.as_str() {
        "role" => match Role::parse(&form.role).filter(|r| Role::TENANT_ROLES.contains(r)) {
            Some(role) => (
                state.store().set_role(&login.id, role).await,
                "login.role",
                "notice.login_changed",
            ),
            None => return state.views.error(who.viewer.lang, StatusCode::BAD_REQUEST),
        },
        "remove" => (
            state.store().remove_login(&login.id).await.map(|_| ()),
            "login.remove",
            "notice.login_removed",
        ),
        _ => return state.views.error(who.viewer.lang, StatusCode::BAD_REQUEST),
    };
    match result {
        Ok(()) => {
            let target = format!("{} {}", login.email, form.role).trim().to_string();
            audit(&state, &who.viewer, Some(&who.tenant.id), action, &target).await;
            done("/team", notice_key)
        }
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}
