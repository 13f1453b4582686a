//! Sign-in (password, then the second factor when the login has one), sign-out. The
//! session id is new at every step, so a session id planted before sign-in is worthless.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use store::Role;

use super::{passwords, sessions, totp};
use crate::i18n::Lang;
use crate::{ConsoleState, Store};

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
}

/// Only paths on this site: `//evil.example` or `https://...` would send the person away.
fn safe_next(next: Option<&str>) -> Option<String> {
    let next = next?;
    (next.starts_with('/') && !next.starts_with("//") && !next.contains('\\'))
        .then(|| next.to_string())
}

fn lang_of(headers: &HeaderMap) -> Lang {
    Lang::negotiate(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

fn login_page<S: Store>(
    state: &ConsoleState<S>,
    lang: Lang,
    status: StatusCode,
    next: Option<&str>,
    email: &str,
    error: Option<String>,
    notice: Option<&str>,
) -> Response {
    state.views.page(
        status,
        "login.html",
        minijinja::context! {
            lang => lang.code(),
            next => next,
            email => email,
            error => error,
            notice => notice,
        },
    )
}

/// `GET /login`
pub async fn form<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    Query(query): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let notice = query.expired.is_some().then_some("login.expired");
    login_page(
        &state,
        lang_of(&headers),
        StatusCode::OK,
        safe_next(query.next.as_deref()).as_deref(),
        "",
        None,
        notice,
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

fn landing(role: Role, next: Option<String>) -> String {
    next.unwrap_or_else(|| {
        if role == Role::Operator {
            "/ops".into()
        } else {
            "/".into()
        }
    })
}

fn with_cookie(mut response: Response, value: axum::http::HeaderValue) -> Response {
    response.headers_mut().append(header::SET_COOKIE, value);
    response
}

/// Ends the session the request came with, if any (a new one replaces it).
async fn end_current<S: Store>(state: &ConsoleState<S>, headers: &HeaderMap) {
    if let Some(value) = sessions::cookie_value(&state.config, headers) {
        let _ = state.store().remove_session(&sessions::hash(&value)).await;
    }
}

fn wait_text(lang: Lang, wait: std::time::Duration) -> String {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    crate::i18n::text(lang, "login.throttled")
        .unwrap_or("Too many attempts. Try again in {minutes} minutes.")
        .replace("{minutes}", &minutes.to_string())
}

/// `POST /login`
pub async fn submit<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    parts: ConnectParts,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = lang_of(&parts.0.headers);
    let address = super::client_address(&parts.0);
    let next = safe_next(form.next.as_deref());
    if let Err(wait) = state.throttle.check(&form.email, address) {
        return login_page(
            &state,
            lang,
            StatusCode::TOO_MANY_REQUESTS,
            next.as_deref(),
            &form.email,
            Some(wait_text(lang, wait)),
            None,
        );
    }
    let login = state.store().login(&form.email).await.ok().flatten();
    let stored = login.as_ref().map(|l| l.password_hash.clone());
    let password = form.password.clone();
    let ok = tokio::task::spawn_blocking(move || passwords::verify(stored.as_deref(), &password))
        .await
        .unwrap_or(false);
    let Some(login) = login.filter(|_| ok) else {
        state.throttle.failed(&form.email);
        let _ = state
            .store()
            .audit(
                None,
                &form.email.trim().to_lowercase(),
                "login.failed",
                "",
                &address.to_string(),
            )
            .await;
        let error = crate::i18n::text(lang, "login.wrong").unwrap_or("Wrong address or password.");
        return login_page(
            &state,
            lang,
            StatusCode::UNAUTHORIZED,
            next.as_deref(),
            &form.email,
            Some(error.to_string()),
            None,
        );
    };
    end_current(&state, &parts.0.headers).await;
    let pending = login.totp_secret.is_some();
    let value = match sessions::start(&state, &login.id, pending, address).await {
        Ok(value) => value,
        Err(err) => {
            tracing::error!(error = %err, "starting a console session failed");
            return state.views.error(lang, StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let cookie = sessions::set_cookie(&state.config, &value);
    if pending {
        let page = state.views.page(
            StatusCode::OK,
            "login_code.html",
            minijinja::context! { lang => lang.code(), next => next, error => None::<String> },
        );
        return with_cookie(page, cookie);
    }
    state.throttle.succeeded(&form.email);
    let _ = state
        .store()
        .audit(
            login.tenant_id.as_deref(),
            &login.email,
            "login",
            "",
            &address.to_string(),
        )
        .await;
    with_cookie(
        Redirect::to(&landing(login.role, next)).into_response(),
        cookie,
    )
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
    next: Option<String>,
}

/// `POST /login/code`: the second step. The pending session is replaced by a full one.
pub async fn second_factor<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    parts: ConnectParts,
    Form(form): Form<CodeForm>,
) -> Response {
    let lang = lang_of(&parts.0.headers);
    let address = super::client_address(&parts.0);
    let next = safe_next(form.next.as_deref());
    let session = match sessions::cookie_value(&state.config, &parts.0.headers) {
        Some(value) => sessions::find(&state, &value).await.ok(),
        None => None,
    };
    let Some(session) = session.filter(|s| s.pending_second_factor) else {
        return Redirect::to("/login?expired=1").into_response();
    };
    let Some(login) = state.store().login(&session.login_id).await.ok().flatten() else {
        return Redirect::to("/login").into_response();
    };
    if let Err(wait) = state.throttle.check(&login.email, address) {
        return state.views.page(
            StatusCode::TOO_MANY_REQUESTS,
            "login_code.html",
            minijinja::context! { lang => lang.code(), next => next, error => wait_text(lang, wait) },
        );
    }
    let now_s = (sessions::now_ms() / 1000) as u64;
    let step = login
        .totp_secret
        .as_deref()
        .and_then(|secret| totp::verify(secret, &form.code, now_s));
    let fresh = step.is_some_and(|step| {
        let mut used = state.totp_used.lock().unwrap_or_else(|e| e.into_inner());
        let last = used.get(&login.id).copied();
        if last.is_some_and(|last| step <= last) {
            false
        } else {
            used.insert(login.id.clone(), step);
            true
        }
    });
    if !fresh {
        state.throttle.failed(&login.email);
        let _ = state
            .store()
            .audit(
                login.tenant_id.as_deref(),
                &login.email,
                "login.code_failed",
                "",
                &address.to_string(),
            )
            .await;
        let error = crate::i18n::text(lang, "login.wrong_code").unwrap_or("Wrong code.");
        return state.views.page(
            StatusCode::UNAUTHORIZED,
            "login_code.html",
            minijinja::context! { lang => lang.code(), next => next, error => error },
        );
    }
    let _ = state.store().remove_session(&session.id_sha256).await;
    let value = match sessions::start(&state, &login.id, false, address).await {
        Ok(value) => value,
        Err(_) => return state.views.error(lang, StatusCode::INTERNAL_SERVER_ERROR),
    };
    state.throttle.succeeded(&login.email);
    let _ = state
        .store()
        .audit(
            login.tenant_id.as_deref(),
            &login.email,
            "login",
            "totp",
            &address.to_string(),
        )
        .await;
    with_cookie(
        Redirect::to(&landing(login.role, next)).into_response(),
        sessions::set_cookie(&state.config, &value),
    )
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

/// `POST /logout`
pub async fn logout<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    parts: ConnectParts,
    Form(form): Form<LogoutForm>,
) -> Response {
    match super::viewer(&parts.0, &state).await {
        Ok(viewer) => {
            if let Err(refused) = viewer.check_csrf(&form.csrf) {
                return refused;
            }
            let _ = state
                .store()
                .remove_session(&viewer.session.id_sha256)
                .await;
            super::audit(
                &state,
                &viewer,
                viewer.login.tenant_id.as_deref(),
                "logout",
                "",
            )
            .await;
        }
        Err(_) => {}
    }
    with_cookie(
        Redirect::to("/login").into_response(),
        sessions::clear_cookie(&state.config),
    )
}

/// The request's parts (headers, connect info) for handlers that also read a form.
pub struct ConnectParts(pub Parts);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ConnectParts {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ConnectParts(parts.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            safe_next(Some("/activity?q=1")).as_deref(),
            Some("/activity?q=1")
        );
        assert_eq!(safe_next(Some("//evil.example/")), None);
        assert_eq!(safe_next(Some("https://evil.example/")), None);
        assert_eq!(safe_next(Some("/\\evil.example")), None);
        assert_eq!(safe_next(None), None);
    }
}
