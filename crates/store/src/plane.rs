//! The control plane a node runs on: SQLite on its own disk (one node, the default) or a
//! PostgreSQL shared by every node of a cluster. Callers that must work on either (the
//! server, its operations runner, the command line) hold a [`ControlPlane`]; both stores
//! answer every trait the same way (`tests/control_suite`).
//!
//! Each trait method is passed to the store inside; the listing below is every trait's
//! methods as declared (a method added to a trait and not listed here fails to compile).

use std::future::Future;

use crate::alerts::*;
use crate::audience::*;
use crate::campaigns::*;
use crate::compat::*;
use crate::console::*;
use crate::events::*;
use crate::imports::*;
use crate::leases::*;
use crate::slo::*;
use crate::templates::*;
use crate::*;

#[derive(Clone, Debug)]
pub enum ControlPlane {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl ControlPlane {
    /// PostgreSQL at `postgres` when given (cluster mode), else SQLite at `sqlite`.
    pub async fn open(
        sqlite: &std::path::Path,
        postgres: Option<&str>,
    ) -> Result<ControlPlane, StoreError> {
        Ok(match postgres {
            Some(url) => ControlPlane::Postgres(PgStore::connect(url).await?),
            None => ControlPlane::Sqlite(SqliteStore::open(sqlite).await?),
        })
    }

    /// "sqlite" or "postgresql", for logs and status pages.
    pub fn kind(&self) -> &'static str {
        match self {
            ControlPlane::Sqlite(_) => "sqlite",
            ControlPlane::Postgres(_) => "postgresql",
        }
    }
}

/// Implements `$trait` for [`ControlPlane`] by passing each call to the store inside.
macro_rules! delegate {
    ($trait:ident { $( fn $name:ident(&self $(, $arg:ident : $ty:ty)* ) -> $out:ty; )* }) => {
        impl $trait for ControlPlane {
            $(
                fn $name(&self $(, $arg: $ty)*) -> impl Future<Output = $out> + Send {
                    async move {
                        match self {
                            ControlPlane::Sqlite(s) => s.$name($($arg),*).await,
                            ControlPlane::Postgres(s) => s.$name($($arg),*).await,
                        }
                    }
                }
            )*
        }
    };
}

delegate! {
    ControlStore {
        fn add_tenant(&self, name: &str) -> Result<Tenant, StoreError>;
        fn tenants(&self) -> Result<Vec<Tenant>, StoreError>;
        fn tenant(&self, id_or_name: &str) -> Result<Option<Tenant>, StoreError>;
        fn remove_tenant(&self, id: &str) -> Result<bool, StoreError>;
        fn set_tenant_limits(&self, id: &str, rate_per_sec: Option<i64>, daily_quota: Option<i64>) -> Result<(), StoreError>;
        fn set_tenant_suspended(&self, id: &str, reason: Option<&str>) -> Result<(), StoreError>;
        fn add_key(&self, tenant_id: &str, name: &str, scopes: Scopes) -> Result<NewKey, StoreError>;
        fn keys(&self, tenant_id: &str) -> Result<Vec<ApiKey>, StoreError>;
        fn revoke_key(&self, tenant_id: &str, key_id: &str) -> Result<bool, StoreError>;
        fn usage(&self, tenant_id: &str, day: i64) -> Result<i64, StoreError>;
        fn add_usage(&self, tenant_id: &str, day: i64, messages: i64) -> Result<(), StoreError>;
        fn begin_idempotent(&self, tenant_id: &str, key: &str, request_sha256: &[u8], retention_ms: i64) -> Result<Idempotent, StoreError>;
        fn finish_idempotent(&self, tenant_id: &str, key: &str, response: Option<&StoredResponse>) -> Result<(), StoreError>;
        fn add_domain(&self, domain: SendingDomain) -> Result<SendingDomain, StoreError>;
        fn domains(&self, tenant_id: &str) -> Result<Vec<SendingDomain>, StoreError>;
        fn sending_domain(&self, tenant_id: &str, domain: &str) -> Result<Option<SendingDomain>, StoreError>;
        fn domain_owner(&self, domain: &str) -> Result<Option<String>, StoreError>;
        fn remove_domain(&self, tenant_id: &str, domain: &str) -> Result<bool, StoreError>;
        fn authenticate(&self, token: &str) -> Result<Option<ApiKey>, StoreError>;
    }
}

