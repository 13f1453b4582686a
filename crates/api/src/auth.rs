//! `Authorization: Bearer tsb_...`: which tenant calls, and whether its key may do this.

use axum::http::{HeaderMap, StatusCode, header};
use store::{ApiKey, ControlStore, Scope};

use crate::error::ApiError;

/// The live key presented with the request, if it has `scope`.
pub async fn authorize<S: ControlStore>(
    store: &S,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<ApiKey, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    check(store, token, scope).await
}

/// Mailjet's Basic scheme: user `tsb_<id>`, password the rest of the key (or the whole key
/// as the user and an empty password). Bearer is accepted too.
pub async fn authorize_mailjet<S: ControlStore>(
    store: &S,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<ApiKey, ApiError> {
    use base64::Engine as _;
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = match value.strip_prefix("Basic ") {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| {
                let (user, password) = pair.split_once(':')?;
                Some(if password.is_empty() {
                    user.to_string()
                } else {
                    format!("{user}_{password}")
                })
            }),
        None => value.strip_prefix("Bearer ").map(|t| t.trim().to_string()),
    };
    check(store, token, scope).await
}

async fn check<S: ControlStore>(
    store: &S,
    token: Option<String>,
    scope: Scope,
) -> Result<ApiKey, ApiError> {
    let Some(token) = token else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "an API key is required: Authorization: Bearer tsb_...",
        ));
    };
    let key = store.authenticate(&token).await.map_err(|err| {
        tracing::error!(error = %err, "control plane unavailable");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "control plane unavailable")
    })?;
    let Some(key) = key else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unknown or revoked API key",
        ));
    };
    if let Some(reason) = key.tenant_suspended.clone() {
        return Err(tenancy::Refusal::Suspended(reason).into());
    }
    if !key.scopes.allows(scope) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("this key lacks the {scope:?} scope").to_lowercase(),
        ));
    }
    Ok(key)
}

/// The scope a handler needs, as a type, so the key check can be an extractor.
pub trait Needs: Send + Sync + 'static {
    const SCOPE: Scope;
}

/// Handlers that take mail to send.
pub struct Sends;
/// Handlers that read (events, messages, suppressions, the account).
pub struct Read;
/// Handlers that change the account (domains, keys, suppressions, webhooks).
pub struct Manage;

impl Needs for Sends {
    const SCOPE: Scope = Scope::Send;
}

impl Needs for Read {
    const SCOPE: Scope = Scope::Read;
}

impl Needs for Manage {
    const SCOPE: Scope = Scope::Manage;
}

/// The caller's live key, checked for `N`'s scope before the handler runs; the request is
/// answered with the key error (401, 403, 503) otherwise.
pub struct Authorized<N> {
    pub key: ApiKey,
    _scope: std::marker::PhantomData<N>,
}

impl<S, N> axum::extract::FromRequestParts<std::sync::Arc<crate::ApiState<S>>> for Authorized<N>
where
    S: ControlStore + store::EventStore + 'static,
    N: Needs,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &std::sync::Arc<crate::ApiState<S>>,
    ) -> Result<Self, ApiError> {
        let key = authorize(&state.tenancy.store, &parts.headers, N::SCOPE).await?;
        Ok(Authorized {
            key,
            _scope: std::marker::PhantomData,
        })
    }
}
