//! The senders' HTTP API: the native `POST /v1/messages` and SendGrid v3 compatible
//! `POST /v3/mail/send`, and Mailjet v3.1 compatible `POST /v3.1/send`; the account's
//! domains, keys, events, suppressions and webhooks.
//!
//! A request is authorised by a tenant's API key (`Authorization: Bearer tsb_...`, scope
//! `send`), checked field by field (errors name the JSON path; CR, LF or NUL in any header
//! text is refused), composed into RFC 5322 messages and spooled; the reply comes only
//! after every message of the request is durable.
//!
//! # Layout
//! - [`native`]: the request format and its checks (no I/O); [`sendgrid`], [`mailjet`]:
//!   the compatible formats on the same checks; [`attachments`], [`attributes`],
//!   [`schedule`], [`template`]: more checks.
//! - [`submit`]: suppression, quota, compose, spool, events; [`compose`]: checked message
//!   → bytes and envelope; [`text`]: a plain-text part for HTML-only messages.
//! - [`manage`] (domains, keys, account), [`records`] (events, messages, suppressions),
//!   [`hooks`] (webhooks), [`openapi`] (the document).
//! - [`auth`]: the API key and its scope; [`idempotency`]; [`error`]: JSON errors.
//!
//! Rate limits, daily quotas and DKIM signers are the `tenancy` crate's, shared with SMTP.

pub mod attachments;
pub mod attributes;
pub mod auth;
pub mod campaigns;
pub mod compose;
pub mod contacts;
pub mod error;
pub mod framework_errors;
pub mod hooks;
pub mod idempotency;
pub mod mailjet;
pub mod mailjet_rest;
pub mod manage;
pub mod native;
pub mod openapi;
pub mod preferences;
pub mod records;
pub mod schedule;
pub mod sendgrid;
pub mod sendgrid_marketing;
pub mod stored_templates;
pub mod submit;
pub mod template;
pub mod text;
pub mod tracking;
pub mod unsubscribe;

use std::net::SocketAddr;
use std::sync::Arc;

use auth::Authorized;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use spool::Spool;
use store::{ControlStore, EventStore, Scope};
use submit::submit;
use tenancy::Tenancy;

use crate::error::ApiError;

/// Largest request body accepted, in bytes.
pub const REQUEST_BYTES_MAX: usize = 25 << 20;

/// What the handlers share.
pub struct ApiState<S> {
    pub spool: Spool,
    /// The control plane, limits and signers, shared with SMTP.
    pub tenancy: Arc<Tenancy<S>>,
    /// This node's name, for Message-IDs.
    pub hostname: String,
    /// Where accepted and suppressed events go.
    pub events: events::EventSink,
    /// Which webhook URLs may be added (its guard) and how test batches are posted.
    pub webhooks: events::webhooks::WebhookConfig,
    /// How recipients reach this server (one-click unsubscribe links); none: mailto only.
    pub public_url: Option<String>,
    /// Where contact imports are kept, and the runner to wake when one is added.
    pub imports: imports::ImportsConfig,
    pub imports_wake: Arc<tokio::sync::Notify>,
    /// Subscription form posts per client address.
    pub forms: contacts::optin::FormLimiter,
    /// Wakes the campaigns' loop when a campaign is started, resumed or stopped.
    pub campaigns_wake: Arc<tokio::sync::Notify>,
    /// Where a cancelled campaign's queued messages are taken back (the delivery engine,
    /// or the spool when delivery is off); set once at start-up.
    pub queue: std::sync::OnceLock<Arc<dyn ::campaigns::expand::Withdraw>>,
    /// Signs and reads open and click links; set once at start-up. Without it (or without
    /// `public_url`) campaigns are sent untracked.
    pub tracking: std::sync::OnceLock<::tracking::token::TrackingKey>,
}

