//! Reading the audience's rows on SQLite (the readers and checks both stores share are in
//! `crate::rows` and `crate::audience_checks`).

use sqlx::sqlite::SqliteRow;

pub(crate) use crate::audience_checks::{check_property_name, invalid, new_id};
pub(crate) use crate::rows::{
    contact_from, list_from, membership_from, property_from, segment_from,
};
use crate::{SqliteStore, StoreError};

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
