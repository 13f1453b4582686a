//! The control plane: tenants, API keys, sending domains, and the sender-facing record
//! (events, suppressions, webhooks).
//!
//! Callers use the [`ControlStore`] trait; [`SqliteStore`] is the single-node implementation
//! and a PostgreSQL one can follow behind the same trait without touching callers.
//!
//! # Layout
//! - [`keys`]: the API key format, generation, hashing and scopes (no I/O).
//! - [`sqlite`]: the SQLite implementation (sqlx, runtime queries, embedded migrations).
//! - [`console`]: console logins, sessions and the audit log ([`ConsoleStore`]);
//!   [`sqlite_console`]: on SQLite.
//! - [`events`]: events, suppressions and webhooks ([`EventStore`]); [`sqlite_events`]: on
//!   SQLite.
//! - [`templates`]: stored message templates and their versions ([`TemplateStore`]);
//!   [`sqlite_templates`].
//! - [`imports`]: contact imports as durable jobs ([`ImportStore`]); [`sqlite_imports`].
//! - [`audience`]: contacts, property declarations, lists and memberships
//!   ([`AudienceStore`]); [`sqlite_audience`]: on SQLite.
//! - [`campaigns`]: campaigns, their drafts and states ([`CampaignStore`]);
//!   [`sqlite_campaigns`].
//! - [`compat`]: integer ids and job results for the compatible APIs ([`CompatStore`]);
//!   [`sqlite_compat`].

pub mod alerts;
pub mod audience;
mod audience_checks;
pub mod campaign_counts;
mod campaign_sql;
pub mod campaigns;
pub mod compat;
pub mod console;
pub mod events;
pub mod imports;
pub mod keys;
pub mod leases;
pub mod pg;
pub mod plane;
pub mod rollups;
mod rows;
mod segments_sql;
pub mod slo;
pub mod sqlite;
pub mod sqlite_alerts;
pub mod sqlite_audience;
pub mod sqlite_campaigns;
pub mod sqlite_compat;
pub mod sqlite_console;
pub mod sqlite_events;
pub mod sqlite_imports;
pub mod sqlite_slo;
pub mod sqlite_templates;
pub mod templates;

use std::future::Future;

pub use alerts::{AlertAction, AlertRecord, OpsStore, ReportRecord, SilenceRecord};
pub use audience::{
    AudienceStore, Condition, Consent, Contact, ContactInput, ContactList, ContactQuery, Existing,
    Field, ListConfirmation, MemberStatus, Membership, Op, Operand, PropertyDef, PropertyKind,
    SavedSegment, Upserted,
};
pub use campaigns::{
    AbProgress, AudiencePlan, Campaign, CampaignDraft, CampaignState, CampaignStore, OpenBatch,
    Progress, SendRecipient, TrackingMode,
};
pub use compat::{CompatKind, CompatStore};
pub use console::{AuditEntry, ConsoleStore, Login, Role, Session};
pub use events::{
    EventFilter, EventKind, EventStore, NewEvent, SUPPRESSION_REASONS, StoredEvent, Suppression,
    Webhook, WebhookDelivery,
};
pub use imports::{ImportBatch, ImportJob, ImportState, ImportStore, NewImport};
pub use keys::{KeyError, Scope, Scopes};
pub use leases::LeaseStore;
pub use pg::PgStore;
pub use plane::ControlPlane;
pub use slo::{SloSlot, SloStore};
pub use sqlite::SqliteStore;
pub use templates::{Dialect, StoredTemplate, TemplateStore, TemplateVersion, VersionContent};

/// A customer of the platform. Everything a tenant owns is invisible to other tenants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_ms: i64,
    /// Messages per second accepted from this tenant; `None`: no limit.
    pub rate_per_sec: Option<i64>,
    /// Messages per UTC day; `None`: no quota.
    pub daily_quota: Option<i64>,
    /// Why the platform suspended it (its mail is refused, saying so); `None`: active.
    pub suspended: Option<String>,
}

/// An API key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The public part of the key (`tsb_<id>_...`), for listing and revoking.
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub scopes: Scopes,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
    /// Why the key's tenant is suspended, as read with the key; `None`: active. Every
    /// ingress refuses a suspended tenant's key, saying so.
    pub tenant_suspended: Option<String>,
}

/// A key just made: the only time its full text exists outside the caller's hands.
#[derive(Debug)]
pub struct NewKey {
    pub key: ApiKey,
    /// `tsb_<id>_<secret>`: shown once, stored only as a hash.
    pub token: String,
}

/// A tenant's sending domain and its DKIM key.
#[derive(Clone, PartialEq, Eq)]
pub struct SendingDomain {
    /// Lower-case domain name.
    pub domain: String,
    pub tenant_id: String,
    /// DKIM selector (`<selector>._domainkey.<domain>`).
    pub selector: String,
    /// `rsa` or `ed25519`.
    pub algorithm: String,
    /// PKCS#8 DER; secret.
    pub private_key: Vec<u8>,
    /// Base64 public key as published in the DKIM record.
    pub public_key: String,
    pub created_ms: i64,
}

