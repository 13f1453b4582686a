//! The OpenAPI 3.1 document of the native and management APIs, served at `/openapi.json`.
//! The types here describe the wire format for the document only; the handlers check
//! requests field by field themselves. CI runs schemathesis against a live server with
//! this document, so a difference between the two fails the build.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// An address, alone or with a display name.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum Mailbox {
    Address(String),
    Named {
        #[schema(format = Email)]
        email: String,
        name: Option<String>,
    },
}

/// One or several mailboxes.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum Mailboxes {
    One(Mailbox),
    Many(Vec<Mailbox>),
}

/// A file sent with the message; with `content_id` it is an inline image the HTML shows
/// as `cid:<content_id>`.
#[derive(Serialize, ToSchema)]
pub struct Attachment {
    pub filename: String,
    /// Media type, `application/octet-stream` when absent.
    #[schema(example = "application/pdf")]
    pub content_type: Option<String>,
    /// Base64 (line breaks allowed); at most 15 MiB decoded per message.
    pub content: String,
    pub content_id: Option<String>,
}

/// A time to send at: Unix seconds, or RFC 3339 with an offset; at most 72 hours ahead.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum SendAt {
    UnixSeconds(u64),
    Rfc3339(String),
}

/// One message. Header texts (subject, names, header values) must not contain CR, LF or
/// NUL; `to`, `cc` and `bcc` hold 1 to 50 distinct recipients together; `text` or `html`
/// is required.
#[derive(Serialize, ToSchema)]
pub struct OutgoingMessage {
    pub from: Mailbox,
    pub to: Option<Mailboxes>,
    pub cc: Option<Mailboxes>,
    pub bcc: Option<Mailboxes>,
    pub reply_to: Option<Mailbox>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    /// Extra header fields; the ones tsubame sets itself (From, To, Subject, Date,
    /// Message-ID, MIME and DKIM fields, ...) are refused.
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    pub attachments: Option<Vec<Attachment>>,
    /// Your own id for the message, returned with it and its events.
    pub custom_id: Option<String>,
    /// Up to 50 string keys and values (10 kB), kept with the message, never sent.
    pub metadata: Option<std::collections::BTreeMap<String, String>>,
    /// Up to 10 tags, kept with the message, never sent.
    pub tags: Option<Vec<String>>,
    /// Variables for the subject, text and HTML, which are then minijinja templates (or
    /// for the stored template named by `template_id`).
    #[schema(value_type = Option<Object>)]
    pub variables: Option<serde_json::Value>,
    pub send_at: Option<SendAt>,
    /// A stored template (id or name) whose active version gives the subject, text and
    /// HTML, rendered in its dialect with `variables`; the message then gives none of the
    /// parts the template has.
    pub template_id: Option<String>,
    /// A version of the template other than the active one.
    pub template_version: Option<i64>,
}

/// `POST /v1/messages`: 1 to 500 messages.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"messages": [{
    "from": {"email": "news@example.com", "name": "Example"},
    "to": ["ann@example.net"],
    "subject": "Your order {{ order }}",
    "text": "Thanks, {{ name }}.",
    "html": "<p>Thanks, {{ name }}.</p>",
    "variables": {"order": 42, "name": "Ann"},
    "custom_id": "order-42",
    "tags": ["receipt"]
}]}))]
pub struct SendRequest {
    #[schema(min_items = 1, max_items = 500)]
    pub messages: Vec<OutgoingMessage>,
}