impl<S: ControlStore + EventStore + 'static> ApiState<S> {
    pub fn new(
        spool: Spool,
        tenancy: Arc<Tenancy<S>>,
        events: events::EventSink,
        webhooks: events::webhooks::WebhookConfig,
        public_url: Option<String>,
        hostname: String,
        imports: (imports::ImportsConfig, Arc<tokio::sync::Notify>),
    ) -> Arc<ApiState<S>> {
        Arc::new(ApiState {
            spool,
            tenancy,
            hostname,
            events,
            webhooks,
            public_url,
            imports: imports.0,
            imports_wake: imports.1,
            forms: Default::default(),
            campaigns_wake: Arc::new(tokio::sync::Notify::new()),
            queue: std::sync::OnceLock::new(),
            tracking: std::sync::OnceLock::new(),
        })
    }
}

/// The send API routes, to merge into the HTTP server's router. The server must be run with
/// `into_make_service_with_connect_info::<SocketAddr>()`: the client's address is recorded
/// with every message.
pub fn router<S: campaigns::CampaignsStore>(state: Arc<ApiState<S>>) -> Router {
    Router::new()
        .route(
            "/v1/messages",
            post(send_native::<S>).get(records::find_messages::<S>),
        )
        .route("/v3/mail/send", post(send_sendgrid::<S>))
        .route("/v3.1/send", post(send_mailjet::<S>))
        .route(
            "/v1/messages/{id}",
            axum::routing::get(records::message_status::<S>),
        )
        .route(
            "/v1/domains",
            axum::routing::get(manage::list_domains::<S>).post(manage::add_domain::<S>),
        )
        .route(
            "/v1/domains/{domain}",
            axum::routing::get(manage::get_domain::<S>).delete(manage::remove_domain::<S>),
        )
        .route(
            "/v1/keys",
            axum::routing::get(manage::list_keys::<S>).post(manage::add_key::<S>),
        )
        .route(
            "/v1/keys/{id}",
            axum::routing::get(manage::get_key::<S>).delete(manage::revoke_key::<S>),
        )
        .route("/v1/account", axum::routing::get(manage::account::<S>))
        .route("/v1/events", axum::routing::get(records::list_events::<S>))
        .route(
            "/v1/suppressions",
            axum::routing::get(records::list_suppressions::<S>)
                .post(records::add_suppressions::<S>),
        )
        .route(
            "/v1/suppressions/{address}",
            axum::routing::get(records::get_suppression::<S>)
                .delete(records::remove_suppression::<S>),
        )
        .route(
            "/v1/webhooks",
            axum::routing::get(hooks::list_webhooks::<S>).post(hooks::add_webhook::<S>),
        )
        .route(
            "/v1/webhooks/{id}",
            axum::routing::delete(hooks::remove_webhook::<S>),
        )
        .route(
            "/v1/webhooks/{id}/deliveries",
            axum::routing::get(hooks::webhook_deliveries::<S>),
        )
        .route(
            "/v1/webhooks/{id}/test",
            axum::routing::post(hooks::test_webhook::<S>),
        )
        .route(
            "/v1/webhooks/{id}/rotate",
            axum::routing::post(hooks::rotate_webhook::<S>),
        )
        .route(
            "/v1/unsubscribe/{token}",
            axum::routing::get(unsubscribe::page::<S>).post(unsubscribe::confirm::<S>),
        )
        .route(
            "/v1/contacts/properties",
            axum::routing::get(contacts::properties::list::<S>)
                .post(contacts::properties::add::<S>),
        )
        .route(
            "/v1/contacts/properties/{name}",
            axum::routing::delete(contacts::properties::remove::<S>),
        )
        .route(
            "/v1/contacts",
            axum::routing::get(contacts::contact::list::<S>).post(contacts::contact::upsert::<S>),
        )
        .route(
            "/v1/contacts/export",
            axum::routing::get(contacts::contact::export::<S>),
        )
        .route(
            "/v1/contacts/{id}",
            axum::routing::get(contacts::contact::get::<S>).delete(contacts::contact::remove::<S>),
        )
        .route(
            "/v1/lists",
            axum::routing::get(contacts::lists::all::<S>).post(contacts::lists::add::<S>),
        )
        .route(
            "/v1/lists/{id}",
            axum::routing::get(contacts::lists::get::<S>).delete(contacts::lists::remove::<S>),
        )
        .route(
            "/v1/lists/{id}/members",
            axum::routing::get(contacts::lists::members::<S>)
                .post(contacts::lists::add_members::<S>),
        )
        .route(
            "/v1/lists/{id}/confirmation",
            axum::routing::post(contacts::optin::set_confirmation::<S>)
                .delete(contacts::optin::clear_confirmation::<S>),
        )
        .route(
            "/v1/forms/{id}",
            axum::routing::post(contacts::optin::form::<S>),
        )
        .route(
            "/v1/confirm/{token}",
            axum::routing::get(contacts::optin::confirm_page::<S>)
                .post(contacts::optin::confirm::<S>),
        )
        .route(
            "/v1/lists/{id}/members/remove",
            axum::routing::post(contacts::lists::remove_members::<S>),
        )
        .route(
            "/v1/segments",
            axum::routing::get(contacts::segments::all::<S>).post(contacts::segments::save::<S>),
        )
        .route(
            "/v1/segments/preview",
            axum::routing::post(contacts::segments::preview::<S>),
        )
        .route(
            "/v1/segments/{id}",
            axum::routing::get(contacts::segments::get::<S>)
                .delete(contacts::segments::remove::<S>),
        )
        .route(
            "/v1/imports",
            axum::routing::get(contacts::imports::all::<S>)
                .post(contacts::imports::upload::<S>)
                // Files of any size up to the imports' own limit, streamed to disk.
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/imports/{id}",
            axum::routing::get(contacts::imports::get::<S>),
        )
        .route(
            "/v1/imports/{id}/errors",
            axum::routing::get(contacts::imports::errors::<S>),
        )
        .route(
            "/v1/templates",
            axum::routing::get(stored_templates::all::<S>).post(stored_templates::add::<S>),
        )
        .route(
            "/v1/templates/{id}",
            axum::routing::get(stored_templates::get::<S>).delete(stored_templates::remove::<S>),
        )
        .route(
            "/v1/templates/{id}/versions",
            axum::routing::post(stored_templates::add_version::<S>),
        )
        .route(
            "/v1/templates/{id}/versions/{version}",
            axum::routing::put(stored_templates::update_version::<S>),
        )
        .route(
            "/v1/templates/{id}/versions/{version}/activate",
            axum::routing::post(stored_templates::activate::<S>),
        )
        .route(
            "/v1/templates/{id}/versions/{version}/preview",
            axum::routing::post(stored_templates::preview::<S>),
        )
        .route(
            "/v1/campaigns",
            axum::routing::get(campaigns::all::<S>).post(campaigns::add::<S>),
        )
        .route(
            "/v1/campaigns/{id}",
            axum::routing::get(campaigns::get::<S>).patch(campaigns::update::<S>),
        )
        .route(
            "/v1/campaigns/{id}/test",
            axum::routing::post(campaigns::test::<S>),
        )
        .route(
            "/v1/campaigns/{id}/send",
            axum::routing::post(campaigns::send::<S>),
        )
        .route(
            "/v1/campaigns/{id}/unschedule",
            axum::routing::post(campaigns::unschedule::<S>),
        )
        .route(
            "/v1/campaigns/{id}/pause",
            axum::routing::post(campaigns::pause::<S>),
        )
        .route(
            "/v1/campaigns/{id}/resume",
            axum::routing::post(campaigns::resume::<S>),
        )
        .route(
            "/v1/campaigns/{id}/report",
            axum::routing::get(campaigns::report::report::<S>),
        )
        .route(
            "/v1/campaigns/{id}/report.csv",
            axum::routing::get(campaigns::report::report_csv::<S>),
        )
        .route(
            "/v1/campaigns/{id}/cancel",
            axum::routing::post(campaigns::cancel::<S>),
        )
        .route(
            "/v1/campaigns/{id}/winner",
            axum::routing::post(campaigns::winner::<S>),
        )
        .route(
            "/v1/preferences/{token}",
            axum::routing::get(preferences::show::<S>).post(preferences::save::<S>),
        )
        .route("/t/o/{token}", axum::routing::get(tracking::open::<S>))
        .route("/t/c/{token}", axum::routing::get(tracking::click::<S>))
        .route("/openapi.json", axum::routing::get(openapi_json))
        .merge(mailjet_rest::routes::<S>())
        .merge(sendgrid_marketing::routes::<S>())
        .layer(DefaultBodyLimit::max(REQUEST_BYTES_MAX))
        .with_state(state)
}

