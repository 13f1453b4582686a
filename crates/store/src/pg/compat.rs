//! [`CompatStore`] on PostgreSQL (translated from the SQLite store; the same answers).

use std::collections::HashMap;

use sqlx::{Postgres, QueryBuilder, Row};

use crate::compat::{CompatKind, CompatStore};
use crate::pg::PgStore;
use crate::{StoreError, now_ms};

impl CompatStore for PgStore {
    async fn numbers(
        &self,
        tenant_id: &str,
        kind: CompatKind,
        object_ids: &[String],
    ) -> Result<Vec<i64>, StoreError> {
        // Read first: listing objects a client has seen before takes no write lock.
        let mut known: HashMap<String, i64> = HashMap::with_capacity(object_ids.len());
        for chunk in object_ids.chunks(500) {
            let mut q = QueryBuilder::<Postgres>::new(
                "SELECT object_id, number FROM compat_numbers WHERE tenant_id = ",
            );
            q.push_bind(tenant_id)
                .push(" AND kind = ")
                .push_bind(kind.as_str())
                .push(" AND object_id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id);
            }
            q.push(")");
            for row in q.build().fetch_all(&self.pool).await? {
                known.insert(row.try_get("object_id")?, row.try_get("number")?);
            }
        }
        let missing: Vec<&String> = object_ids
            .iter()
            .filter(|id| !known.contains_key(*id))
            .collect();
        if !missing.is_empty() {
            let mut tx = self.pool.begin().await?;
            for object_id in missing {
                // Another request may have numbered it since the read: keep its number.
                let number: i64 = sqlx::query_scalar(
                    "INSERT INTO compat_numbers (tenant_id, kind, object_id) VALUES ($1, $2, $3)
                     ON CONFLICT (tenant_id, kind, object_id) DO UPDATE SET kind = excluded.kind
                     RETURNING number",
                )
                .bind(tenant_id)
                .bind(kind.as_str())
                .bind(object_id)
                .fetch_one(&mut *tx)
                .await?;
                known.insert(object_id.clone(), number);
            }
            tx.commit().await?;
        }
        object_ids
            .iter()
            .map(|id| {
                known
                    .get(id)
                    .copied()
                    .ok_or_else(|| StoreError::NotFound(format!("number of {id}")))
            })
            .collect()
    }

    async fn object(
        &self,
        tenant_id: &str,
        kind: CompatKind,
        number: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT object_id FROM compat_numbers WHERE number = $1 AND tenant_id = $2 AND kind = $3",
        )
        .bind(number)
        .bind(tenant_id)
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn add_job(&self, tenant_id: &str, kind: &str, result: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO compat_jobs (tenant_id, kind, result, created_ms) VALUES ($1, $2, $3, $4)
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
            "SELECT result FROM compat_jobs WHERE number = $1 AND tenant_id = $2 AND kind = $3",
        )
        .bind(number)
        .bind(tenant_id)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?)
    }
}
