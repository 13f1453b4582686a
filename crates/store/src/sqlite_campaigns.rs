//! [`CampaignStore`] on SQLite.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::campaigns::{
    AbProgress, AudiencePlan, Campaign, CampaignDraft, CampaignState, CampaignStore, OpenBatch,
    Progress, SendRecipient, TrackingMode,
};
use crate::segments_sql::{Compiled, Param, compile};
use crate::{SqliteStore, StoreError, now_ms};

pub(crate) fn campaign_from(row: &SqliteRow) -> Result<Campaign, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(Campaign {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        state: CampaignState::parse(&state).ok_or_else(|| StoreError::Invalid {
            field: "state",
            reason: format!("stored state {state:?} is unknown"),
        })?,
        draft: CampaignDraft {
            name: row.try_get("name")?,
            audience: row.try_get("audience")?,
            content: row.try_get("content")?,
            schedule: row.try_get("schedule")?,
            rate_per_sec: row.try_get("rate_per_sec")?,
            send_window: row.try_get("send_window")?,
            ab_test: row.try_get("ab_test")?,
        },
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
        started_ms: row.try_get("started_ms")?,
        finished_ms: row.try_get("finished_ms")?,
        progress: Progress {
            recipients: row.try_get("recipients")?,
            cursor: row.try_get("cursor")?,
            spooled: row.try_get("spooled")?,
            skipped: row.try_get("skipped")?,
        },
        ab: AbProgress {
            test_end: row.try_get("test_end")?,
            decide_at_ms: row.try_get("decide_at_ms")?,
            winner: row.try_get("winner")?,
            winner_reason: row.try_get("winner_reason")?,
            decided_ms: row.try_get("decided_ms")?,
        },
    })
}

fn checked_name(name: &str) -> Result<&str, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid {
            field: "name",
            reason: "1 to 200 characters on one line".into(),
        });
    }
    Ok(name)
}

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
        let id = crate::sqlite_audience::rows::new_id("cp_");
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
        let query = audience_query(tenant_id, plan);
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
        let condition = audience_condition(tenant_id, plan);
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
                        Some(_) => Some(crate::sqlite_audience::rows::contact_from(row)?),
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

/// Message ids stored 16 bytes each, big-endian.
fn ids_of(bytes: &[u8]) -> Vec<u128> {
    bytes
        .chunks_exact(16)
        .map(|c| {
            let mut id = [0u8; 16];
            id.copy_from_slice(c);
            u128::from_be_bytes(id)
        })
        .collect()
}

/// The INSERT that fixes an audience: contacts on the lists (subscribed) or in the segments,
/// less those on an exclusion list or in an exclusion segment, less suppressed addresses,
/// numbered by contact id (randomly for an A/B test). The first parameter is the campaign id.
/// The audience's contacts `c` as a condition: wanted (on a list, subscribed, or in a
/// segment), not unwanted, within every filter segment, not suppressed. Its first
/// parameter is the tenant.
fn audience_condition(tenant_id: &str, plan: &AudiencePlan) -> Compiled {
    let mut params = vec![Param::Text(tenant_id.to_string())];
    // Conditions over `contacts c` joined by `joiner`; `empty` when there is none.
    let all = |lists: &[String],
               status: Option<&str>,
               segments: &[crate::audience::Condition],
               joiner: &str,
               empty: &str,
               params: &mut Vec<Param>| {
        let mut parts = Vec::new();
        if !lists.is_empty() {
            let marks = vec!["?"; lists.len()].join(", ");
            params.extend(lists.iter().map(|l| Param::Text(l.clone())));
            let status = status.map_or(String::new(), |s| format!(" AND m.status = '{s}'"));
            parts.push(format!(
                "c.id IN (SELECT m.contact_id FROM list_members m \
                 WHERE m.list_id IN ({marks}){status})"
            ));
        }
        for condition in segments {
            let compiled = compile(condition, tenant_id);
            params.extend(compiled.params);
            parts.push(format!("({})", compiled.sql));
        }
        if parts.is_empty() {
            empty.to_string()
        } else {
            parts.join(joiner)
        }
    };
    // "On these lists (subscribed) or in these segments", less any exclusion, narrowed to
    // the contacts in every filter segment.
    let wanted = all(
        &plan.lists,
        Some("subscribed"),
        &plan.segments,
        " OR ",
        "0",
        &mut params,
    );
    let unwanted = all(
        &plan.exclude_lists,
        None,
        &plan.exclude_segments,
        " OR ",
        "0",
        &mut params,
    );
    let within = all(&[], None, &plan.filter_segments, " AND ", "1", &mut params);
    params.push(Param::Text(tenant_id.to_string()));
    let sql = format!(
        "c.tenant_id = ? AND ({wanted}) AND NOT ({unwanted}) AND ({within}) \
         AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.tenant_id = ? AND s.address = c.address)"
    );
    Compiled {
        sql,
        params,
        ..Compiled::default()
    }
}

fn audience_query(tenant_id: &str, plan: &AudiencePlan) -> Compiled {
    let Compiled {
        sql: condition,
        params,
        ..
    } = audience_condition(tenant_id, plan);
    // An A/B test's group is the first recipients: a random order makes it a sample.
    let order = if plan.test_percent.is_some() {
        "random()"
    } else {
        "c.id"
    };
    let sql = format!(
        "INSERT INTO campaign_recipients (campaign_id, seq, contact_id, address) \
         SELECT ?, row_number() OVER (ORDER BY {order}) - 1, c.id, c.address FROM contacts c \
         WHERE {condition}"
    );
    Compiled {
        sql,
        params,
        ..Compiled::default()
    }
}
