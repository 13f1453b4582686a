//! The sender-facing record: events per message and recipient, suppression lists, and
//! webhook endpoints with their delivery logs. A trait of its own beside [`ControlStore`]
//! (crate::ControlStore), with the same rule: everything is addressed with its tenant.

use std::future::Future;

use crate::StoreError;

/// What happened. The vocabulary leaves room for engagement and feedback events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Accepted,
    Delivered,
    Deferred,
    Bounced,
    Expired,
    Suppressed,
    Opened,
    Clicked,
    Unsubscribed,
    Complained,
}

impl EventKind {
    pub const ALL: [EventKind; 10] = [
        EventKind::Accepted,
        EventKind::Delivered,
        EventKind::Deferred,
        EventKind::Bounced,
        EventKind::Expired,
        EventKind::Suppressed,
        EventKind::Opened,
        EventKind::Clicked,
        EventKind::Unsubscribed,
        EventKind::Complained,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Accepted => "accepted",
            EventKind::Delivered => "delivered",
            EventKind::Deferred => "deferred",
            EventKind::Bounced => "bounced",
            EventKind::Expired => "expired",
            EventKind::Suppressed => "suppressed",
            EventKind::Opened => "opened",
            EventKind::Clicked => "clicked",
            EventKind::Unsubscribed => "unsubscribed",
            EventKind::Complained => "complained",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// An event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub tenant_id: String,
    pub time_ms: i64,
    pub kind: EventKind,
    pub message_id: String,
    pub recipient: String,
    pub custom_id: Option<String>,
    /// JSON array text.
    pub tags: Option<String>,
    /// JSON object text.
    pub detail: Option<String>,
}

/// A recorded event; `id` orders them and is the pagination cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: i64,
    pub event: NewEvent,
}

/// Which events to list, oldest first from `after_id` (or newest first before `before_id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Empty: every kind.
    pub kinds: Vec<EventKind>,
    pub message_id: Option<String>,
    pub recipient: Option<String>,
    pub custom_id: Option<String>,
    pub tag: Option<String>,
    /// Only events with a larger id (the cursor of the previous page).
    pub after_id: Option<i64>,
    /// Only events with a smaller id (paging back through newest-first lists).
    pub before_id: Option<i64>,
    /// Newest first (the console's activity), instead of oldest first (webhooks, the API).
    pub newest_first: bool,
    pub limit: u32,
}

/// Why an address is suppressed.
pub const SUPPRESSION_REASONS: &[&str] = &["manual", "bounce", "complaint", "unsubscribe"];

/// A suppressed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub address: String,
    /// `bounce`, `complaint`, `unsubscribe` or `manual`.
    pub reason: String,
    pub created_ms: i64,
}

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    /// The HMAC-SHA256 key payloads are signed with (shown to the tenant; not a credential
    /// to this server).
    pub secret: String,
    /// Empty: every kind.
    pub kinds: Vec<EventKind>,
    /// The last event id delivered or given up on.
    pub cursor: i64,
    pub created_ms: i64,
    /// Since when deliveries have been failing, if they are.
    pub failing_since_ms: Option<i64>,
    /// The secret before the last rotation and until when it still signs (beside
    /// `secret`), so receivers can switch without refusing a delivery.
    pub previous_secret: Option<(String, i64)>,
}

impl Webhook {
    /// The secrets payloads are signed with at `now_ms`: the current one first.
    pub fn signing_secrets(&self, now_ms: i64) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let Some((previous, until)) = &self.previous_secret
            && now_ms < *until
        {
            secrets.push(previous);
        }
        secrets
    }
}

/// One attempt to deliver a batch to a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub time_ms: i64,
    pub events: i64,
    pub first_event: i64,
    pub last_event: i64,
    /// The HTTP status, if an answer came.
    pub status: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// Events, suppressions and webhooks.
pub trait EventStore: Send + Sync {
    /// Records events in one transaction.
    fn add_events(
        &self,
        events: &[NewEvent],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A tenant's events matching `filter`, by id.
    fn events(
        &self,
        tenant_id: &str,
        filter: &EventFilter,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;
    /// A tenant's rollup rows with slots from `from_ms` to `to_ms`, by slot; one sending
    /// domain's only when `domain` is given.
    fn rollup(
        &self,
        tenant_id: &str,
        resolution: crate::rollups::Resolution,
        from_ms: i64,
        to_ms: i64,
        domain: Option<&str>,
    ) -> impl Future<Output = Result<Vec<crate::rollups::RollupRow>, StoreError>> + Send;
    /// A tenant's accept→delivered latency histogram over a period: (bucket, count).
    fn latency_histogram(
        &self,
        tenant_id: &str,
        resolution: crate::rollups::Resolution,
        from_ms: i64,
        to_ms: i64,
    ) -> impl Future<Output = Result<Vec<(i64, i64)>, StoreError>> + Send;
    /// Forgets events older than `before_ms`; returns how many.
    fn purge_events(&self, before_ms: i64) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The largest event id so far (0 when none).
    fn last_event_id(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Which of `addresses` the tenant suppresses (lower-cased).
    fn suppressed(
        &self,
        tenant_id: &str,
        addresses: &[String],
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Adds addresses (address, reason); existing ones keep their first reason. Returns how
    /// many were new.
    fn add_suppressions(
        &self,
        tenant_id: &str,
        entries: &[(String, String)],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// One suppressed address of the tenant.
    fn suppression(
        &self,
        tenant_id: &str,
        address: &str,
    ) -> impl Future<Output = Result<Option<Suppression>, StoreError>> + Send;
    fn remove_suppression(
        &self,
        tenant_id: &str,
        address: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// A page of the tenant's suppressions by address, after `after`.
    fn suppressions(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Suppression>, StoreError>> + Send;

    /// Adds an endpoint; it receives events recorded from now on.
    fn add_webhook(
        &self,
        tenant_id: &str,
        url: &str,
        kinds: &[EventKind],
    ) -> impl Future<Output = Result<Webhook, StoreError>> + Send;
    fn webhooks(
        &self,
        tenant_id: &str,
    ) -> impl Future<Output = Result<Vec<Webhook>, StoreError>> + Send;
    /// Every tenant's endpoints, for the dispatcher.
    fn all_webhooks(&self) -> impl Future<Output = Result<Vec<Webhook>, StoreError>> + Send;
    fn remove_webhook(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Moves an endpoint's cursor and failure state.
    /// Gives a tenant's endpoint a new secret; the old one keeps signing for `overlap_ms`.
    /// `None`: the tenant has no such endpoint.
    fn rotate_webhook_secret(
        &self,
        tenant_id: &str,
        id: &str,
        overlap_ms: i64,
    ) -> impl Future<Output = Result<Option<Webhook>, StoreError>> + Send;
    fn set_webhook_state(
        &self,
        id: &str,
        cursor: i64,
        failing_since_ms: Option<i64>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn add_webhook_delivery(
        &self,
        id: &str,
        delivery: &WebhookDelivery,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The newest deliveries of one of the tenant's endpoints, newest first; `None` when the
    /// tenant has no such endpoint.
    fn webhook_deliveries(
        &self,
        tenant_id: &str,
        id: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Option<Vec<WebhookDelivery>>, StoreError>> + Send;
}

pub(crate) fn kinds_text(kinds: &[EventKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn kinds_from(text: &str) -> Vec<EventKind> {
    text.split(',').filter_map(EventKind::parse).collect()
}

pub(crate) fn new_secret() -> String {
    format!("whsec_{}", random_hex(32))
}

pub(crate) fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}