async fn send_native<S: stored_templates::TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Authorized { key, .. }: Authorized<auth::Sends>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    idempotency::once(
        &state.tenancy.store,
        &key.tenant_id,
        &headers,
        &body,
        || async {
            send(&state, &key, peer, &body)
                .await
                .unwrap_or_else(IntoResponse::into_response)
        },
    )
    .await
}

async fn send_sendgrid<S: stored_templates::TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Authorized { key, .. }: Authorized<auth::Sends>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    idempotency::once(
        &state.tenancy.store,
        &key.tenant_id,
        &headers,
        &body,
        || send_sendgrid_authorized(&state, &key, peer, &body),
    )
    .await
}

async fn send_sendgrid_authorized<S: stored_templates::TemplatesStore>(
    state: &ApiState<S>,
    key: &store::ApiKey,
    peer: SocketAddr,
    body: &[u8],
) -> Response {
    let result = async {
        let templates =
            stored_templates::by_sendgrid_id(&state.tenancy.store, &key.tenant_id, body).await?;
        let request = sendgrid::parse(body, &templates).map_err(ApiError::invalid)?;
        if request.sandbox {
            // SendGrid: a valid request in sandbox mode is answered 200 and not sent.
            return Ok(StatusCode::OK.into_response());
        }
        let template = request.template.clone();
        let messages =
            with_domains(state, &key.tenant_id, request.messages, "personalizations").await?;
        let ids = submit(state, key, peer, &messages).await?;
        if let Some(used) = &template {
            stored_templates::mark_used(&state.tenancy.store, std::slice::from_ref(used)).await;
        }
        metrics::counter!("tsubame_api_messages_total", "api" => "sendgrid")
            .increment(messages.len() as u64);
        let mut response = StatusCode::ACCEPTED.into_response();
        if let Some(first) = ids.first()
            && let Ok(value) = axum::http::HeaderValue::from_str(&first.id.to_string())
        {
            response.headers_mut().insert("x-message-id", value);
        }
        Ok::<Response, ApiError>(response)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn openapi_json() -> Response {
    static DOCUMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(openapi::document);
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}

/// An error before any message was looked at, in Mailjet's global-error shape.
fn mailjet_global(err: ApiError, code: &str) -> Response {
    let message = err
        .errors
        .first()
        .map_or("", |e| e.message.as_str())
        .to_string();
    let mut response = (
        err.status,
        axum::Json(mailjet::global_error(err.status.as_u16(), code, &message)),
    )
        .into_response();
    if let Some(seconds) = err.retry_after
        && let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string())
    {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, value);
    }
    response
}