#[derive(Serialize, ToSchema)]
pub struct Queued {
    /// The message id (26 characters).
    pub id: String,
    pub custom_id: Option<String>,
    pub recipients: u32,
    /// Always `queued`: the message is on disk.
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct SendResponse {
    pub messages: Vec<Queued>,
}

#[derive(Serialize, ToSchema)]
pub struct RecipientState {
    pub email: String,
    /// While queued `pending` or `final`; afterwards the recipient's last event type.
    pub status: String,
}

/// Something that happened to a message and recipient.
#[derive(Serialize, ToSchema)]
pub struct Event {
    /// Increasing; the cursor for `after`.
    pub id: i64,
    /// accepted, delivered, deferred, bounced, expired, suppressed (opened, clicked,
    /// unsubscribed, complained to come).
    #[serde(rename = "type")]
    pub kind: String,
    pub time_ms: i64,
    pub message_id: String,
    pub recipient: String,
    pub custom_id: Option<String>,
    pub tags: Vec<String>,
    /// Reply, bounce category, attempt, remote host, the message's metadata...
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct FoundMessage {
    pub id: String,
    pub events: Vec<Event>,
}

#[derive(Serialize, ToSchema)]
pub struct FoundMessages {
    pub messages: Vec<FoundMessage>,
}

#[derive(Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Pass as `after` for the next page; null on the last.
    pub next: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Suppression {
    pub address: String,
    /// `bounce`, `complaint`, `unsubscribe` or `manual`.
    pub reason: String,
    pub created_ms: i64,
}

#[derive(Serialize, ToSchema)]
pub struct SuppressionPage {
    pub suppressions: Vec<Suppression>,
    pub next: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NewSuppressions {
    /// 1 to 10,000 addresses.
    #[schema(min_items = 1, max_items = 10000)]
    pub addresses: Vec<String>,
    #[schema(pattern = "^(manual|bounce|complaint|unsubscribe)$")]
    pub reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AddedSuppressions {
    pub added: u64,
    pub already: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// Event types sent; empty: all.
    pub events: Vec<String>,
    pub created_ms: i64,
    pub failing_since_ms: Option<i64>,
    /// The last event id delivered (or given up on).
    pub cursor: i64,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<Webhook>,
}

#[derive(Serialize, ToSchema)]
pub struct NewWebhook {
    #[schema(example = "https://hooks.example.com/tsubame")]
    pub url: String,
    pub events: Option<Vec<String>>,
}

/// A webhook just added: the signing secret is shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedWebhook {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_ms: i64,
    pub failing_since_ms: Option<i64>,
    pub cursor: i64,
    pub secret: String,
}

/// A webhook after its secret was rotated: the new secret is shown this once.
#[derive(Serialize, ToSchema)]
pub struct RotatedWebhook {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_ms: i64,
    pub failing_since_ms: Option<i64>,
    pub cursor: i64,
    pub secret: String,
    /// Until when the previous secret signs too (a second `v1=` in the signature header).
    pub previous_secret_expires_ms: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookDelivery {
    pub time_ms: i64,
    pub events: i64,
    pub first_event: i64,
    pub last_event: i64,
    /// The endpoint's HTTP status, if it answered.
    pub status: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<WebhookDelivery>,
}

/// A message of the caller's tenant: while queued, from the queue; afterwards, from its
/// events.
#[derive(Serialize, ToSchema)]
pub struct MessageStatus {
    pub id: String,
    /// `queued`, `scheduled` before its send_at, or `done` once it left the queue.
    pub status: String,
    pub from: Option<String>,
    pub received_ms: Option<i64>,
    pub recipients: Vec<RecipientState>,
    /// Its events, oldest first.
    pub events: Vec<Event>,
    pub send_at_ms: Option<u64>,
    pub custom_id: Option<String>,
    pub metadata: Option<std::collections::BTreeMap<String, String>>,
    pub tags: Option<Vec<String>>,
    pub event_payload: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct FieldError {
    pub message: String,
    /// JSON path of the offending field, when one is at fault.
    pub field: Option<String>,
    pub help: Option<String>,
}

/// Every error answer.
#[derive(Serialize, ToSchema)]
pub struct Errors {
    pub errors: Vec<FieldError>,
}

#[derive(Serialize, ToSchema)]
pub struct DnsRecord {
    pub name: String,
    /// `TXT` or `MX`.
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    pub purpose: String,
}

#[derive(Serialize, ToSchema)]
pub struct Domain {
    pub domain: String,
    pub selector: String,
    /// `rsa` or `ed25519`.
    pub algorithm: String,
    pub created_ms: i64,
    /// What to publish in DNS: DKIM key, SPF, DMARC, return path.
    pub records: Vec<DnsRecord>,
}

#[derive(Serialize, ToSchema)]
pub struct DomainList {
    pub domains: Vec<Domain>,
}

#[derive(Serialize, ToSchema)]
pub struct NewDomain {
    #[schema(
        pattern = r"^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?)+$",
        example = "mail.example.org"
    )]
    pub domain: String,
    /// `rsa` (2048 bits, the default) or `ed25519`.
    #[schema(pattern = "^(rsa|ed25519)$")]
    pub algorithm: Option<String>,
    /// DKIM selector; default `ts<year><month>`.
    #[schema(pattern = "^[a-z0-9_-]{1,20}$")]
    pub selector: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Key {
    /// The public part, `tsb_<12 hex>`.
    pub id: String,
    pub name: String,
    /// Any of `send`, `read`, `manage`.
    pub scopes: Vec<String>,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<Key>,
}

#[derive(Serialize, ToSchema)]
pub struct NewKey {
    #[schema(pattern = "^[a-z0-9_-]{1,20}$")]
    pub name: Option<String>,
    /// Default `["send"]`.
    pub scopes: Option<Vec<String>>,
}

/// A key just made: the token is shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
    pub token: String,
}

#[derive(Serialize, ToSchema)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub rate_per_sec: Option<i64>,
    pub daily_quota: Option<i64>,
    pub sent_today: i64,
}

/// What every management call may answer besides its own outcomes.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum ManageFailures {
    #[response(status = 401, description = "No or unknown key")]
    Unauthorized(Errors),
    #[response(status = 403, description = "Key without the manage scope")]
    Forbidden(Errors),
    #[response(status = 503, description = "Control plane unavailable")]
    Unavailable(Errors),
}

/// What every reading call may answer besides its own outcomes.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum ReadFailures {
    #[response(status = 401, description = "No or unknown key")]
    Unauthorized(Errors),
    #[response(status = 403, description = "Key without the read scope")]
    Forbidden(Errors),
    #[response(status = 503, description = "Control plane unavailable")]
    Unavailable(Errors),
}

