//! [`CompatStore`] on SQLite.

use crate::compat::{CompatKind, CompatStore};
use crate::{SqliteStore, StoreError, now_ms};

impl CompatStore for SqliteStore {
    async fn numbers(
        &self,
        tenant_id: &str,
        kind: CompatKind,
        object_ids: &[String],
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut out = Vec::with_capacity(object_ids.len());
        for object_id in object_ids {
            let number: i64 = sqlx::query_scalar(
                "INSERT INTO compat_numbers (tenant_id, kind, object_id) VALUES (?, ?, ?)
                 ON CONFLICT (tenant_id, kind, object_id) DO UPDATE SET kind = excluded.kind
                 RETURNING number",
            )
            .bind(tenant_id)
            .bind(kind.as_str())
            .bind(object_id)
            .fetch_one(&mut *tx)
            .await?;
            out.push(number);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn object(
        &self,
        tenant_id: &str,
        kind: CompatKind,
        number: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT object_id FROM compat_numbers WHERE number = ? AND tenant_id = ? AND kind = ?",
        )
        .bind(number)
        .bind(tenant_id)
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn add_job(&self, tenant_id: &str, kind: &str, result: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO compat_jobs (tenant_id, kind, result, created_ms) VALUES (?, ?, ?, ?)
             RETURNING number",
        )
        .bind(tenant_id)
        .bind(kind)
        .bind(result)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?)
    }

    async fn job(
        &self,
        tenant_id: &str,
        kind: &str,
        number: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT result FROM compat_jobs WHERE number = ? AND tenant_id = ? AND kind = ?",
        )
        .bind(number)
        .bind(tenant_id)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?)
    }
}
