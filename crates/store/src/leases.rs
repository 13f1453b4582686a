//! Leases on work a cluster does once ([`LeaseStore`]): one owner at a time, renewed by it,
//! taken by another once lapsed. Implemented here for both stores.

use std::future::Future;

use crate::pg::PgStore;
use crate::{SqliteStore, StoreError, now_ms};

pub trait LeaseStore: Send + Sync {
    /// Takes or renews the lease `name` for `owner` until `ttl_ms` from now. True when
    /// `owner` holds it now; false when another owner's lease still runs.
    fn claim_lease(
        &self,
        name: &str,
        owner: &str,
        ttl_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Gives the lease up (a node leaving), if `owner` holds it.
    fn release_lease(
        &self,
        name: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl LeaseStore for SqliteStore {
    async fn claim_lease(&self, name: &str, owner: &str, ttl_ms: i64) -> Result<bool, StoreError> {
        let now = now_ms();
        let held: Option<String> = sqlx::query_scalar(
            "INSERT INTO leases (name, owner, until_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms \
             WHERE leases.owner = excluded.owner OR leases.until_ms < ?4 RETURNING owner",
        )
        .bind(name)
        .bind(owner)
        .bind(now + ttl_ms)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(held.is_some())
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = ? AND owner = ?")
            .bind(name)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The database server's clock, in Unix milliseconds.
const PG_NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

impl LeaseStore for PgStore {
    async fn claim_lease(&self, name: &str, owner: &str, ttl_ms: i64) -> Result<bool, StoreError> {
        let held: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "INSERT INTO leases (name, owner, until_ms) VALUES ($1, $2, {PG_NOW_MS} + $3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms \
             WHERE leases.owner = excluded.owner OR leases.until_ms < {PG_NOW_MS} RETURNING owner"
        )))
        .bind(name)
        .bind(owner)
        .bind(ttl_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(held.is_some())
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