#[utoipa::path(post, path = "/v1/messages", tag = "send",
    request_body = SendRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retried request with the same key is answered the same and sends nothing again")),
    responses(
        (status = 200, description = "Every message is on disk", body = SendResponse),
        (status = 400, description = "Invalid request; each error names its field", body = Errors),
        (status = 401, description = "No or unknown key", body = Errors),
        (status = 403, description = "Key without the send scope, or a From domain the account has not added", body = Errors),
        (status = 409, description = "The Idempotency-Key is in use by a request still running", body = Errors),
        (status = 413, description = "Body over 25 MiB"),
        (status = 422, description = "The Idempotency-Key was used for a different request", body = Errors),
        (status = 429, description = "Rate limit or daily quota; see Retry-After", body = Errors),
        (status = 503, description = "Storage unavailable; retry", body = Errors),
    ))]
#[allow(dead_code)]
fn send_messages() {}

#[utoipa::path(get, path = "/v1/messages/{id}", tag = "send",
    params(("id" = String, Path, description = "Message id")),
    responses(
        (status = 200, description = "The message and its events", body = MessageStatus),
        (status = 404, description = "Unknown, or another account's", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
fn message_status() {}

#[utoipa::path(get, path = "/v1/domains", tag = "manage",
    responses(
        (status = 200, description = "The account's sending domains", body = DomainList),
        ManageFailures,
    ))]
#[allow(dead_code)]
fn list_domains() {}

