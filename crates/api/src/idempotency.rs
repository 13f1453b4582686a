//! `Idempotency-Key`: a request sent again with the same key (within a day, same tenant)
//! gets the first answer again instead of sending again. The key is claimed in the control
//! plane before the work starts, so two copies racing each other cannot both send: the
//! second gets 409 while the first runs. Answers worth repeating (success and refusals of
//! the request itself) are kept; 429 and 5xx release the key so a retry can go through. The
//! same key with a different body is refused with 422.

use std::future::Future;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use store::{ControlStore, Idempotent, StoredResponse};

use crate::error::ApiError;

/// How long an answer is kept for its key.
pub const RETENTION_MS: i64 = 24 * 3600 * 1000;
/// Longest key accepted.
pub const KEY_BYTES_MAX: usize = 255;
/// Largest answer kept (send answers are small; this is a guard).
const BODY_BYTES_MAX: usize = 4 << 20;
/// Answer headers kept with the body.
const KEPT_HEADERS: &[&str] = &["content-type", "x-message-id"];

/// Runs `work` once per idempotency key; without a key, simply runs it.
pub async fn once<S, F, Fut>(
    store: &S,
    tenant_id: &str,
    headers: &HeaderMap,
    body: &[u8],
    work: F,
) -> Response
where
    S: ControlStore,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Response>,
{
    let Some(key) = headers.get("idempotency-key") else {
        return work().await;
    };
    let key = match key.to_str() {
        Ok(k)
            if !k.is_empty()
                && k.len() <= KEY_BYTES_MAX
                && k.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            k
        }
        _ => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("Idempotency-Key must be 1 to {KEY_BYTES_MAX} visible ASCII characters"),
            )
            .into_response();
        }
    };
    let fingerprint = store::keys::sha256(body);
    let claimed = store
        .begin_idempotent(tenant_id, key, &fingerprint, RETENTION_MS)
        .await;
    match claimed {
        Err(err) => {
            tracing::error!(error = %err, "control plane unavailable");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "control plane unavailable")
                .into_response()
        }
        Ok(Idempotent::Done(stored)) => replay(stored),
        Ok(Idempotent::InProgress) => ApiError::new(
            StatusCode::CONFLICT,
            "a request with this Idempotency-Key is being processed; retry later",
        )
        .into_response(),
        Ok(Idempotent::Mismatch) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "this Idempotency-Key was used for a different request",
        )
        .into_response(),
        Ok(Idempotent::New) => {
            let response = work().await;
            let status = response.status();
            let keep = !(status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error());
            if !keep {
                release(store, tenant_id, key).await;
                return response;
            }
            let (parts, body) = response.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, BODY_BYTES_MAX).await else {
                release(store, tenant_id, key).await;
                return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "answer too large")
                    .into_response();
            };
            let stored = StoredResponse {
                status: status.as_u16(),
                headers: KEPT_HEADERS
                    .iter()
                    .filter_map(|name| {
                        let value = parts.headers.get(*name)?.to_str().ok()?;
                        Some((name.to_string(), value.to_string()))
                    })
                    .collect(),
                body: bytes.to_vec(),
            };
            if let Err(err) = store.finish_idempotent(tenant_id, key, Some(&stored)).await {
                // The messages are queued; only the replay record is missing.
                tracing::error!(error = %err, key, "could not record an idempotent answer");
            }
            Response::from_parts(parts, Body::from(bytes))
        }
    }
}

async fn release<S: ControlStore>(store: &S, tenant_id: &str, key: &str) {
    if let Err(err) = store.finish_idempotent(tenant_id, key, None).await {
        tracing::error!(error = %err, key, "could not release an idempotency key");
    }
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
