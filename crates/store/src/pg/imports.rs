//! [`ImportStore`] on PostgreSQL (translated from the SQLite store; the same answers).

use rand::RngCore;
use sqlx::{Postgres, QueryBuilder, Row};

use super::audience::{set_members_in, upsert_in};
use crate::audience::{Consent, Existing, MemberStatus, Upserted};
use crate::imports::{ImportBatch, ImportJob, ImportStore, NewImport};
use crate::pg::PgStore;
use crate::rows::import_job as job_from;
use crate::{StoreError, now_ms};

/// Refused rows per INSERT (3 values each).
const ERROR_ROWS: usize = 5000;

impl ImportStore for PgStore {
    async fn add_import(&self, job: &NewImport) -> Result<ImportJob, StoreError> {
        let mut raw = [0u8; 8];
        rand::rng().fill_bytes(&mut raw);
        let id: String = std::iter::once("im_".to_string())
            .chain(raw.iter().map(|b| format!("{b:02x}")))
            .collect();
        let row = sqlx::query(
            "INSERT INTO import_jobs (id, tenant_id, file, name, encoding, mapping, existing, \
             list_id, list_status, state, total_bytes, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', $10, $11) RETURNING *",
        )
        .bind(&id)
        .bind(&job.tenant_id)
        .bind(&job.file)
        .bind(&job.name)
        .bind(&job.encoding)
        .bind(&job.mapping)
        .bind(match job.existing {
            Existing::Keep => "keep",
            Existing::Update => "update",
        })
        .bind(job.list.as_ref().map(|(id, _)| id.as_str()))
        .bind(job.list.as_ref().map(|(_, status)| status.as_str()))
        .bind(job.total_bytes)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        job_from(&row)
    }

    async fn import(&self, tenant_id: &str, id: &str) -> Result<Option<ImportJob>, StoreError> {
        let row = sqlx::query("SELECT * FROM import_jobs WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_from).transpose()
    }

    async fn imports(&self, tenant_id: &str) -> Result<Vec<ImportJob>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM import_jobs WHERE tenant_id = $1 ORDER BY created_ms DESC, id LIMIT 100",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_from).collect()
    }

    async fn claim_import(
        &self,
        id: Option<&str>,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<ImportJob>, StoreError> {
        let now = now_ms();
        let row = sqlx::query(
            "UPDATE import_jobs SET state = 'running', owner = $1, lease_until_ms = $2, \
             started_ms = COALESCE(started_ms, $3) \
             WHERE id = (SELECT id FROM import_jobs WHERE ($4 IS NULL OR id = $4) \
                 AND (state = 'queued' OR (state = 'running' AND lease_until_ms < $3)) \
                 ORDER BY created_ms LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING *",
        )
        .bind(owner)
        .bind(now + lease_ms)
        .bind(now)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(job_from).transpose()
    }

    async fn import_batch(
        &self,
        id: &str,
        owner: &str,
        lease_ms: i64,
        batch: &ImportBatch,
    ) -> Result<Upserted, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE import_jobs SET lease_until_ms = $1 WHERE id = $2 AND owner = $3 \
             AND state = 'running' RETURNING *",
        )
        .bind(now_ms() + lease_ms)
        .bind(id)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("import {id} held by {owner}")));
        };
        let job = job_from(&row)?;
        let done = upsert_in(&mut tx, &job.tenant_id, &batch.contacts, job.existing).await?;
        if let Some((list_id, status)) = &job.list {
            let members: Vec<(i64, MemberStatus)> =
                done.ids.iter().map(|id| (*id, *status)).collect();
            let consent = Consent {
                source: "import".into(),
                time_ms: now_ms(),
                address: None,
                confirmed_ms: None,
            };
            // An import never undoes an unsubscription: an old file brings no new consent.
            set_members_in(&mut tx, &job.tenant_id, list_id, &members, &consent, true).await?;
        }
        for chunk in batch.errors.chunks(ERROR_ROWS) {
            let mut q: QueryBuilder<Postgres> =
                QueryBuilder::new("INSERT INTO import_errors (job_id, line, reason) ");
            q.push_values(chunk, |mut row, (line, reason)| {
                row.push_bind(id).push_bind(*line).push_bind(reason);
            });
            q.push(" ON CONFLICT DO NOTHING");
            q.build().execute(&mut *tx).await?;
        }
        sqlx::query(
            "UPDATE import_jobs SET added = added + $1, updated = updated + $2, \
             unchanged = unchanged + $3, refused = refused + $4, suppressed = suppressed + $5, \
             records_done = $6, done_bytes = $7 WHERE id = $8",
        )
        .bind(done.added as i64)
        .bind(done.updated as i64)
        .bind(done.unchanged as i64)
        .bind(batch.errors.len() as i64)
        .bind(batch.suppressed)
        .bind(batch.records_done)
        .bind(batch.done_bytes)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn finish_import(
        &self,
        id: &str,
        owner: &str,
        failure: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE import_jobs SET state = CASE WHEN $1 IS NULL THEN 'done' ELSE 'failed' END, \
             failure = $1, finished_ms = $2, owner = NULL, \
             done_bytes = CASE WHEN $1 IS NULL THEN total_bytes ELSE done_bytes END \
             WHERE id = $3 AND owner = $4",
        )
        .bind(failure)
        .bind(now_ms())
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn import_errors(
        &self,
        tenant_id: &str,
        id: &str,
        after_line: i64,
        limit: u32,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.line, e.reason FROM import_errors e JOIN import_jobs j ON j.id = e.job_id \
             WHERE j.tenant_id = $1 AND e.job_id = $2 AND e.line > $3 ORDER BY e.line LIMIT $4",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(after_line)
        .bind(i64::from(limit.clamp(1, 100_000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("line")?, r.try_get("reason")?)))
            .collect()
    }
}
