//! Reading the audience's rows, and the small checks and lookups the store's operations
//! share.

use rand::RngCore;
use sqlx::sqlite::SqliteRow;

pub(crate) use crate::rows::{
    contact_from, list_from, membership_from, property_from, segment_from,
};
use crate::{SqliteStore, StoreError};

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field,
        reason: reason.into(),
    }
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
pub(crate) async fn by_id_or_name(
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

pub(crate) fn check_property_name(name: &str) -> Result<(), StoreError> {
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
