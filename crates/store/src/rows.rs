//! Row readers shared by the SQLite and PostgreSQL stores: the same columns read from any
//! sqlx row, so a record is built one way whichever database holds it.

use std::collections::BTreeMap;

use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::alerts::{AlertRecord, ReportRecord};
use crate::audience::{
    Consent, Contact, ContactList, Existing, ListConfirmation, MemberStatus, Membership,
    PropertyDef, PropertyKind, SavedSegment,
};
use crate::campaigns::{AbProgress, Campaign, CampaignDraft, CampaignState, Progress};
use crate::imports::{ImportJob, ImportState};
use crate::keys::Scopes;
use crate::slo::SloSlot;
use crate::{ApiKey, SendingDomain, StoreError, Tenant};

fn text<R: Row>(r: &R, column: &str) -> Result<String, sqlx::Error>
where
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    r.try_get(column)
}

macro_rules! reader {
    ($(#[$doc:meta])* fn $name:ident($r:ident $(, $arg:ident: $ty:ty)*) -> $out:ty $body:block) => {
        $(#[$doc])*
        pub(crate) fn $name<R: Row>($r: &R $(, $arg: $ty)*) -> $out
        where
            for<'a> &'a str: ColumnIndex<R>,
            for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
            for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
            for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
        $body
    };
}

pub(crate) fn json_map(text: &str) -> BTreeMap<String, String> {
    serde_json::from_str(text).unwrap_or_default()
}

reader! {
    fn tenant(row) -> Result<Tenant, sqlx::Error> {
        Ok(Tenant {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            created_ms: row.try_get("created_ms")?,
            rate_per_sec: row.try_get("rate_per_sec")?,
            daily_quota: row.try_get("daily_quota")?,
            suspended: row.try_get("suspended_reason")?,
        })
    }
}

reader! {
    fn domain(row) -> Result<SendingDomain, sqlx::Error> {
        Ok(SendingDomain {
            domain: row.try_get("domain")?,
            tenant_id: row.try_get("tenant_id")?,
            selector: row.try_get("selector")?,
            algorithm: row.try_get("algorithm")?,
            private_key: row.try_get("private_key")?,
            public_key: row.try_get("public_key")?,
            created_ms: row.try_get("created_ms")?,
        })
    }
}

reader! {
    fn key(row) -> Result<ApiKey, StoreError> {
        let scopes: String = text(row, "scopes")?;
        Ok(ApiKey {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            name: row.try_get("name")?,
            scopes: Scopes::parse(&scopes)?,
            created_ms: row.try_get("created_ms")?,
            revoked_ms: row.try_get("revoked_ms")?,
            tenant_suspended: row.try_get("suspended_reason")?,
        })
    }
}

reader! {
    fn alert(r) -> Result<AlertRecord, StoreError> {
        let pair = |who: &str, at: &str| -> Result<Option<(String, i64)>, StoreError> {
            let who: Option<String> = r.try_get(who)?;
            let at: Option<i64> = r.try_get(at)?;
            Ok(who.zip(at))
        };
        let miss_reason: Option<String> = r.try_get("miss_reason")?;
        let miss_text: Option<String> = r.try_get("miss_text")?;
        Ok(AlertRecord {
            id: r.try_get("id")?,
            rule: r.try_get("rule")?,
            labels: json_map(&text(r, "labels")?),
            summary: r.try_get("summary")?,
            members: serde_json::from_str(&text(r, "members")?).unwrap_or_default(),
            priority: r.try_get("priority")?,
            level: r.try_get("level")?,
            triggered_ms: r.try_get("triggered_ms")?,
            acknowledged: pair("acknowledged_by", "acknowledged_ms")?,
            resolved: pair("resolved_by", "resolved_ms")?,
            cleared_ms: r.try_get("cleared_ms")?,
            silenced_by: r.try_get("silenced_by")?,
            refired: r.try_get("refired")?,
            miss: miss_reason.map(|m| (m, miss_text.unwrap_or_default())),
        })
    }
}

reader! {
    /// A report, with its body or (listings) without.
    fn report(r, body: bool) -> Result<ReportRecord, StoreError> {
        Ok(ReportRecord {
            id: r.try_get("id")?,
            kind: r.try_get("kind")?,
            period: r.try_get("period")?,
            created_ms: r.try_get("created_ms")?,
            content_type: r.try_get("content_type")?,
            body: if body { r.try_get("body")? } else { String::new() },
        })
    }
}

reader! {
    fn slo_slot(r) -> Result<SloSlot, StoreError> {
        Ok(SloSlot {
            slo: r.try_get("slo")?,
            grain_ms: r.try_get("grain_ms")?,
            slot: r.try_get("slot")?,
            good: r.try_get::<i64, _>("good")?.max(0) as u64,
            total: r.try_get::<i64, _>("total")?.max(0) as u64,
        })
    }
}

reader! {
    /// An event row (`SELECT * FROM events`).
    fn event(row) -> Result<crate::events::StoredEvent, sqlx::Error> {
        let kind: String = row.try_get("kind")?;
        Ok(crate::events::StoredEvent {
            id: row.try_get("id")?,
            event: crate::events::NewEvent {
                tenant_id: row.try_get("tenant_id")?,
                time_ms: row.try_get("time_ms")?,
                kind: crate::events::EventKind::parse(&kind).ok_or_else(|| {
                    sqlx::Error::Decode(format!("stored event kind {kind:?} is unknown").into())
                })?,
                message_id: row.try_get("message_id")?,
                recipient: row.try_get("recipient")?,
                custom_id: row.try_get("custom_id")?,
                tags: row.try_get("tags")?,
                detail: row.try_get("detail")?,
            },
        })
    }
}

reader! {
    /// A webhook row (`SELECT * FROM webhooks`).
    fn webhook(row) -> Result<crate::events::Webhook, sqlx::Error> {
        let kinds: String = row.try_get("kinds")?;
        Ok(crate::events::Webhook {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            url: row.try_get("url")?,
            secret: row.try_get("secret")?,
            kinds: crate::events::kinds_from(&kinds),
            cursor: row.try_get("cursor")?,
            created_ms: row.try_get("created_ms")?,
            failing_since_ms: row.try_get("failing_since_ms")?,
            previous_secret: match (
                row.try_get::<Option<String>, _>("previous_secret")?,
                row.try_get::<Option<i64>, _>("previous_until_ms")?,
            ) {
                (Some(secret), Some(until)) => Some((secret, until)),
                _ => None,
            },
        })
    }
}

reader! {
    fn suppression(row) -> Result<crate::events::Suppression, sqlx::Error> {
        Ok(crate::events::Suppression {
            address: row.try_get("address")?,
            reason: row.try_get("reason")?,
            created_ms: row.try_get("created_ms")?,
        })
    }
}

reader! {
    fn webhook_delivery(row) -> Result<crate::events::WebhookDelivery, sqlx::Error> {
        Ok(crate::events::WebhookDelivery {
            time_ms: row.try_get("time_ms")?,
            events: row.try_get("events")?,
            first_event: row.try_get("first_event")?,
            last_event: row.try_get("last_event")?,
            status: row.try_get("status")?,
            error: row.try_get("error")?,
            duration_ms: row.try_get("duration_ms")?,
        })
    }
}

reader! {
    fn login(row) -> Result<crate::console::Login, sqlx::Error> {
        let role: String = row.try_get("role")?;
        Ok(crate::console::Login {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            display_name: row.try_get("display_name")?,
            tenant_id: row.try_get("tenant_id")?,
            role: crate::console::Role::parse(&role).ok_or_else(|| {
                sqlx::Error::Decode(format!("stored role {role:?} is unknown").into())
            })?,
            password_hash: row.try_get("password_hash")?,
            totp_secret: row.try_get("totp_secret")?,
            locale: row.try_get("locale")?,
            created_ms: row.try_get("created_ms")?,
            password_changed_ms: row.try_get("password_changed_ms")?,
        })
    }
}

reader! {
    fn session(row) -> Result<crate::console::Session, sqlx::Error> {
        let pending: i64 = row.try_get("pending_second_factor")?;
        Ok(crate::console::Session {
            id_sha256: row.try_get("id_sha256")?,
            login_id: row.try_get("login_id")?,
            csrf: row.try_get("csrf")?,
            created_ms: row.try_get("created_ms")?,
            seen_ms: row.try_get("seen_ms")?,
            pending_second_factor: pending != 0,
            address: row.try_get("address")?,
        })
    }
}

reader! {
    fn audit_entry(row) -> Result<crate::console::AuditEntry, sqlx::Error> {
        Ok(crate::console::AuditEntry {
            id: row.try_get("id")?,
            time_ms: row.try_get("time_ms")?,
            tenant_id: row.try_get("tenant_id")?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            target: row.try_get("target")?,
            address: row.try_get("address")?,
        })
    }
}

reader! {
    fn template(row) -> Result<crate::templates::StoredTemplate, sqlx::Error> {
        let dialect: String = row.try_get("dialect")?;
        Ok(crate::templates::StoredTemplate {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            dialect: crate::templates::Dialect::parse(&dialect).ok_or_else(|| {
                sqlx::Error::Decode(format!("stored dialect {dialect:?} is unknown").into())
            })?,
            active_version: row.try_get("active_version")?,
            created_ms: row.try_get("created_ms")?,
        })
    }
}

reader! {
    fn template_version(row) -> Result<crate::templates::TemplateVersion, sqlx::Error> {
        Ok(crate::templates::TemplateVersion {
            version: row.try_get("version")?,
            content: crate::templates::VersionContent {
                subject: row.try_get("subject")?,
                html: row.try_get("html")?,
                text: row.try_get("text")?,
                test_data: row.try_get("test_data")?,
            },
            created_ms: row.try_get("created_ms")?,
            used_ms: row.try_get("used_ms")?,
        })
    }
}

// The audience.

fn stored_invalid(field: &'static str, reason: String) -> StoreError {
    StoreError::Invalid { field, reason }
}

reader! {
    fn property_from(row) -> Result<PropertyDef, StoreError> {
        let kind: String = row.try_get("kind")?;
        let choices: Option<String> = row.try_get("choices")?;
        let kind = match kind.as_str() {
            "text" => PropertyKind::Text,
            "number" => PropertyKind::Number,
            "datetime" => PropertyKind::DateTime,
            "boolean" => PropertyKind::Boolean,
            "choice" => PropertyKind::Choice(
                choices
                    .and_then(|c| serde_json::from_str(&c).ok())
                    .unwrap_or_default(),
            ),
            other => return Err(stored_invalid("kind", format!("stored kind {other:?} is unknown"))),
        };
        Ok(PropertyDef {
            name: row.try_get("name")?,
            kind,
            created_ms: row.try_get("created_ms")?,
        })
    }
}

reader! {
    fn contact_from(row) -> Result<Contact, StoreError> {
        let props: String = row.try_get("props")?;
        Ok(Contact {
            id: row.try_get("id")?,
            address: row.try_get("address")?,
            timezone: row.try_get("timezone")?,
            locale: row.try_get("locale")?,
            country: row.try_get("country")?,
            properties: serde_json::from_str(&props).unwrap_or_default(),
            created_ms: row.try_get("created_ms")?,
            updated_ms: row.try_get("updated_ms")?,
        })
    }
}

reader! {
    fn list_from(row) -> Result<ContactList, StoreError> {
        Ok(ContactList {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            double_opt_in: row.try_get::<i64, _>("double_opt_in")? != 0,
            subscribed: row.try_get("subscribed")?,
            unconfirmed: row.try_get("unconfirmed")?,
            unsubscribed: row.try_get("unsubscribed")?,
            created_ms: row.try_get("created_ms")?,
            confirmation: match (
                row.try_get::<Option<String>, _>("confirm_from")?,
                row.try_get::<Option<String>, _>("confirm_subject")?,
                row.try_get::<Option<String>, _>("confirm_text")?,
            ) {
                (Some(from), Some(subject), Some(text)) => Some(ListConfirmation {
                    from,
                    subject,
                    text,
                    redirect: row.try_get("form_redirect")?,
                }),
                _ => None,
            },
        })
    }
}

reader! {
    fn membership_from(row) -> Result<Membership, StoreError> {
        let status: String = row.try_get("status")?;
        Ok(Membership {
            list_id: row.try_get("list_id")?,
            contact_id: row.try_get("contact_id")?,
            status: MemberStatus::parse(&status)
                .ok_or_else(|| stored_invalid("status", format!("stored status {status:?} is unknown")))?,
            consent: Consent {
                source: row.try_get("source")?,
                time_ms: row.try_get("consent_ms")?,
                address: row.try_get("consent_address")?,
                confirmed_ms: row.try_get("confirmed_ms")?,
            },
            updated_ms: row.try_get("updated_ms")?,
        })
    }
}

reader! {
    fn segment_from(row) -> Result<SavedSegment, StoreError> {
        Ok(SavedSegment {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            query: row.try_get("query")?,
            created_ms: row.try_get("created_ms")?,
            updated_ms: row.try_get("updated_ms")?,
        })
    }
}

reader! {
    fn import_job(row) -> Result<ImportJob, StoreError> {
        let state: String = row.try_get("state")?;
        let existing: String = row.try_get("existing")?;
        let list_id: Option<String> = row.try_get("list_id")?;
        let list_status: Option<String> = row.try_get("list_status")?;
        Ok(ImportJob {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            file: row.try_get("file")?,
            name: row.try_get("name")?,
            encoding: row.try_get("encoding")?,
            mapping: row.try_get("mapping")?,
            existing: if existing == "keep" {
                Existing::Keep
            } else {
                Existing::Update
            },
            list: list_id.zip(list_status.as_deref().and_then(MemberStatus::parse)),
            state: ImportState::parse(&state).unwrap_or(ImportState::Failed),
            total_bytes: row.try_get("total_bytes")?,
            done_bytes: row.try_get("done_bytes")?,
            records_done: row.try_get("records_done")?,
            added: row.try_get("added")?,
            updated: row.try_get("updated")?,
            unchanged: row.try_get("unchanged")?,
            refused: row.try_get("refused")?,
            suppressed: row.try_get("suppressed")?,
            failure: row.try_get("failure")?,
            created_ms: row.try_get("created_ms")?,
            started_ms: row.try_get("started_ms")?,
            finished_ms: row.try_get("finished_ms")?,
        })
    }
}

reader! {
    fn campaign(row) -> Result<Campaign, StoreError> {
        let state: String = row.try_get("state")?;
        Ok(Campaign {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            state: CampaignState::parse(&state).ok_or_else(|| StoreError::Invalid {
                field: "state",
                reason: format!("stored state {state:?} is unknown"),
            })?,
            draft: CampaignDraft {
                name: row.try_get("name")?,
                audience: row.try_get("audience")?,
                content: row.try_get("content")?,
                schedule: row.try_get("schedule")?,
                rate_per_sec: row.try_get("rate_per_sec")?,
                send_window: row.try_get("send_window")?,
                ab_test: row.try_get("ab_test")?,
            },
            created_ms: row.try_get("created_ms")?,
            updated_ms: row.try_get("updated_ms")?,
            started_ms: row.try_get("started_ms")?,
            finished_ms: row.try_get("finished_ms")?,
            progress: Progress {
                recipients: row.try_get("recipients")?,
                cursor: row.try_get("cursor")?,
                spooled: row.try_get("spooled")?,
                skipped: row.try_get("skipped")?,
            },
            ab: AbProgress {
                test_end: row.try_get("test_end")?,
                decide_at_ms: row.try_get("decide_at_ms")?,
                winner: row.try_get("winner")?,
                winner_reason: row.try_get("winner_reason")?,
                decided_ms: row.try_get("decided_ms")?,
            },
        })
    }
}
