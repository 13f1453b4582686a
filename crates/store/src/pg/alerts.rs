//! [`OpsStore`] on PostgreSQL: alerts, their timeline, silences, reports, samples.

use sqlx::Row;

use crate::StoreError;
use crate::alerts::{AlertAction, AlertRecord, OpsStore, ReportRecord, SilenceRecord};
use crate::pg::PgStore;

const ALERT_COLUMNS: &str = "id, rule, labels, summary, members, priority, level, triggered_ms, \
     acknowledged_by, acknowledged_ms, resolved_by, resolved_ms, cleared_ms, silenced_by, refired, \
     miss_reason, miss_text";

async fn insert_actions(
    tx: &mut sqlx::PgConnection,
    actions: &[AlertAction],
) -> Result<(), StoreError> {
    for a in actions {
        sqlx::query(
            "INSERT INTO alert_actions (alert_id, at_ms, action, who, text) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&a.alert_id)
        .bind(a.at_ms)
        .bind(&a.action)
        .bind(&a.who)
        .bind(&a.text)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

impl OpsStore for PgStore {
    async fn save_alert(&self, a: &AlertRecord, actions: &[AlertAction]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO alerts ({ALERT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT (id) DO UPDATE SET rule = excluded.rule, labels = excluded.labels, \
             summary = excluded.summary, members = excluded.members, priority = excluded.priority, \
             level = excluded.level, triggered_ms = excluded.triggered_ms, \
             acknowledged_by = excluded.acknowledged_by, acknowledged_ms = excluded.acknowledged_ms, \
             resolved_by = excluded.resolved_by, resolved_ms = excluded.resolved_ms, \
             cleared_ms = excluded.cleared_ms, silenced_by = excluded.silenced_by, \
             refired = excluded.refired, miss_reason = excluded.miss_reason, miss_text = excluded.miss_text"
        )))
        .bind(&a.id)
        .bind(&a.rule)
        .bind(serde_json::to_string(&a.labels).unwrap_or_default())
        .bind(&a.summary)
        .bind(serde_json::to_string(&a.members).unwrap_or_default())
        .bind(&a.priority)
        .bind(a.level)
        .bind(a.triggered_ms)
        .bind(a.acknowledged.as_ref().map(|x| x.0.clone()))
        .bind(a.acknowledged.as_ref().map(|x| x.1))
        .bind(a.resolved.as_ref().map(|x| x.0.clone()))
        .bind(a.resolved.as_ref().map(|x| x.1))
        .bind(a.cleared_ms)
        .bind(&a.silenced_by)
        .bind(a.refired)
        .bind(a.miss.as_ref().map(|m| m.0.clone()))
        .bind(a.miss.as_ref().map(|m| m.1.clone()))
        .execute(&mut *tx)
        .await?;
        insert_actions(&mut tx, actions).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_alert_actions(&self, actions: &[AlertAction]) -> Result<(), StoreError> {
        if actions.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        insert_actions(&mut tx, actions).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn open_alerts(&self) -> Result<Vec<AlertRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE resolved_ms IS NULL ORDER BY triggered_ms, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::rows::alert).collect()
    }

    async fn alerts_between(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE triggered_ms >= $1 AND triggered_ms < $2 \
             ORDER BY triggered_ms DESC, id DESC"
        )))
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::rows::alert).collect()
    }

    async fn alert(&self, id: &str) -> Result<Option<AlertRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(crate::rows::alert).transpose()
    }

    async fn alert_actions(&self, id: &str) -> Result<Vec<AlertAction>, StoreError> {
        let rows = sqlx::query(
            "SELECT alert_id, at_ms, action, who, text FROM alert_actions WHERE alert_id = $1 \
             ORDER BY at_ms, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AlertAction {
                    alert_id: r.try_get("alert_id")?,
                    at_ms: r.try_get("at_ms")?,
                    action: r.try_get("action")?,
                    who: r.try_get("who")?,
                    text: r.try_get("text")?,
                })
            })
            .collect()
    }

    async fn add_silence(&self, s: &SilenceRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO silences (id, matchers, starts_ms, ends_ms, created_by, comment) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.id)
        .bind(serde_json::to_string(&s.matchers).unwrap_or_default())
        .bind(s.starts_ms)
        .bind(s.ends_ms)
        .bind(&s.created_by)
        .bind(&s.comment)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn silences(&self, now_ms: i64) -> Result<Vec<SilenceRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, matchers, starts_ms, ends_ms, created_by, comment FROM silences \
             WHERE ends_ms > $1 ORDER BY starts_ms, id",
        )
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SilenceRecord {
                    id: r.try_get("id")?,
                    matchers: crate::rows::json_map(&r.try_get::<String, _>("matchers")?),
                    starts_ms: r.try_get("starts_ms")?,
                    ends_ms: r.try_get("ends_ms")?,
                    created_by: r.try_get("created_by")?,
                    comment: r.try_get("comment")?,
                })
            })
            .collect()
    }

    async fn expire_silence(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE silences SET ends_ms = $1 WHERE id = $2 AND ends_ms > $3")
            .bind(now_ms)
            .bind(id)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn save_report(&self, r: &ReportRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO ops_reports (id, kind, period, created_ms, content_type, body) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&r.id)
        .bind(&r.kind)
        .bind(&r.period)
        .bind(r.created_ms)
        .bind(&r.content_type)
        .bind(&r.body)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn reports(&self) -> Result<Vec<ReportRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, period, created_ms, content_type FROM ops_reports \
             ORDER BY created_ms DESC, id DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| crate::rows::report(r, false)).collect()
    }

    async fn report(&self, id: &str) -> Result<Option<ReportRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, kind, period, created_ms, content_type, body FROM ops_reports WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|r| crate::rows::report(r, true))
            .transpose()
    }

    async fn add_ops_sample(&self, at_ms: i64, body: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ops_samples (at_ms, body) VALUES ($1, $2) \
             ON CONFLICT (at_ms) DO UPDATE SET body = excluded.body",
        )
        .bind(at_ms)
        .bind(body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn ops_samples(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, body FROM ops_samples WHERE at_ms >= $1 AND at_ms < $2 ORDER BY at_ms",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("at_ms")?, r.try_get("body")?)))
            .collect()
    }

    async fn purge_ops_samples(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM ops_samples WHERE at_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