impl std::fmt::Debug for SendingDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key stays out of logs.
        f.debug_struct("SendingDomain")
            .field("domain", &self.domain)
            .field("tenant_id", &self.tenant_id)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A response kept for an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    /// Headers to send again (name, value); values never hold line breaks.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What an idempotency key says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotent {
    /// First time: go ahead, then call `finish_idempotent`.
    New,
    /// The same request was answered before: answer the same.
    Done(StoredResponse),
    /// The same key is being processed right now.
    InProgress,
    /// The key was used for a different request.
    Mismatch,
}

/// What can go wrong in the control plane.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another tenant holds this sending domain.
    #[error("the domain {0} belongs to another tenant")]
    DomainTaken(String),
    /// The tenant has this sending domain already.
    #[error("the domain {0} is already added")]
    DuplicateDomain(String),
    /// A tenant with this name exists already.
    #[error("a tenant named {0:?} exists already")]
    DuplicateTenant(String),
    /// No such tenant (or key) for this caller.
    #[error("not found: {0}")]
    NotFound(String),
    /// A name or value the store refuses.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The database was made by a newer tsubame.
    #[error("database schema version {found} is newer than this build knows ({known})")]
    SchemaTooNew { found: i64, known: i64 },
}

impl StoreError {
    /// The database could not be reached (down, restarting, network): trying again later
    /// may succeed, unlike a refused value or a broken row.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::Protocol(_)
            )
        ) || matches!(self, StoreError::Database(sqlx::Error::Database(db))
            if db.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08")))
    }
}

/// The control-plane operations. Every tenant-owned object is addressed together with its
/// tenant, so one tenant's id never reaches another's objects.
pub trait ControlStore: Send + Sync {
    /// Adds a tenant; names are unique, 1 to 64 characters of letters, digits, `.`, `_`, `-`.
    fn add_tenant(&self, name: &str) -> impl Future<Output = Result<Tenant, StoreError>> + Send;
    /// Every tenant, by name.
    fn tenants(&self) -> impl Future<Output = Result<Vec<Tenant>, StoreError>> + Send;
    /// A tenant by id or name.
    fn tenant(
        &self,
        id_or_name: &str,
    ) -> impl Future<Output = Result<Option<Tenant>, StoreError>> + Send;
    /// Removes a tenant and everything it owns. False when there was none.
    fn remove_tenant(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Sets a tenant's rate limit and daily quota (`None`: unlimited).
    fn set_tenant_limits(
        &self,
        id: &str,
        rate_per_sec: Option<i64>,
        daily_quota: Option<i64>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Suspends a tenant with a reason (its API keys and SMTP logins are refused, saying
    /// so) or reactivates it (`None`).
    fn set_tenant_suspended(
        &self,
        id: &str,
        reason: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Makes a key for a tenant.
    fn add_key(
        &self,
        tenant_id: &str,
        name: &str,
        scopes: Scopes,
    ) -> impl Future<Output = Result<NewKey, StoreError>> + Send;
    /// A tenant's keys, revoked ones included, oldest first.
    fn keys(&self, tenant_id: &str)
    -> impl Future<Output = Result<Vec<ApiKey>, StoreError>> + Send;
    /// Revokes one of a tenant's keys. False when the tenant has no such live key.
    fn revoke_key(
        &self,
        tenant_id: &str,
        key_id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Messages counted for a tenant on a UTC day (days since the Unix epoch).
    fn usage(
        &self,
        tenant_id: &str,
        day: i64,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// Adds to a tenant's count for a day.
    fn add_usage(
        &self,
        tenant_id: &str,
        day: i64,
        messages: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Claims an idempotency key for a request (by the SHA-256 of its body), or says how it
    /// was answered; keys older than `retention_ms` are forgotten.
    fn begin_idempotent(
        &self,
        tenant_id: &str,
        key: &str,
        request_sha256: &[u8],
        retention_ms: i64,
    ) -> impl Future<Output = Result<Idempotent, StoreError>> + Send;
    /// Records the answer to a claimed key, or (`None`) releases it so a retry may run.
    fn finish_idempotent(
        &self,
        tenant_id: &str,
        key: &str,
        response: Option<&StoredResponse>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Adds a sending domain (lower-cased) with its key to a tenant. A domain another tenant
    /// holds is refused.
    fn add_domain(
        &self,
        domain: SendingDomain,
    ) -> impl Future<Output = Result<SendingDomain, StoreError>> + Send;
    /// A tenant's sending domains, by name.
    fn domains(
        &self,
        tenant_id: &str,
    ) -> impl Future<Output = Result<Vec<SendingDomain>, StoreError>> + Send;
    /// One of the tenant's domains (case-insensitive), with its key.
    fn sending_domain(
        &self,
        tenant_id: &str,
        domain: &str,
    ) -> impl Future<Output = Result<Option<SendingDomain>, StoreError>> + Send;
    /// The tenant a sending domain belongs to, if any (for mail coming back to it).
    fn domain_owner(
        &self,
        domain: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Removes one of the tenant's domains. False when it has no such domain.
    fn remove_domain(
        &self,
        tenant_id: &str,
        domain: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The live key a presented token belongs to, if any.
    fn authenticate(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<Option<ApiKey>, StoreError>> + Send;
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
