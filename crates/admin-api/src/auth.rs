//! Bearer-token check for the admin routes.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::AdminState;

pub(crate) async fn require_token(
    State(state): State<AdminState>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let matches: bool = presented.as_bytes().ct_eq(state.token.as_bytes()).into();
    if !matches {
        return crate::error(StatusCode::UNAUTHORIZED, "missing or wrong admin token");
    }
    next.run(request).await
}
