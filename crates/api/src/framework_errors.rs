//! Errors answered before any handler runs (a body over the size limit, a body that cannot
//! be read, such as malformed chunked encoding, an unknown path or method) come from the
//! framework as plain text. This layer turns every such answer into the API's documented
//! JSON, naming the field (`body`) when the body is at fault, in Mailjet's shape on its
//! endpoint, so a client never has to parse two formats.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::REQUEST_BYTES_MAX;
use crate::error::FieldError;
use crate::mailjet;

/// Most of a framework error's own text read to classify it.
const FRAMEWORK_TEXT_BYTES_MAX: usize = 4096;

/// Middleware for the whole HTTP router (`axum::middleware::from_fn`).
pub async fn json_errors(request: Request, next: Next) -> Response {
    let mailjet = request.uri().path().starts_with("/v3.1/");
    let response = if declared_too_large(&request) {
        // Refused before reading a byte of it: a client that announces 30 MB and sends
        // nothing must not hold the connection until the body timeout.
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    } else {
        next.run(request).await
    };
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || has_own_format(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, FRAMEWORK_TEXT_BYTES_MAX)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    if text.contains(http_listener::bodies::BODY_TIMEOUT_TEXT) {
        // The body did not arrive in time: 408, and the connection closes (what is left of
        // the body could otherwise be read as the next request).
        parts.status = StatusCode::REQUEST_TIMEOUT;
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let error = describe(parts.status, &text);
    let value = if mailjet {
        let code = if parts.status == StatusCode::PAYLOAD_TOO_LARGE {
            "mj-0006"
        } else {
            "mj-0002"
        };
        mailjet::global_field_error(parts.status.as_u16(), code, &error)
    } else {
        serde_json::json!({ "errors": [error] })
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(value.to_string()))
}

fn declared_too_large(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|length| length > REQUEST_BYTES_MAX as u64)
}

/// JSON (our own errors) and HTML (the unsubscribe pages) are answered as they are.
fn has_own_format(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json") || t.starts_with("text/html"))
}

/// The error for a framework answer: its status and its own text.
fn describe(status: StatusCode, text: &str) -> FieldError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => FieldError::at(
            "body",
            format!("is larger than the limit of {REQUEST_BYTES_MAX} bytes"),
        ),
        StatusCode::BAD_REQUEST if text.starts_with("Failed to buffer the request body") => {
            FieldError::at(
                "body",
                "could not be read: it ended early or its chunked encoding is malformed",
            )
        }
        StatusCode::REQUEST_TIMEOUT => FieldError::at("body", "did not arrive in time"),
        StatusCode::NOT_FOUND => FieldError::general("no such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => {
            FieldError::general("this endpoint does not accept that method")
        }
        _ if !text.trim().is_empty() => FieldError::general(text.trim()),
        _ => FieldError::general(status.canonical_reason().unwrap_or("error")),
    }
}
