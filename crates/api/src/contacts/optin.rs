//! Double opt-in and the subscription form. A tenant sets a list's confirmation mail
//! (`POST /v1/lists/{id}/confirmation`); its site embeds a form posting to
//! `/v1/forms/{list id}` (no key: the list id is public). A new member of a double opt-in
//! list is unconfirmed and gets the confirmation mail, sent through the platform like the
//! tenant's own mail, with a signed link that expires after 7 days; the link's page has a
//! button (a GET never confirms: link scanners follow links) whose POST subscribes.
//! The form has a honeypot field (`website`: people leave it empty, bots fill it; a filled
//! one is answered like a success and dropped) and a per-address rate limit.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Form;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use store::{Consent, ContactInput, Existing, ListConfirmation, MemberStatus};

use super::lists::list_json;
use super::{Store, now_ms, refused};
use crate::ApiState;
use crate::auth::{Authorized, Manage};
use crate::error::ApiError;
use crate::manage::{not_found, object_body, optional_string};
use crate::records::invalid;

/// How long a confirmation link works.
const LINK_LIFETIME_MS: i64 = 7 * 86_400_000;
/// Form posts per client address per window.
const FORM_POSTS_PER_WINDOW: u32 = 5;
const FORM_WINDOW: Duration = Duration::from_secs(60);

/// Form posts per client address in the current window.
#[derive(Default)]
pub struct FormLimiter {
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FormLimiter {
    /// True when this address may post now (and counts the post).
    fn allow(&self, address: IpAddr) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > 100_000 {
            seen.retain(|_, (start, _)| now.duration_since(*start) < FORM_WINDOW);
        }
        let entry = seen.entry(address).or_insert((now, 0));
        if now.duration_since(entry.0) >= FORM_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= FORM_POSTS_PER_WINDOW
    }
}

fn page(status: StatusCode, title: &str, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"),
        ],
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title></head><body><main>{body}</main></body></html>"
        ),
    )
        .into_response()
}

fn unknown_link() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Confirmation",
        "<p>This confirmation link is not valid, or it has expired.</p>".into(),
    )
}

/// `POST /v1/lists/{id}/confirmation`: `{"from", "subject", "text", "redirect"?}`. The text
/// should carry `{{ confirm_url }}` (the link is added at the end when it does not).
pub(crate) async fn set_confirmation<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let store = &state.tenancy.store;
    let list = store
        .list(&key.tenant_id, &id)
        .await?
        .ok_or_else(not_found)?;
    let confirmation = {
        let map = object_body(&body, &["from", "subject", "text", "redirect"])?;
        let from = optional_string(&map, "from")?.ok_or_else(|| invalid("from", "is required"))?;
        let from = from.trim().to_lowercase();
        if state
            .tenancy
            .sending_domain(&key.tenant_id, &from)
            .await?
            .is_none()
        {
            return Err(invalid(
                "from",
                "must be an address on one of the account's sending domains",
            ));
        }
        let subject =
            optional_string(&map, "subject")?.ok_or_else(|| invalid("subject", "is required"))?;
        if subject.trim().is_empty() || subject.len() > 200 || subject.contains(['\r', '\n']) {
            return Err(invalid("subject", "one line of 1 to 200 characters"));
        }
        let text = optional_string(&map, "text")?.ok_or_else(|| invalid("text", "is required"))?;
        if text.trim().is_empty() || text.len() > 20_000 {
            return Err(invalid("text", "1 to 20,000 characters"));
        }
        let redirect = optional_string(&map, "redirect")?;
        if let Some(url) = &redirect
            && (url.len() > 2048 || !(url.starts_with("https://") || url.starts_with("http://")))
        {
            return Err(invalid("redirect", "an http:// or https:// URL"));
        }
        Some(ListConfirmation {
            from,
            subject,
            text,
            redirect,
        })
    };
    store
        .set_list_confirmation(&key.tenant_id, &list.id, confirmation.as_ref())
        .await
        .map_err(refused)?;
    let list = store
        .list(&key.tenant_id, &list.id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(list_json(&list)).into_response())
}

#[derive(serde::Deserialize)]
pub struct FormPost {
    #[serde(default)]
    email: String,
    /// The honeypot.
    #[serde(default)]
    website: String,
}

