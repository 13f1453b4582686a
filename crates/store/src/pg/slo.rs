//! [`SloStore`] on PostgreSQL.

use crate::StoreError;
use crate::pg::PgStore;
use crate::slo::{SloSlot, SloStore};

impl SloStore for PgStore {
    async fn save_slo_slots(&self, slots: &[SloSlot]) -> Result<(), StoreError> {
        if slots.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for s in slots {
            sqlx::query(
                "INSERT INTO slo_counts (slo, grain_ms, slot, good, total) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (slo, grain_ms, slot) DO UPDATE SET good = excluded.good, total = excluded.total",
            )
            .bind(&s.slo)
            .bind(s.grain_ms)
            .bind(s.slot)
            .bind(s.good as i64)
            .bind(s.total as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn slo_slots(&self, since_ms: i64) -> Result<Vec<SloSlot>, StoreError> {
        let rows = sqlx::query(
            "SELECT slo, grain_ms, slot, good, total FROM slo_counts WHERE slot * grain_ms >= $1",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::rows::slo_slot).collect()
    }

    async fn purge_slo_slots(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM slo_counts WHERE slot * grain_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
