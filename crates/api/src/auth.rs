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
    if !key.scopes.allows(scope) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("this key lacks the {scope:?} scope").to_lowercase(),
        ));
    }
    Ok(key)
}