/// `DELETE /v1/lists/{id}/confirmation`: the list sends no confirmation mail any more
/// (a double opt-in list then takes no form subscriptions).
pub(crate) async fn clear_confirmation<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Manage>,
) -> Result<Response, ApiError> {
    let store = &state.tenancy.store;
    let list = store
        .list(&key.tenant_id, &id)
        .await?
        .ok_or_else(not_found)?;
    store
        .set_list_confirmation(&key.tenant_id, &list.id, None)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/forms/{list id}` (form-encoded `email`, honeypot `website`).
pub(crate) async fn form<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Path(list_id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(post): Form<FormPost>,
) -> Response {
    if !state.forms.allow(peer.ip()) {
        return page(
            StatusCode::TOO_MANY_REQUESTS,
            "Subscription",
            "<p>Too many attempts from your network. Please try again in a minute.</p>".into(),
        );
    }
    let store = &state.tenancy.store;
    let Ok(Some((tenant, list))) = store.public_list(&list_id).await else {
        return page(
            StatusCode::NOT_FOUND,
            "Subscription",
            "<p>This form is not in use.</p>".into(),
        );
    };
    let after = |status: StatusCode, text: &str| match list
        .confirmation
        .as_ref()
        .and_then(|c| c.redirect.clone())
    {
        Some(url) => Redirect::to(&url).into_response(),
        None => page(status, "Subscription", format!("<p>{text}</p>")),
    };
    let done_text = if list.double_opt_in {
        "Thank you. Please check your inbox and follow the link to confirm."
    } else {
        "Thank you. You are subscribed."
    };
    if !post.website.is_empty() {
        // A bot: answered like a person, and nothing is recorded.
        return after(StatusCode::OK, done_text);
    }
    let Ok(address) = ::audience::fields::address(&post.email) else {
        return page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Subscription",
            "<p>That is not an e-mail address. Please go back and check it.</p>".into(),
        );
    };
    if list.double_opt_in && list.confirmation.is_none() {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Subscription",
            "<p>This list cannot take subscriptions yet.</p>".into(),
        );
    }
    match subscribe(&state, &tenant, &list, &address, peer).await {
        Ok(()) => after(StatusCode::OK, done_text),
        Err(err) => {
            tracing::warn!(list = %list.id, error = ?err, "a form subscription failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Subscription",
                "<p>Please try again in a moment.</p>".into(),
            )
        }
    }
}

/// Adds the member (unconfirmed on a double opt-in list, unless already subscribed) and
/// sends the confirmation mail.
async fn subscribe<S: Store>(
    state: &ApiState<S>,
    tenant: &str,
    list: &store::ContactList,
    address: &str,
    peer: SocketAddr,
) -> Result<(), ApiError> {
    let store = &state.tenancy.store;
    let made = store
        .upsert_contacts(
            tenant,
            &[ContactInput {
                address: address.to_string(),
                ..ContactInput::default()
            }],
            Existing::Keep,
        )
        .await?;
    let Some(&contact_id) = made.ids.first() else {
        return Err(invalid("email", "not stored"));
    };
    let current = store
        .memberships(tenant, contact_id)
        .await?
        .into_iter()
        .find(|m| m.list_id == list.id)
        .map(|m| m.status);
    if current == Some(MemberStatus::Subscribed) {
        return Ok(());
    }
    let status = if list.double_opt_in {
        MemberStatus::Unconfirmed
    } else {
        MemberStatus::Subscribed
    };
    let consent = Consent::given("form", now_ms(), Some(peer.ip().to_string()));
    store
        .set_members(tenant, &list.id, &[(contact_id, status)], &consent)
        .await?;
    let Some(confirmation) = list.confirmation.as_ref().filter(|_| list.double_opt_in) else {
        return Ok(());
    };
    let token = state.tenancy.return_paths.confirmation_token(
        &list.id,
        contact_id,
        now_ms() + LINK_LIFETIME_MS,
    );
    let base = state.public_url.clone().unwrap_or_default();
    let url = format!("{base}/v1/confirm/{token}");
    let text = if confirmation.text.contains("{{ confirm_url }}") {
        confirmation.text.replace("{{ confirm_url }}", &url)
    } else {
        format!("{}\n\n{url}\n", confirmation.text)
    };
    let body = json!({"messages": [{
        "from": confirmation.from, "to": [address], "subject": confirmation.subject,
        "text": text, "tags": ["confirmation"],
    }]});
    crate::send_for_tenant(state, tenant, peer, &body).await
}

/// Tokens are hex and a dot: anything else is refused before any work.
fn plausible(token: &str) -> bool {
    token.len() <= 512 && token.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.')
}

/// `GET /v1/confirm/{token}`: a page whose button confirms.
pub(crate) async fn confirm_page<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Path(token): Path<String>,
) -> Response {
    let named = plausible(&token)
        .then(|| {
            state
                .tenancy
                .return_paths
                .parse_confirmation(&token, now_ms())
        })
        .flatten();
    let Some((list_id, _)) = named else {
        return unknown_link();
    };
    let Ok(Some((_, list))) = state.tenancy.store.public_list(&list_id).await else {
        return unknown_link();
    };
    let name = list
        .name
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    page(
        StatusCode::OK,
        "Confirmation",
        format!(
            "<form method=\"post\" action=\"{token}\"><p>Confirm your subscription to {name}?</p><button type=\"submit\">Confirm</button></form>"
        ),
    )
}

/// `POST /v1/confirm/{token}`: the member is subscribed, with the confirmation recorded.
pub(crate) async fn confirm<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Path(token): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    let named = plausible(&token)
        .then(|| {
            state
                .tenancy
                .return_paths
                .parse_confirmation(&token, now_ms())
        })
        .flatten();
    let Some((list_id, contact_id)) = named else {
        return unknown_link();
    };
    let store = &state.tenancy.store;
    let Ok(Some((tenant, list))) = store.public_list(&list_id).await else {
        return unknown_link();
    };
    let consent = Consent {
        source: "confirmation".into(),
        time_ms: now_ms(),
        address: Some(peer.ip().to_string()),
        confirmed_ms: Some(now_ms()),
    };
    let members = [(contact_id, MemberStatus::Subscribed)];
    match store
        .set_members(&tenant, &list.id, &members, &consent)
        .await
    {
        Ok(_) => page(
            StatusCode::OK,
            "Confirmation",
            "<p>Thank you: your subscription is confirmed.</p>".into(),
        ),
        Err(err) => {
            tracing::error!(error = %err, "recording a confirmation failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Confirmation",
                "<p>Please try again in a moment.</p>".into(),
            )
        }
    }
}
