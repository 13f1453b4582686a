//! One-click unsubscribe (RFC 8058): `List-Unsubscribe: <https://.../v1/unsubscribe/<token>>`
//! with `List-Unsubscribe-Post: List-Unsubscribe=One-Click`. Mailbox providers POST to the
//! link when the recipient presses their unsubscribe button; a person following the link in
//! a browser gets a page whose button POSTs. No key: the token, signed by this node, names
//! the message and the one recipient it was made for, and nothing else can be done with it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use store::{ControlStore, EventStore};

use crate::ApiState;

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Unsubscribe</title></head><body>{body}</body></html>"
        ),
    )
        .into_response()
}

fn unknown() -> Response {
    html(
        StatusCode::NOT_FOUND,
        "<p>This unsubscribe link is not valid.</p>".into(),
    )
}

/// Tokens are hex and a dot: anything else is refused before any work.
fn plausible(token: &str) -> bool {
    token.len() <= 2048 && token.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.')
}

/// `GET`: a page with the button (a GET must not unsubscribe: link scanners follow links).
pub(crate) async fn page<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Path(token): Path<String>,
) -> Response {
    if !plausible(&token)
        || state
            .tenancy
            .return_paths
            .parse_unsubscribe_token(&token)
            .is_none()
    {
        return unknown();
    }
    html(
        StatusCode::OK,
        format!(
            "<form method=\"post\" action=\"{token}\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\"><p>Stop receiving these messages?</p><button type=\"submit\">Unsubscribe</button></form>"
        ),
    )
}

/// `POST`: the unsubscribe itself, recorded (event and suppression) before the answer.
pub(crate) async fn confirm<S: ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Path(token): Path<String>,
) -> Response {
    if !plausible(&token) {
        return unknown();
    }
    let Some(named) = state.tenancy.return_paths.parse_unsubscribe_token(&token) else {
        return unknown();
    };
    match events::inbound::unsubscribe(
        &state.tenancy.store,
        &named.message_id,
        &named.sending_domain,
        &named.recipient,
    )
    .await
    {
        Ok(true) => html(StatusCode::OK, "<p>You are unsubscribed.</p>".into()),
        Ok(false) => unknown(),
        Err(err) => {
            tracing::error!(error = %err, "recording an unsubscribe failed");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                "<p>Please try again in a moment.</p>".into(),
            )
        }
    }
}
