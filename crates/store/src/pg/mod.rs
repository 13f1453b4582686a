//! The control plane on PostgreSQL, for cluster mode: several nodes share one database
//! (its durability and failover are PostgreSQL's: synchronous replication to standbys).
//! The same store traits as [`crate::SqliteStore`], checked by one test suite run against
//! both (`tests/control_suite.rs`). Built up trait by trait: [`ControlStore`], [`SloStore`],
//! [`OpsStore`], [`EventStore`], [`ConsoleStore`], [`TemplateStore`], [`CompatStore`],
//! [`AudienceStore`], [`ImportStore`] and [`CampaignStore`]: every store trait.
//!
//! [`ControlStore`]: crate::ControlStore
//! [`AudienceStore`]: crate::AudienceStore
//! [`ImportStore`]: crate::ImportStore
//! [`CampaignStore`]: crate::CampaignStore
//! [`EventStore`]: crate::EventStore
//! [`ConsoleStore`]: crate::ConsoleStore
//! [`TemplateStore`]: crate::TemplateStore
//! [`CompatStore`]: crate::CompatStore
//! [`SloStore`]: crate::SloStore
//! [`OpsStore`]: crate::OpsStore

mod alerts;
mod audience;
mod campaigns;
mod compat;
mod console;
mod control;
mod events;
mod imports;
mod slo;
mod templates;

use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::StoreError;

/// Schema steps, in order; the `schema_version` table holds how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations_pg/0001_control.sql"),
    include_str!("../../migrations_pg/0002_slo_and_ops.sql"),
    include_str!("../../migrations_pg/0003_events.sql"),
    include_str!("../../migrations_pg/0004_console.sql"),
    include_str!("../../migrations_pg/0005_templates_compat.sql"),
    include_str!("../../migrations_pg/0006_audience.sql"),
    include_str!("../../migrations_pg/0007_campaigns.sql"),
    include_str!("../../migrations_pg/0008_leases.sql"),
];

/// Serialises migrations between nodes starting together (`pg_advisory_xact_lock` key).
const MIGRATION_LOCK: i64 = 0x7473_7562_616d_65; // "tsubame"

#[derive(Clone, Debug)]
pub struct PgStore {
    pub(crate) pool: PgPool,
}

impl PgStore {
    /// Connects (`postgres://user@host:port/db`) and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // A request fails (503) within this while the database is down.
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await?;
        let store = PgStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            .execute(&mut *tx)
            .await?;
        let version: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_version")
            .fetch_optional(&mut *tx)
            .await?;
        let version = version.unwrap_or(0);
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::SchemaTooNew {
                found: version,
                known,
            });
        }
        for sql in &MIGRATIONS[version as usize..] {
            sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM schema_version")
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
            .bind(known)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