#[utoipa::path(post, path = "/v1/domains", tag = "manage", request_body = NewDomain,
    responses(
        (status = 201, description = "Added, with its DKIM key; publish the records", body = Domain),
        (status = 400, description = "Invalid request", body = Errors),
        (status = 409, description = "Already added, here or by another account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
fn add_domain() {}

#[utoipa::path(get, path = "/v1/domains/{domain}", tag = "manage",
    params(("domain" = String, Path)),
    responses(
        (status = 200, description = "The domain and its records", body = Domain),
        (status = 404, description = "Not a domain of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
fn get_domain() {}

#[utoipa::path(delete, path = "/v1/domains/{domain}", tag = "manage",
    params(("domain" = String, Path)),
    responses(
        (status = 204, description = "Removed; mail from it is refused from now on"),
        (status = 404, description = "Not a domain of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
fn remove_domain() {}

#[utoipa::path(get, path = "/v1/keys", tag = "manage",
    responses(
        (status = 200, description = "The account's keys, revoked ones included; never a secret", body = KeyList),
        ManageFailures,
    ))]
#[allow(dead_code)]
fn list_keys() {}

#[utoipa::path(post, path = "/v1/keys", tag = "manage", request_body = NewKey,
    responses(
        (status = 201, description = "Made; the token is shown this once", body = CreatedKey),
        (status = 400, description = "Invalid request", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
fn add_key() {}

#[utoipa::path(get, path = "/v1/keys/{id}", tag = "manage",
    params(("id" = String, Path, description = "The key's public part, tsb_<12 hex>")),
    responses(
        (status = 200, description = "The key", body = Key),
        (status = 404, description = "Not a key of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
fn get_key() {}

#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "manage",
    params(("id" = String, Path, description = "The key's public part, tsb_<12 hex>")),
    responses(
        (status = 204, description = "Revoked at once"),
        (status = 404, description = "Not a live key of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
fn revoke_key() {}

#[utoipa::path(get, path = "/v1/account", tag = "manage",
    responses(
        (status = 200, description = "The calling account, its limits and today's count", body = Account),
        ReadFailures,
    ))]
#[allow(dead_code)]
fn account() {}

#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(
        ("type" = Option<String>, Query, description = "Comma-separated event types"),
        ("from" = Option<String>, Query, description = "Unix ms or RFC 3339, inclusive"),
        ("to" = Option<String>, Query, description = "Unix ms or RFC 3339, exclusive"),
        ("recipient" = Option<String>, Query),
        ("message_id" = Option<String>, Query),
        ("custom_id" = Option<String>, Query),
        ("tag" = Option<String>, Query),
        ("after" = Option<String>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
    ),
    responses(
        (status = 200, description = "Events, oldest first", body = EventPage),
        (status = 400, description = "Invalid parameter", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
fn list_events() {}

#[utoipa::path(get, path = "/v1/messages", tag = "events",
    params(
        ("custom_id" = Option<String>, Query, description = "Messages with this custom id"),
        ("recipient" = Option<String>, Query, description = "Messages sent to this address"),
    ),
    responses(
        (status = 200, description = "The messages, each with its events", body = FoundMessages),
        (status = 400, description = "Neither parameter, or an unknown one", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
fn find_messages() {}

#[utoipa::path(get, path = "/v1/suppressions", tag = "events",
    params(
        ("after" = Option<String>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
    ),
    responses(
        (status = 200, description = "Suppressed addresses by address", body = SuppressionPage),
        (status = 400, description = "Invalid parameter", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
fn list_suppressions() {}

#[utoipa::path(post, path = "/v1/suppressions", tag = "events", request_body = NewSuppressions,
    responses(
        (status = 200, description = "Added (existing ones keep their reason)", body = AddedSuppressions),
        (status = 400, description = "Invalid request", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
fn add_suppressions() {}

#[utoipa::path(get, path = "/v1/suppressions/{address}", tag = "events",
    params(("address" = String, Path)),
    responses(
        (status = 200, description = "Suppressed", body = Suppression),
        (status = 404, description = "Not suppressed", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
fn get_suppression() {}

#[utoipa::path(delete, path = "/v1/suppressions/{address}", tag = "events",
    params(("address" = String, Path)),
    responses(
        (status = 204, description = "Mail to it is sent again"),
        (status = 404, description = "Not suppressed", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
fn remove_suppression() {}

#[utoipa::path(get, path = "/v1/webhooks", tag = "events",
    responses(
        (status = 200, description = "The account's webhook endpoints", body = WebhookList),
        ManageFailures,
    ))]
#[allow(dead_code)]
fn list_webhooks() {}

#[utoipa::path(post, path = "/v1/webhooks", tag = "events", request_body = NewWebhook,
    responses(
        (status = 201, description = "Added; it receives events recorded from now on", body = CreatedWebhook),
        (status = 400, description = "Invalid request, or a URL that resolves to a private address", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
fn add_webhook() {}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "events",
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "Not an endpoint of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
fn remove_webhook() {}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "events",
    params(("id" = String, Path), ("limit" = Option<u32>, Query, description = "1 to 1000, default 100")),
    responses(
        (status = 200, description = "Delivery attempts, newest first", body = DeliveryList),
        (status = 400, description = "Invalid parameter", body = Errors),
        (status = 404, description = "Not an endpoint of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
fn webhook_deliveries() {}

#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "events",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "A test batch (`\"test\": true`, sample events with id 0) was posted; the attempt as logged, whatever the endpoint answered", body = WebhookDelivery),
        (status = 404, description = "Not an endpoint of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
fn test_webhook() {}

#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate", tag = "events",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "A new signing secret, shown this once; the previous one keeps signing beside it for 24 h", body = RotatedWebhook),
        (status = 404, description = "Not an endpoint of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
fn rotate_webhook() {}

#[utoipa::path(get, path = "/v1/unsubscribe/{token}", tag = "events", security(()),
    params(("token" = String, Path, description = "From a message's List-Unsubscribe")),
    responses(
        (status = 200, description = "A page with the unsubscribe button", content_type = "text/html", body = String),
        (status = 404, description = "Not a link of this server", content_type = "text/html", body = String),
    ))]
#[allow(dead_code)]
fn unsubscribe_page() {}

#[utoipa::path(post, path = "/v1/unsubscribe/{token}", tag = "events", security(()),
    params(("token" = String, Path, description = "From a message's List-Unsubscribe")),
    responses(
        (status = 200, description = "Unsubscribed (RFC 8058 one-click)", content_type = "text/html", body = String),
        (status = 404, description = "Not a link of this server, or no such recipient", content_type = "text/html", body = String),
        (status = 503, description = "Could not be recorded; try again", content_type = "text/html", body = String),
    ))]
#[allow(dead_code)]
fn unsubscribe_confirm() {}

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tsb_<id>_<secret>")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "tsubame API", description = "Native send API and account management. Mailjet v3.1 (`POST /v3.1/send`) and SendGrid v3 (`POST /v3/mail/send`) compatible endpoints follow those services' own documentation."),
    paths(send_messages, message_status, list_domains, add_domain, get_domain, remove_domain,
          list_keys, add_key, get_key, revoke_key, account, list_events, find_messages, list_suppressions,
          add_suppressions, get_suppression, remove_suppression, list_webhooks, add_webhook,
          remove_webhook, webhook_deliveries, test_webhook, rotate_webhook, unsubscribe_page, unsubscribe_confirm,
          crate::contacts::openapi::list_properties, crate::contacts::openapi::add_property,
          crate::contacts::openapi::remove_property, crate::contacts::openapi::list_contacts,
          crate::contacts::openapi::upsert_contacts, crate::contacts::openapi::get_contact,
          crate::contacts::openapi::remove_contact, crate::contacts::openapi::list_lists,
          crate::contacts::openapi::add_list, crate::contacts::openapi::get_list,
          crate::contacts::openapi::remove_list, crate::contacts::openapi::list_members,
          crate::contacts::openapi::add_members, crate::contacts::openapi::remove_members,
          crate::contacts::openapi::preview_segment, crate::contacts::openapi::list_segments,
          crate::contacts::openapi::save_segment, crate::contacts::openapi::get_segment,
          crate::contacts::openapi::remove_segment, crate::contacts::openapi::upload_import,
          crate::contacts::openapi::list_imports, crate::contacts::openapi::get_import,
          crate::contacts::openapi::import_errors, crate::contacts::openapi::export_contacts,
          crate::contacts::openapi::set_list_confirmation, crate::contacts::openapi::clear_list_confirmation,
          crate::contacts::openapi::subscribe_form,
          crate::contacts::openapi::confirm_page, crate::contacts::openapi::confirm_subscription,
          crate::contacts::openapi::list_templates, crate::contacts::openapi::add_template,
          crate::contacts::openapi::get_template, crate::contacts::openapi::remove_template,
          crate::contacts::openapi::add_template_version,
          crate::contacts::openapi::activate_template_version,
          crate::contacts::openapi::update_template_version,
          crate::contacts::openapi::preview_template_version,
          crate::campaigns::openapi::list_campaigns, crate::campaigns::openapi::add_campaign,
          crate::campaigns::openapi::get_campaign, crate::campaigns::openapi::update_campaign,
          crate::campaigns::openapi::test_campaign, crate::campaigns::openapi::send_campaign,
          crate::campaigns::openapi::unschedule_campaign, crate::campaigns::openapi::pause_campaign,
          crate::campaigns::openapi::resume_campaign, crate::campaigns::openapi::cancel_campaign,
          crate::campaigns::openapi::decide_campaign_winner,
          crate::campaigns::openapi::campaign_report, crate::campaigns::openapi::campaign_report_csv),
    modifiers(&BearerKey),
    security(("api_key" = [])),
)]
struct ApiDoc;

/// The document, as served.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_lists_every_native_and_management_operation() {
        let doc: serde_json::Value = serde_json::from_str(&super::document()).expect("json");
        let paths = doc["paths"].as_object().expect("paths");
        for (path, method) in [
            ("/v1/messages", "post"),
            ("/v1/messages/{id}", "get"),
            ("/v1/domains", "get"),
            ("/v1/domains", "post"),
            ("/v1/domains/{domain}", "delete"),
            ("/v1/keys/{id}", "delete"),
            ("/v1/account", "get"),
        ] {
            assert!(paths[path].get(method).is_some(), "{method} {path}");
        }
        assert!(doc["components"]["schemas"]["OutgoingMessage"].is_object());
    }
}