async fn send_mailjet<S: stored_templates::TemplatesStore>(
    State(state): State<Arc<ApiState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = match auth::authorize_mailjet(&state.tenancy.store, &headers, Scope::Send).await {
        Ok(key) => key,
        Err(err) => {
            let code = if err.status == StatusCode::FORBIDDEN {
                "mj-0001"
            } else {
                "mj-0015"
            };
            return mailjet_global(err, code);
        }
    };
    idempotency::once(
        &state.tenancy.store,
        &key.tenant_id,
        &headers,
        &body,
        || send_mailjet_authorized(&state, &key, peer, &headers, &body),
    )
    .await
}

async fn send_mailjet_authorized<S: stored_templates::TemplatesStore>(
    state: &ApiState<S>,
    key: &store::ApiKey,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let json =
        |status: StatusCode, value: serde_json::Value| (status, axum::Json(value)).into_response();
    let templates = match stored_templates::by_mailjet_number(
        &state.tenancy.store,
        &key.tenant_id,
        &mailjet::template_ids(body),
    )
    .await
    {
        Ok(templates) => templates,
        Err(err) => return mailjet_global(err, "mj-0000"),
    };
    let request = match mailjet::parse(body, &templates) {
        Ok(request) => request,
        Err(error) => {
            // A named property: missing (mj-0003) or of the wrong type (mj-0004); none:
            // the body is not JSON at all (mj-0002).
            let code = if error.field.is_some() {
                mailjet::error_code(&error)
            } else {
                "mj-0002"
            };
            return json(
                StatusCode::BAD_REQUEST,
                mailjet::global_field_error(400, code, &error),
            );
        }
    };
    let mut request = request;
    // A message from a domain the tenant has not added fails alone (Mailjet's send-0008).
    let candidates: Vec<native::Message> = request
        .entries
        .iter()
        .filter_map(|e| match e {
            mailjet::Entry::Valid(m) => Some((**m).clone()),
            mailjet::Entry::Invalid(_) => None,
        })
        .collect();
    let domains = match sender_domains(state, &key.tenant_id, &candidates).await {
        Ok(domains) => domains,
        Err(err) => return err.into_response(),
    };
    let mut domains = domains.into_iter();
    let mut valid = Vec::with_capacity(candidates.len());
    for entry in request.entries.iter_mut() {
        let mailjet::Entry::Valid(message) = entry else {
            continue;
        };
        match domains.next().flatten() {
            Some(domain) => valid.push(((**message).clone(), domain)),
            None => {
                *entry = mailjet::Entry::Invalid(vec![error::FieldError::at(
                    "From",
                    "is not a sending domain of this account",
                )])
            }
        }
    }
    let ids = if request.sandbox || valid.is_empty() {
        vec![None; valid.len()]
    } else {
        match submit(state, key, peer, &valid).await {
            Ok(done) => {
                let used: Vec<(String, i64)> = request
                    .entries
                    .iter()
                    .zip(&request.templates)
                    .filter(|(e, _)| matches!(e, mailjet::Entry::Valid(_)))
                    .filter_map(|(_, t)| t.clone())
                    .collect();
                stored_templates::mark_used(&state.tenancy.store, &used).await;
                done.into_iter().map(|d| Some(d.id)).collect()
            }
            Err(err) => {
                let code = if err.status == StatusCode::TOO_MANY_REQUESTS {
                    "mj-0010"
                } else {
                    "mj-0000"
                };
                return mailjet_global(err, code);
            }
        }
    };
    metrics::counter!("tsubame_api_messages_total", "api" => "mailjet")
        .increment(ids.iter().flatten().count() as u64);
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let href_base = format!("http://{host}");
    let mut ids = ids.into_iter();
    let mut any_error = false;
    let entries: Vec<serde_json::Value> = request
        .entries
        .iter()
        .map(|entry| match entry {
            mailjet::Entry::Valid(message) => {
                mailjet::success_entry(message, ids.next().flatten(), &href_base)
            }
            mailjet::Entry::Invalid(errors) => {
                any_error = true;
                mailjet::error_entry(errors)
            }
        })
        .collect();
    // Mailjet answers a batch with any failed message with a 4xx, and the body says which.
    let status = if any_error {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    json(status, serde_json::json!({ "Messages": entries }))
}

async fn send<S: stored_templates::TemplatesStore>(
    state: &ApiState<S>,
    key: &store::ApiKey,
    peer: SocketAddr,
    body: &[u8],
) -> Result<Response, ApiError> {
    let (body, used) = stored_templates::fill_messages(state, &key.tenant_id, body).await?;
    let messages = native::parse(&body).map_err(ApiError::invalid)?;
    let messages = with_domains(state, &key.tenant_id, messages, "messages").await?;
    let ids = submit(state, key, peer, &messages).await?;
    stored_templates::mark_used(&state.tenancy.store, &used).await;
    metrics::counter!("tsubame_api_messages_total", "api" => "native")
        .increment(messages.len() as u64);
    let body: Vec<serde_json::Value> = messages
        .iter()
        .zip(ids)
        .map(|((m, _), done)| {
            let mut entry = serde_json::json!({
                "id": done.id.to_string(),
                "custom_id": m.custom_id,
                "recipients": m.recipients().len() - done.suppressed.len(),
                "status": if done.queued { "queued" } else { "suppressed" },
            });
            if !done.suppressed.is_empty() {
                entry["suppressed"] = done.suppressed.into();
            }
            entry
        })
        .collect();
    Ok((
        StatusCode::OK,
        axum::Json(serde_json::json!({ "messages": body })),
    )
        .into_response())
}

/// Sends a native message body (`{"messages": [...]}`) on a tenant's behalf, for mail the
/// platform sends for it (double opt-in confirmations): checked, limited, signed and
/// spooled like the tenant's own API mail.
pub(crate) async fn send_for_tenant<S: ControlStore + EventStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    peer: SocketAddr,
    body: &serde_json::Value,
) -> Result<(), ApiError> {
    let key = store::ApiKey {
        id: "platform".into(),
        tenant_id: tenant_id.to_string(),
        name: "sent by the platform for the tenant".into(),
        scopes: store::Scopes {
            send: true,
            read: false,
            manage: false,
        },
        created_ms: 0,
        revoked_ms: None,
        tenant_suspended: None,
    };
    let messages = native::parse(body.to_string().as_bytes()).map_err(ApiError::invalid)?;
    let messages = with_domains(state, tenant_id, messages, "messages").await?;
    submit(state, &key, peer, &messages).await?;
    Ok(())
}

