//! Reading the audience's rows, and the small checks and lookups the store's operations
//! share.

use rand::RngCore;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::audience::{
    Consent, Contact, ContactList, ListConfirmation, MemberStatus, Membership, PropertyDef,
    PropertyKind, SavedSegment,
};
use crate::{SqliteStore, StoreError};

pub(super) fn invalid(field: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field,
        reason: reason.into(),
    }
}

pub(super) fn property_from(row: &SqliteRow) -> Result<PropertyDef, StoreError> {
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
        other => return Err(invalid("kind", format!("stored kind {other:?} is unknown"))),
    };
    Ok(PropertyDef {
        name: row.try_get("name")?,
        kind,
        created_ms: row.try_get("created_ms")?,
    })
}

pub(crate) fn contact_from(row: &SqliteRow) -> Result<Contact, StoreError> {
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

pub(super) fn list_from(row: &SqliteRow) -> Result<ContactList, StoreError> {
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

pub(super) fn membership_from(row: &SqliteRow) -> Result<Membership, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(Membership {
        list_id: row.try_get("list_id")?,
        contact_id: row.try_get("contact_id")?,
        status: MemberStatus::parse(&status)
            .ok_or_else(|| invalid("status", format!("stored status {status:?} is unknown")))?,
        consent: Consent {
            source: row.try_get("source")?,
            time_ms: row.try_get("consent_ms")?,
            address: row.try_get("consent_address")?,
            confirmed_ms: row.try_get("confirmed_ms")?,
        },
        updated_ms: row.try_get("updated_ms")?,
    })
}

/// A fresh id: `prefix` and 64 random bits in hex.
pub(crate) fn new_id(prefix: &str) -> String {
    let mut raw = [0u8; 8];
    rand::rng().fill_bytes(&mut raw);
    std::iter::once(prefix.to_string())
        .chain(raw.iter().map(|b| format!("{b:02x}")))
        .collect()
}

/// A row of a tenant's `table` (`contact_lists` or `segments`) by id, or else by name.
pub(super) async fn by_id_or_name(
    store: &SqliteStore,
    table: &'static str,
    tenant_id: &str,
    key: &str,
) -> Result<Option<SqliteRow>, StoreError> {
    Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM {table} WHERE tenant_id = ?1 AND (id = ?2 OR name = ?2) \
         ORDER BY id = ?2 DESC LIMIT 1"
    )))
    .bind(tenant_id)
    .bind(key)
    .fetch_optional(&store.pool)
    .await?)
}

pub(super) fn segment_from(row: &SqliteRow) -> Result<SavedSegment, StoreError> {
    Ok(SavedSegment {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        query: row.try_get("query")?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
    })
}

pub(super) fn check_property_name(name: &str) -> Result<(), StoreError> {
    let mut chars = name.chars();
    let starts = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !(starts && rest && name.len() <= 64) {
        return Err(invalid(
            "name",
            "a letter, then lower-case letters, digits or _ (at most 64)",
        ));
    }
    if matches!(
        name,
        "id" | "address" | "email" | "timezone" | "locale" | "country" | "created" | "updated"
    ) {
        return Err(invalid("name", format!("{name} is a contact's own field")));
    }
    Ok(())
}