delegate! {
    AudienceStore {
        fn add_property(&self, tenant_id: &str, name: &str, kind: &PropertyKind) -> Result<PropertyDef, StoreError>;
        fn properties(&self, tenant_id: &str) -> Result<Vec<PropertyDef>, StoreError>;
        fn remove_property(&self, tenant_id: &str, name: &str) -> Result<bool, StoreError>;
        fn upsert_contacts(&self, tenant_id: &str, contacts: &[ContactInput], existing: Existing) -> Result<Upserted, StoreError>;
        fn contact(&self, tenant_id: &str, id_or_address: &str) -> Result<Option<Contact>, StoreError>;
        fn contacts(&self, tenant_id: &str, query: &ContactQuery) -> Result<Vec<Contact>, StoreError>;
        fn contact_count(&self, tenant_id: &str) -> Result<i64, StoreError>;
        fn remove_contact(&self, tenant_id: &str, id: i64) -> Result<bool, StoreError>;
        fn add_list(&self, tenant_id: &str, name: &str, double_opt_in: bool) -> Result<ContactList, StoreError>;
        fn lists(&self, tenant_id: &str) -> Result<Vec<ContactList>, StoreError>;
        fn list(&self, tenant_id: &str, id_or_name: &str) -> Result<Option<ContactList>, StoreError>;
        fn public_list(&self, id: &str) -> Result<Option<(String, ContactList)>, StoreError>;
        fn set_list_confirmation(&self, tenant_id: &str, list_id: &str, confirmation: Option<&ListConfirmation>) -> Result<bool, StoreError>;
        fn rename_list(&self, tenant_id: &str, id: &str, name: &str) -> Result<bool, StoreError>;
        fn remove_list(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError>;
        fn set_members(&self, tenant_id: &str, list_id: &str, members: &[(i64, MemberStatus)], consent: &Consent) -> Result<ContactList, StoreError>;
        fn add_members(&self, tenant_id: &str, list_id: &str, members: &[(i64, MemberStatus)], consent: &Consent) -> Result<ContactList, StoreError>;
        fn remove_members(&self, tenant_id: &str, list_id: &str, contact_ids: &[i64]) -> Result<ContactList, StoreError>;
        fn members(&self, tenant_id: &str, list_id: &str, status: Option<MemberStatus>, after_id: Option<i64>, limit: u32) -> Result<Vec<(Contact, Membership)>, StoreError>;
        fn segment_count(&self, tenant_id: &str, condition: &Condition) -> Result<i64, StoreError>;
        fn segment_contacts(&self, tenant_id: &str, condition: &Condition, after_id: Option<i64>, limit: u32) -> Result<Vec<Contact>, StoreError>;
        fn save_segment(&self, tenant_id: &str, name: &str, query: &str) -> Result<SavedSegment, StoreError>;
        fn segments(&self, tenant_id: &str) -> Result<Vec<SavedSegment>, StoreError>;
        fn segment(&self, tenant_id: &str, id_or_name: &str) -> Result<Option<SavedSegment>, StoreError>;
        fn remove_segment(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError>;
        fn memberships(&self, tenant_id: &str, contact_id: i64) -> Result<Vec<Membership>, StoreError>;
    }
}

delegate! {
    CampaignStore {
        fn tracking_mode(&self, tenant_id: &str) -> Result<TrackingMode, StoreError>;
        fn set_tracking_mode(&self, tenant_id: &str, mode: TrackingMode) -> Result<bool, StoreError>;
        fn tenant_zone(&self, tenant_id: &str) -> Result<Option<String>, StoreError>;
        fn set_tenant_zone(&self, tenant_id: &str, zone: Option<&str>) -> Result<bool, StoreError>;
        fn add_campaign(&self, tenant_id: &str, draft: &CampaignDraft) -> Result<Campaign, StoreError>;
        fn campaign(&self, tenant_id: &str, id: &str) -> Result<Option<Campaign>, StoreError>;
        fn campaigns(&self, tenant_id: &str) -> Result<Vec<Campaign>, StoreError>;
        fn update_draft(&self, tenant_id: &str, id: &str, draft: &CampaignDraft) -> Result<bool, StoreError>;
        fn set_campaign_state(&self, tenant_id: &str, id: &str, next: CampaignState) -> Result<Campaign, StoreError>;
        fn fix_audience(&self, tenant_id: &str, id: &str, plan: &AudiencePlan) -> Result<i64, StoreError>;
        fn audience_count(&self, tenant_id: &str, plan: &AudiencePlan) -> Result<i64, StoreError>;
        fn campaigns_in_state(&self, state: CampaignState) -> Result<Vec<Campaign>, StoreError>;
        fn send_recipients(&self, campaign: &Campaign, from_seq: i64, limit: u32) -> Result<Vec<SendRecipient>, StoreError>;
        fn open_batch(&self, campaign_id: &str, first_seq: i64, end_seq: i64, message_ids: &[u128]) -> Result<(), StoreError>;
        fn commit_batch(&self, campaign_id: &str, first_seq: i64, spooled: i64, skipped: i64) -> Result<(), StoreError>;
        fn open_batches(&self) -> Result<Vec<OpenBatch>, StoreError>;
        fn batch_message_ids(&self, campaign_id: &str) -> Result<Vec<u128>, StoreError>;
        fn campaign_counts(&self, campaign_id: &str) -> Result<Vec<(String, String, i64)>, StoreError>;
        fn test_spooled(&self, campaign_id: &str, at_ms: i64) -> Result<(), StoreError>;
        fn decide_winner(&self, tenant_id: &str, campaign_id: &str, winner: i64, reason: &str) -> Result<bool, StoreError>;
        fn drop_batch(&self, campaign_id: &str, first_seq: i64) -> Result<(), StoreError>;
    }
}

delegate! {
    EventStore {
        fn add_events(&self, events: &[NewEvent]) -> Result<(), StoreError>;
        fn events(&self, tenant_id: &str, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError>;
        fn rollup(&self, tenant_id: &str, resolution: crate::rollups::Resolution, from_ms: i64, to_ms: i64, domain: Option<&str>) -> Result<Vec<crate::rollups::RollupRow>, StoreError>;
        fn latency_histogram(&self, tenant_id: &str, resolution: crate::rollups::Resolution, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, i64)>, StoreError>;
        fn purge_events(&self, before_ms: i64) -> Result<u64, StoreError>;
        fn last_event_id(&self) -> Result<i64, StoreError>;
        fn suppressed(&self, tenant_id: &str, addresses: &[String]) -> Result<Vec<String>, StoreError>;
        fn add_suppressions(&self, tenant_id: &str, entries: &[(String, String)]) -> Result<u64, StoreError>;
        fn suppression(&self, tenant_id: &str, address: &str) -> Result<Option<Suppression>, StoreError>;
        fn remove_suppression(&self, tenant_id: &str, address: &str) -> Result<bool, StoreError>;
        fn suppressions(&self, tenant_id: &str, after: Option<&str>, limit: u32) -> Result<Vec<Suppression>, StoreError>;
        fn add_webhook(&self, tenant_id: &str, url: &str, kinds: &[EventKind]) -> Result<Webhook, StoreError>;
        fn webhooks(&self, tenant_id: &str) -> Result<Vec<Webhook>, StoreError>;
        fn all_webhooks(&self) -> Result<Vec<Webhook>, StoreError>;
        fn remove_webhook(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError>;
        fn rotate_webhook_secret(&self, tenant_id: &str, id: &str, overlap_ms: i64) -> Result<Option<Webhook>, StoreError>;
        fn set_webhook_state(&self, id: &str, cursor: i64, failing_since_ms: Option<i64>) -> Result<(), StoreError>;
        fn add_webhook_delivery(&self, id: &str, delivery: &WebhookDelivery) -> Result<(), StoreError>;
        fn webhook_deliveries(&self, tenant_id: &str, id: &str, limit: u32) -> Result<Option<Vec<WebhookDelivery>>, StoreError>;
    }
}

delegate! {
    ConsoleStore {
        fn add_login(&self, email: &str, tenant_id: Option<&str>, role: Role, password_hash: &str) -> Result<Login, StoreError>;
        fn login(&self, email_or_id: &str) -> Result<Option<Login>, StoreError>;
        fn logins(&self, tenant_id: Option<&str>) -> Result<Vec<Login>, StoreError>;
        fn remove_login(&self, id: &str) -> Result<bool, StoreError>;
        fn set_password(&self, id: &str, password_hash: &str, keep: Option<&[u8]>) -> Result<bool, StoreError>;
        fn set_totp(&self, id: &str, secret: Option<&[u8]>) -> Result<(), StoreError>;
        fn set_display_name(&self, id: &str, name: &str) -> Result<(), StoreError>;
        fn set_role(&self, id: &str, role: Role) -> Result<(), StoreError>;
        fn set_locale(&self, id: &str, locale: Option<&str>) -> Result<(), StoreError>;
        fn add_session(&self, session: &Session) -> Result<(), StoreError>;
        fn session(&self, id_sha256: &[u8]) -> Result<Option<Session>, StoreError>;
        fn touch_session(&self, id_sha256: &[u8], seen_ms: i64) -> Result<(), StoreError>;
        fn remove_session(&self, id_sha256: &[u8]) -> Result<(), StoreError>;
        fn purge_sessions(&self, created_before_ms: i64, seen_before_ms: i64) -> Result<u64, StoreError>;
        fn audit(&self, tenant_id: Option<&str>, actor: &str, action: &str, target: &str, address: &str) -> Result<(), StoreError>;
        fn audit_log(&self, tenant_id: Option<&str>, before_id: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;
    }
}

delegate! {
    TemplateStore {
        fn add_template(&self, tenant_id: &str, name: &str, dialect: Dialect) -> Result<StoredTemplate, StoreError>;
        fn templates(&self, tenant_id: &str) -> Result<Vec<StoredTemplate>, StoreError>;
        fn template(&self, tenant_id: &str, id_or_name: &str) -> Result<Option<StoredTemplate>, StoreError>;
        fn remove_template(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError>;
        fn add_version(&self, tenant_id: &str, template_id: &str, content: &VersionContent, activate: bool) -> Result<TemplateVersion, StoreError>;
        fn update_version(&self, tenant_id: &str, template_id: &str, version: i64, content: &VersionContent) -> Result<bool, StoreError>;
        fn versions(&self, tenant_id: &str, template_id: &str) -> Result<Vec<TemplateVersion>, StoreError>;
        fn version(&self, tenant_id: &str, template_id: &str, version: i64) -> Result<Option<TemplateVersion>, StoreError>;
        fn activate_version(&self, tenant_id: &str, template_id: &str, version: i64) -> Result<bool, StoreError>;
        fn mark_version_used(&self, template_id: &str, version: i64) -> Result<(), StoreError>;
    }
}

delegate! {
    CompatStore {
        fn numbers(&self, tenant_id: &str, kind: CompatKind, object_ids: &[String]) -> Result<Vec<i64>, StoreError>;
        fn object(&self, tenant_id: &str, kind: CompatKind, number: i64) -> Result<Option<String>, StoreError>;
        fn add_job(&self, tenant_id: &str, kind: &str, result: &str) -> Result<i64, StoreError>;
        fn job(&self, tenant_id: &str, kind: &str, number: i64) -> Result<Option<String>, StoreError>;
    }
}

delegate! {
    ImportStore {
        fn add_import(&self, job: &NewImport) -> Result<ImportJob, StoreError>;
        fn import(&self, tenant_id: &str, id: &str) -> Result<Option<ImportJob>, StoreError>;
        fn imports(&self, tenant_id: &str) -> Result<Vec<ImportJob>, StoreError>;
        fn claim_import(&self, id: Option<&str>, owner: &str, lease_ms: i64) -> Result<Option<ImportJob>, StoreError>;
        fn import_batch(&self, id: &str, owner: &str, lease_ms: i64, batch: &ImportBatch) -> Result<Upserted, StoreError>;
        fn finish_import(&self, id: &str, owner: &str, failure: Option<&str>) -> Result<(), StoreError>;
        fn import_errors(&self, tenant_id: &str, id: &str, after_line: i64, limit: u32) -> Result<Vec<(i64, String)>, StoreError>;
    }
}

delegate! {
    OpsStore {
        fn save_alert(&self, alert: &AlertRecord, actions: &[AlertAction]) -> Result<(), StoreError>;
        fn add_alert_actions(&self, actions: &[AlertAction]) -> Result<(), StoreError>;
        fn open_alerts(&self) -> Result<Vec<AlertRecord>, StoreError>;
        fn alerts_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<AlertRecord>, StoreError>;
        fn alert(&self, id: &str) -> Result<Option<AlertRecord>, StoreError>;
        fn alert_actions(&self, id: &str) -> Result<Vec<AlertAction>, StoreError>;
        fn add_silence(&self, silence: &SilenceRecord) -> Result<(), StoreError>;
        fn silences(&self, now_ms: i64) -> Result<Vec<SilenceRecord>, StoreError>;
        fn expire_silence(&self, id: &str, now_ms: i64) -> Result<bool, StoreError>;
        fn save_report(&self, report: &ReportRecord) -> Result<bool, StoreError>;
        fn reports(&self) -> Result<Vec<ReportRecord>, StoreError>;
        fn report(&self, id: &str) -> Result<Option<ReportRecord>, StoreError>;
        fn add_ops_sample(&self, at_ms: i64, body: &str) -> Result<(), StoreError>;
        fn ops_samples(&self, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, String)>, StoreError>;
        fn purge_ops_samples(&self, before_ms: i64) -> Result<u64, StoreError>;
    }
}

delegate! {
    SloStore {
        fn save_slo_slots(&self, slots: &[SloSlot]) -> Result<(), StoreError>;
        fn slo_slots(&self, since_ms: i64) -> Result<Vec<SloSlot>, StoreError>;
        fn purge_slo_slots(&self, before_ms: i64) -> Result<u64, StoreError>;
    }
}

delegate! {
    LeaseStore {
        fn claim_lease(&self, name: &str, owner: &str, ttl_ms: i64) -> Result<bool, StoreError>;
        fn release_lease(&self, name: &str, owner: &str) -> Result<(), StoreError>;
    }
}
