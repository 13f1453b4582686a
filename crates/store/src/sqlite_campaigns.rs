//! [`CampaignStore`] on SQLite.

use sqlx::Row;

use crate::campaign_sql::{audience_condition, audience_query, checked_name, ids_of};
use crate::campaigns::{
    AudiencePlan, Campaign, CampaignDraft, CampaignState, CampaignStore, OpenBatch, SendRecipient,
    TrackingMode,
};
use crate::rows::campaign as campaign_from;
use crate::segments_sql::{Dialect, Param};
use crate::{SqliteStore, StoreError, now_ms};

impl CampaignStore for SqliteStore {
    async fn tracking_mode(&self, tenant_id: &str) -> Result<TrackingMode, StoreError> {
        let mode: Option<String> = sqlx::query_scalar("SELECT tracking FROM tenants WHERE id = ?")
            .bind(tenant_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(mode
            .as_deref()
            .and_then(TrackingMode::parse)
            .unwrap_or(TrackingMode::Anonymous))
    }

    async fn set_tracking_mode(
        &self,
        tenant_id: &str,
        mode: TrackingMode,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE tenants SET tracking = ? WHERE id = ?")
            .bind(mode.as_str())
            .bind(tenant_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn tenant_zone(&self, tenant_id: &str) -> Result<Option<String>, StoreError> {
        let zone: Option<Option<String>> =
            sqlx::query_scalar("SELECT timezone FROM tenants WHERE id = ?")
                .bind(tenant_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(zone.flatten())
    }

    async fn set_tenant_zone(
        &self,
        tenant_id: &str,
        zone: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE tenants SET timezone = ? WHERE id = ?")
            .bind(zone)
            .bind(tenant_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn add_campaign(
        &self,
        tenant_id: &str,
        draft: &CampaignDraft,
    ) -> Result<Campaign, StoreError> {
        let name = checked_name(&draft.name)?;
        let id = crate::audience_checks::new_id("cp_");
        let now = now_ms();
        sqlx::query(
            "INSERT INTO campaigns (id, tenant_id, name, state, audience, content, schedule, \
             rate_per_sec, send_window, ab_test, created_ms, updated_ms) \
             VALUES (?, ?, ?, 'draft', ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(name)
        .bind(&draft.audience)
        .bind(&draft.content)
        .bind(draft.schedule.as_deref())
        .bind(draft.rate_per_sec)
        .bind(draft.send_window.as_deref())
        .bind(draft.ab_test.as_deref())
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.campaign(tenant_id, &id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("campaign {id}")))
    }

    async fn campaign(&self, tenant_id: &str, id: &str) -> Result<Option<Campaign>, StoreError> {
        sqlx::query("SELECT * FROM campaigns WHERE tenant_id = ? AND id = ?")
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(campaign_from)
            .transpose()
    }

    async fn campaigns(&self, tenant_id: &str) -> Result<Vec<Campaign>, StoreError> {
        sqlx::query("SELECT * FROM campaigns WHERE tenant_id = ? ORDER BY created_ms DESC, id")
            .bind(tenant_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(campaign_from)
            .collect()
    }

    async fn update_draft(
        &self,
        tenant_id: &str,
        id: &str,
        draft: &CampaignDraft,
    ) -> Result<bool, StoreError> {
        let name = checked_name(&draft.name)?;
        let done = sqlx::query(
            "UPDATE campaigns SET name = ?, audience = ?, content = ?, schedule = ?, \
             rate_per_sec = ?, send_window = ?, ab_test = ?, updated_ms = ? \
             WHERE tenant_id = ? AND id = ? AND state = 'draft'",
        )
        .bind(name)
        .bind(&draft.audience)
        .bind(&draft.content)
        .bind(draft.schedule.as_deref())
        .bind(draft.rate_per_sec)
        .bind(draft.send_window.as_deref())
        .bind(draft.ab_test.as_deref())
        .bind(now_ms())
        .bind(tenant_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        match self.campaign(tenant_id, id).await? {
            None => Ok(false),
            Some(found) => Err(StoreError::Invalid {
                field: "state",
                reason: format!(
                    "the campaign is {}: only a draft can change",
                    found.state.as_str()
                ),
            }),
        }
    }

    async fn set_campaign_state(
        &self,
        tenant_id: &str,
        id: &str,
        next: CampaignState,
    ) -> Result<Campaign, StoreError> {
        let sources: Vec<&str> = CampaignState::sources(next)
            .into_iter()
            .map(CampaignState::as_str)
            .collect();
        let now = now_ms();
        let started = next == CampaignState::Sending;
        let finished = matches!(next, CampaignState::Sent | CampaignState::Cancelled);
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("UPDATE campaigns SET state = ");
        q.push_bind(next.as_str())
            .push(", updated_ms = ")
            .push_bind(now);
        if started {
            q.push(", started_ms = COALESCE(started_ms, ")
                .push_bind(now)
                .push(")");
        }
        if finished {
            q.push(", finished_ms = ").push_bind(now);
        }
        q.push(" WHERE tenant_id = ")
            .push_bind(tenant_id)
            .push(" AND id = ")
            .push_bind(id)
            .push(" AND state IN (");
        let mut list = q.separated(", ");
        for source in &sources {
            list.push_bind(*source);
        }
        q.push(")");
        let done = q.build().execute(&self.pool).await?;
        let found = self
            .campaign(tenant_id, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("campaign {id}")))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid {
                field: "state",
                reason: format!(
                    "a {} campaign cannot become {}",
                    found.state.as_str(),
                    next.as_str()
                ),
            });
        }
        Ok(found)
    }

    async fn fix_audience(
        &self,
        tenant_id: &str,
        id: &str,
        plan: &AudiencePlan,
    ) -> Result<i64, StoreError> {
        let mut tx = self.write_tx().await?;
        let fixed: Option<Option<i64>> =
            sqlx::query_scalar("SELECT recipients FROM campaigns WHERE tenant_id = ? AND id = ?")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        match fixed {
            None => return Err(StoreError::NotFound(format!("campaign {id}"))),
            Some(Some(count)) => return Ok(count),
            Some(None) => {}
        }
        let query = audience_query(Dialect::Sqlite, tenant_id, plan);
        let args = query.arguments(&[Param::Text(id.to_string())])?;
        let inserted = sqlx::query_with(sqlx::AssertSqlSafe(query.sql), args)
            .execute(&mut *tx)
            .await?
            .rows_affected() as i64;
        let test_end = plan.test_percent.map(|percent| {
            let share = (inserted * i64::from(percent) + 99) / 100;
            share.max(plan.test_minimum).min(inserted)
        });
        sqlx::query(
            "UPDATE campaigns SET recipients = ?, test_end = ?, updated_ms = ? WHERE id = ?",
        )
        .bind(inserted)
        .bind(test_end)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn audience_count(
        &self,
        tenant_id: &str,
        plan: &AudiencePlan,
    ) -> Result<i64, StoreError> {
        let condition = audience_condition(Dialect::Sqlite, tenant_id, plan);
        let args = condition.arguments(&[])?;
        let sql = format!("SELECT count(*) FROM contacts c WHERE {}", condition.sql);
        Ok(sqlx::query_scalar_with(sqlx::AssertSqlSafe(sql), args)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn campaigns_in_state(&self, state: CampaignState) -> Result<Vec<Campaign>, StoreError> {
        sqlx::query("SELECT * FROM campaigns WHERE state = ? ORDER BY created_ms, id")
            .bind(state.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(campaign_from)
            .collect()
    }

    async fn send_recipients(
        &self,
        campaign: &Campaign,
        from_seq: i64,
        limit: u32,
    ) -> Result<Vec<SendRecipient>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.seq, r.address AS recipient, c.*, \
             EXISTS (SELECT 1 FROM suppressions s WHERE s.tenant_id = ? AND s.address = r.address) \
             AS suppressed \
             FROM campaign_recipients r LEFT JOIN contacts c ON c.id = r.contact_id \
             WHERE r.campaign_id = ? AND r.seq >= ? ORDER BY r.seq LIMIT ?",
        )
        .bind(&campaign.tenant_id)
        .bind(&campaign.id)
        .bind(from_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let contact_id: Option<i64> = row.try_get("id")?;
                Ok(SendRecipient {
                    seq: row.try_get("seq")?,
                    address: row.try_get("recipient")?,
                    contact: match contact_id {
                        Some(_) => Some(crate::rows::contact_from(row)?),
                        None => None,
                    },
                    suppressed: row.try_get("suppressed")?,
                })
            })
            .collect()
    }

    async fn open_batch(
        &self,
        campaign_id: &str,
        first_seq: i64,
        end_seq: i64,
        message_ids: &[u128],
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let cursor: Option<i64> = sqlx::query_scalar("SELECT cursor FROM campaigns WHERE id = ?")
            .bind(campaign_id)
            .fetch_optional(&mut *tx)
            .await?;
        if cursor != Some(first_seq) {
            return Err(StoreError::Invalid {
                field: "cursor",
                reason: format!("the batch starts at {first_seq}, the cursor is at {cursor:?}"),
            });
        }
        let ids: Vec<u8> = message_ids.iter().flat_map(|id| id.to_be_bytes()).collect();
        sqlx::query(
            "INSERT INTO campaign_batches (campaign_id, first_seq, end_seq, message_ids) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(campaign_id)
        .bind(first_seq)
        .bind(end_seq)
        .bind(ids)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn commit_batch(
        &self,
        campaign_id: &str,
        first_seq: i64,
        spooled: i64,
        skipped: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let end: Option<i64> = sqlx::query_scalar(
            "UPDATE campaign_batches SET committed = 1 \
             WHERE campaign_id = ? AND first_seq = ? AND committed = 0 RETURNING end_seq",
        )
        .bind(campaign_id)
        .bind(first_seq)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(end) = end else {
            return Err(StoreError::NotFound(format!(
                "open batch {first_seq} of campaign {campaign_id}"
            )));
        };
        sqlx::query(
            "UPDATE campaigns SET cursor = ?, spooled = spooled + ?, skipped = skipped + ? \
             WHERE id = ? AND cursor = ?",
        )
        .bind(end)
        .bind(spooled)
        .bind(skipped)
        .bind(campaign_id)
        .bind(first_seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn open_batches(&self) -> Result<Vec<OpenBatch>, StoreError> {
        let rows = sqlx::query(
            "SELECT campaign_id, first_seq, message_ids FROM campaign_batches WHERE committed = 0",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let bytes: Vec<u8> = row.try_get("message_ids")?;
                Ok(OpenBatch {
                    campaign_id: row.try_get("campaign_id")?,
                    first_seq: row.try_get("first_seq")?,
                    message_ids: ids_of(&bytes),
                })
            })
            .collect()
    }

    async fn batch_message_ids(&self, campaign_id: &str) -> Result<Vec<u128>, StoreError> {
        let blobs: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT message_ids FROM campaign_batches WHERE campaign_id = ? AND committed = 1",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(blobs.iter().flat_map(|b| ids_of(b)).collect())
    }

    async fn campaign_counts(
        &self,
        campaign_id: &str,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT metric, dimension, count FROM campaign_counts WHERE campaign_id = ? \
             ORDER BY metric, dimension",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("metric")?,
                    r.try_get("dimension")?,
                    r.try_get("count")?,
                ))
            })
            .collect()
    }

    async fn test_spooled(&self, campaign_id: &str, at_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE campaigns SET decide_at_ms = COALESCE(decide_at_ms, ?) WHERE id = ?")
            .bind(at_ms)
            .bind(campaign_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn decide_winner(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        winner: i64,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE campaigns SET winner = ?, winner_reason = ?, decided_ms = ?, updated_ms = ? \
             WHERE tenant_id = ? AND id = ? AND ab_test IS NOT NULL AND winner IS NULL",
        )
        .bind(winner)
        .bind(reason)
        .bind(now)
        .bind(now)
        .bind(tenant_id)
        .bind(campaign_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn drop_batch(&self, campaign_id: &str, first_seq: i64) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM campaign_batches WHERE campaign_id = ? AND first_seq = ? AND committed = 0",
        )
        .bind(campaign_id)
        .bind(first_seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
