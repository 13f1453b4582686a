//! [`CampaignStore`] on SQLite.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::campaigns::{Campaign, CampaignDraft, CampaignState, CampaignStore};
use crate::{SqliteStore, StoreError, now_ms};

fn campaign_from(row: &SqliteRow) -> Result<Campaign, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(Campaign {
        id: row.try_get("id")?,
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
        },
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
        started_ms: row.try_get("started_ms")?,
        finished_ms: row.try_get("finished_ms")?,
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
             rate_per_sec, send_window, created_ms, updated_ms) \
             VALUES (?, ?, ?, 'draft', ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(name)
        .bind(&draft.audience)
        .bind(&draft.content)
        .bind(draft.schedule.as_deref())
        .bind(draft.rate_per_sec)
        .bind(draft.send_window.as_deref())
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
             rate_per_sec = ?, send_window = ?, updated_ms = ? \
             WHERE tenant_id = ? AND id = ? AND state = 'draft'",
        )
        .bind(name)
        .bind(&draft.audience)
        .bind(&draft.content)
        .bind(draft.schedule.as_deref())
        .bind(draft.rate_per_sec)
        .bind(draft.send_window.as_deref())
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
}
