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
        .map(str::trim);
    let Some(token) = token else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "an API key is required: Authorization: Bearer tsb_...",
        ));
    };
    let key = store.authenticate(token).await.map_err(|err| {
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