/// Each message's sending domain, if the tenant has added its From domain.
pub(crate) async fn sender_domains<S: ControlStore + EventStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    messages: &[native::Message],
) -> Result<Vec<Option<store::SendingDomain>>, ApiError> {
    let mut known: std::collections::HashMap<String, Option<store::SendingDomain>> =
        std::collections::HashMap::new();
    let mut out = Vec::with_capacity(messages.len());
    for message in messages {
        let domain = message
            .from
            .email
            .rsplit_once('@')
            .map_or("", |(_, d)| d)
            .to_ascii_lowercase();
        if !known.contains_key(&domain) {
            let found = state
                .tenancy
                .sending_domain(tenant_id, &message.from.email)
                .await?;
            known.insert(domain.clone(), found);
        }
        out.push(known.get(&domain).cloned().flatten());
    }
    Ok(out)
}

/// Each message with its sending domain, or 403 naming every message whose From domain the
/// tenant has not added (`prefix[i].from`).
pub(crate) async fn with_domains<S: ControlStore + EventStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    messages: Vec<native::Message>,
    prefix: &str,
) -> Result<Vec<(native::Message, store::SendingDomain)>, ApiError> {
    let domains = sender_domains(state, tenant_id, &messages).await?;
    let mut errors = Vec::new();
    let mut paired = Vec::with_capacity(messages.len());
    for (i, (message, domain)) in messages.into_iter().zip(domains).enumerate() {
        match domain {
            Some(domain) => paired.push((message, domain)),
            None => errors.push(error::FieldError::at(
                format!("{prefix}[{i}].from"),
                format!(
                    "{} is not a sending domain of this account; add it with `tsubame domain add`",
                    message.from.email.rsplit_once('@').map_or("", |(_, d)| d)
                ),
            )),
        }
    }
    if errors.is_empty() {
        Ok(paired)
    } else {
        Err(ApiError {
            status: StatusCode::FORBIDDEN,
            errors,
            retry_after: None,
            spool_refused: false,
        })
    }
}
