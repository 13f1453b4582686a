//! The account: the tenant's limits and today's usage against its quota; the signed-in
//! person's password, language and second factor.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::domains::PageQuery;
use super::{done, notice, store_failed, today};
use crate::auth::{TenantViewer, Viewer, audit, passwords, sessions, totp};
use crate::{ConsoleState, Store};

async fn render<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
    status: StatusCode,
    error: Option<String>,
    notice_key: Option<&str>,
    enrol: Option<Vec<u8>>,
) -> Response {
    let saved = state
        .store()
        .usage(&who.tenant.id, today())
        .await
        .unwrap_or(0);
    let used = state
        .tenancy
        .quotas
        .used_today(&who.tenant.id, today())
        .unwrap_or(saved);
    let percent = who
        .tenant
        .daily_quota
        .filter(|q| *q > 0)
        .map(|q| (used * 100 / q).min(100));
    let enrolment = enrol.map(|secret| {
        minijinja::context! {
            secret => totp::base32(&secret),
            uri => totp::uri("tsubame", &who.viewer.login.email, &secret),
        }
    });
    let base = who.viewer.context("account", Some(&who.tenant));
    state.views.page(
        status,
        "account.html",
        minijinja::context! {
            rate_per_sec => who.tenant.rate_per_sec,
            daily_quota => who.tenant.daily_quota,
            used_today => used,
            used_percent => percent,
            suspended => who.tenant.suspended.clone(),
            error => error,
            notice => notice_key,
            enrolment => enrolment,
            ..base
        },
    )
}

/// `GET /account`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Query(query): Query<PageQuery>,
) -> Response {
    render(
        &state,
        &who,
        StatusCode::OK,
        None,
        notice(query.notice.as_deref()),
        None,
    )
    .await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    current: String,
    new: String,
    repeat: String,
}

/// Checks the current password and sets the new one; other sessions end.
async fn change<S: Store>(
    state: &ConsoleState<S>,
    viewer: &Viewer,
    form: &PasswordForm,
) -> Result<(), String> {
    let text = |key: &str| {
        crate::i18n::text(viewer.lang, key)
            .unwrap_or(key)
            .to_string()
    };
    if form.new != form.repeat {
        return Err(text("account.password_mismatch"));
    }
    let stored = viewer.login.password_hash.clone();
    let current = form.current.clone();
    let new = form.new.clone();
    let hashed = tokio::task::spawn_blocking(move || {
        if !passwords::verify(Some(&stored), &current) {
            return Err(None);
        }
        passwords::hash(&new).map_err(|e| Some(e.to_string()))
    })
    .await
    .map_err(|e| e.to_string())?;
    let hash = match hashed {
        Ok(hash) => hash,
        Err(None) => return Err(text("account.password_wrong")),
        Err(Some(policy)) => return Err(policy),
    };
    state
        .store()
        .set_password(&viewer.login.id, &hash, Some(&viewer.session.id_sha256))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `POST /account`: password change.
pub async fn change_password<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Form(form): Form<PasswordForm>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&form.csrf) {
        return refused;
    }
    match change(&state, &who.viewer, &form).await {
        Ok(()) => {
            audit(
                &state,
                &who.viewer,
                Some(&who.tenant.id),
                "login.password",
                &who.viewer.login.email,
            )
            .await;
            done("/account", "notice.password_changed")
        }
        Err(error) => {
            render(
                &state,
                &who,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(error),
                None,
                None,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct LanguageForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    language: String,
}

/// `POST /account/language`: `en`, `ja`, or `browser`.
pub async fn language<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Form(form): Form<LanguageForm>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&form.csrf) {
        return refused;
    }
    let locale = crate::i18n::Lang::parse(&form.language).map(|l| l.code());
    if let Err(err) = state.store().set_locale(&who.viewer.login.id, locale).await {
        return store_failed(&state, &who.viewer, err);
    }
    done("/account", "notice.language_changed")
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    name: String,
}

/// `POST /account/name`: the name the person is shown by.
pub async fn name<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Form(form): Form<NameForm>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&form.csrf) {
        return refused;
    }
    match state
        .store()
        .set_display_name(&who.viewer.login.id, &form.name)
        .await
    {
        Ok(()) => done("/account", "notice.name_changed"),
        Err(err @ store::StoreError::Invalid { .. }) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render(&state, &who, status, Some(err.to_string()), None, None).await
        }
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}

#[derive(Deserialize)]
pub struct TotpForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    /// `start`, `confirm` (with `secret` and `code`) or `off`.
    step: String,
    secret: Option<String>,
    code: Option<String>,
}

fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buffer: u64 = 0;
    let mut bits = 0;
    for c in text.trim().bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u64::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// `POST /account/totp`: turn the second factor on (show a secret, then confirm it with
/// a code from the app) or off.
pub async fn totp<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Form(form): Form<TotpForm>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&form.csrf) {
        return refused;
    }
    match form.step.as_str() {
        "start" => {
            render(
                &state,
                &who,
                StatusCode::OK,
                None,
                None,
                Some(totp::new_secret()),
            )
            .await
        }
        "confirm" => {
            let secret = form
                .secret
                .as_deref()
                .and_then(base32_decode)
                .filter(|s| s.len() == totp::SECRET_BYTES);
            let now_s = (sessions::now_ms() / 1000) as u64;
            let code = form.code.as_deref().unwrap_or("");
            match secret {
                Some(secret) if totp::verify(&secret, code, now_s).is_some() => {
                    if let Err(err) = state
                        .store()
                        .set_totp(&who.viewer.login.id, Some(&secret))
                        .await
                    {
                        return store_failed(&state, &who.viewer, err);
                    }
                    audit(
                        &state,
                        &who.viewer,
                        Some(&who.tenant.id),
                        "login.totp_on",
                        &who.viewer.login.email,
                    )
                    .await;
                    done("/account", "notice.totp_on")
                }
                secret => {
                    let error =
                        crate::i18n::text(who.viewer.lang, "login.wrong_code").map(str::to_string);
                    render(
                        &state,
                        &who,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        error,
                        None,
                        secret,
                    )
                    .await
                }
            }
        }
        _ => {
            if let Err(err) = state.store().set_totp(&who.viewer.login.id, None).await {
                return store_failed(&state, &who.viewer, err);
            }
            audit(
                &state,
                &who.viewer,
                Some(&who.tenant.id),
                "login.totp_off",
                &who.viewer.login.email,
            )
            .await;
            done("/account", "notice.totp_off")
        }
    }
}
