//! [`EventStore`] on PostgreSQL. Several nodes record events into one table, and webhooks
//! follow it with an id cursor, which is only safe if ids become visible in id order: a
//! transaction holding id 10 must not commit after one holding id 11 has been read. So
//! event batches are recorded one at a time cluster-wide (a transaction-scoped advisory
//! lock); batches are large (the recorder gathers them), so this costs little.

use std::collections::HashMap;

use sqlx::{Postgres, QueryBuilder, Row};

use crate::events::{
    EventFilter, EventKind, EventStore, NewEvent, StoredEvent, Suppression, Webhook,
    WebhookDelivery,
};
use crate::pg::PgStore;
use crate::rollups::{self, Additions, Resolution, RollupRow};
use crate::sqlite_events::EVENTS_PAGE_MAX;
use crate::{StoreError, now_ms};

/// Serialises event batches (`pg_advisory_xact_lock` key): ids commit in order.
const EVENTS_LOCK: i64 = 0x7473_6265_7665_6e74; // "tsbevent"
/// Rows per statement (PostgreSQL takes at most 65,535 parameters).
const ROWS: usize = 1000;

type Tx<'a> = sqlx::Transaction<'a, Postgres>;

fn tables(resolution: Resolution) -> (&'static str, &'static str) {
    match resolution {
        Resolution::Minute => ("rollup_minute", "latency_minute"),
        Resolution::Hour => ("rollup_hour", "latency_hour"),
        Resolution::Day => ("rollup_day", "latency_day"),
    }
}

const ENGAGEMENT: [EventKind; 6] = [
    EventKind::Delivered,
    EventKind::Opened,
    EventKind::Clicked,
    EventKind::Bounced,
    EventKind::Complained,
    EventKind::Unsubscribed,
];

async fn write_engagement(tx: &mut Tx<'_>, events: &[NewEvent]) -> Result<(), StoreError> {
    let mut last: HashMap<(&str, &str, String), i64> = HashMap::new();
    for e in events.iter().filter(|e| ENGAGEMENT.contains(&e.kind)) {
        let key = (
            e.tenant_id.as_str(),
            e.kind.as_str(),
            e.recipient.to_ascii_lowercase(),
        );
        let at = last.entry(key).or_insert(e.time_ms);
        *at = (*at).max(e.time_ms);
    }
    let rows: Vec<_> = last.into_iter().collect();
    for chunk in rows.chunks(ROWS) {
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
            "INSERT INTO contact_engagement (tenant_id, kind, address, last_ms) ",
        );
        q.push_values(chunk, |mut row, ((tenant, kind, address), at)| {
            row.push_bind(*tenant)
                .push_bind(*kind)
                .push_bind(address.clone())
                .push_bind(*at);
        });
        q.push(
            " ON CONFLICT (tenant_id, kind, address) DO UPDATE \
             SET last_ms = GREATEST(contact_engagement.last_ms, excluded.last_ms)",
        );
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

async fn write_campaign_counts(
    tx: &mut Tx<'_>,
    additions: crate::campaign_counts::CampaignAdditions,
) -> Result<(), StoreError> {
    let mut increments = additions.increments;
    if increments.is_empty() {
        return Ok(());
    }
    let splits: HashMap<(&str, &str, &str), &[String]> = additions
        .engaged
        .iter()
        .filter(|e| e.link == 0)
        .map(|e| {
            (
                (e.campaign.as_str(), e.kind, e.recipient.as_str()),
                &e.split[..],
            )
        })
        .collect();
    for chunk in additions.engaged.chunks(ROWS) {
        let mut q: QueryBuilder<Postgres> =
            QueryBuilder::new("INSERT INTO campaign_engaged (campaign_id, kind, recipient, link) ");
        q.push_values(chunk, |mut row, e| {
            row.push_bind(&e.campaign)
                .push_bind(e.kind)
                .push_bind(&e.recipient)
                .push_bind(e.link);
        });
        // Only the rows that were new come back: a unique open or click counted once.
        q.push(" ON CONFLICT DO NOTHING RETURNING campaign_id, kind, recipient, link");
        for row in q.build().fetch_all(&mut **tx).await? {
            let campaign: String = row.try_get("campaign_id")?;
            let kind: String = row.try_get("kind")?;
            let recipient: String = row.try_get("recipient")?;
            let link: i64 = row.try_get("link")?;
            let metric = crate::campaign_counts::unique_metric(&kind);
            if link != 0 {
                *increments
                    .entry((campaign, metric, format!("link:{link}")))
                    .or_default() += 1;
                continue;
            }
            let split = splits
                .get(&(campaign.as_str(), kind.as_str(), recipient.as_str()))
                .copied()
                .unwrap_or_default();
            for dimension in std::iter::once("").chain(split.iter().map(String::as_str)) {
                *increments
                    .entry((campaign.clone(), metric, dimension.to_string()))
                    .or_default() += 1;
            }
        }
    }
    let rows: Vec<_> = increments.into_iter().collect();
    for chunk in rows.chunks(ROWS) {
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
            "INSERT INTO campaign_counts (campaign_id, metric, dimension, count) ",
        );
        q.push_values(chunk, |mut row, ((campaign, metric, dimension), count)| {
            row.push_bind(campaign)
                .push_bind(*metric)
                .push_bind(dimension)
                .push_bind(*count);
        });
        q.push(
            " ON CONFLICT (campaign_id, metric, dimension) DO UPDATE \
             SET count = campaign_counts.count + excluded.count",
        );
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

async fn write_rollups(tx: &mut Tx<'_>, additions: &Additions) -> Result<(), StoreError> {
    for resolution in Resolution::ALL {
        let (counts, latency) = tables(resolution);
        let rows: Vec<_> = additions
            .counts
            .iter()
            .filter(|((r, _), _)| *r == resolution)
            .collect();
        for chunk in rows.chunks(ROWS) {
            let mut q: QueryBuilder<Postgres> = QueryBuilder::new(format!(
                "INSERT INTO {counts} (tenant_id, slot, kind, domain, provider, category, count) "
            ));
            q.push_values(chunk, |mut row, ((_, key), count)| {
                row.push_bind(&key.0)
                    .push_bind(key.1)
                    .push_bind(key.2)
                    .push_bind(&key.3)
                    .push_bind(key.4)
                    .push_bind(&key.5)
                    .push_bind(**count);
            });
            q.push(format!(
                " ON CONFLICT (tenant_id, slot, kind, domain, provider, category) DO UPDATE \
                 SET count = {counts}.count + excluded.count"
            ));
            q.build().execute(&mut **tx).await?;
        }
        let rows: Vec<_> = additions
            .latency
            .iter()
            .filter(|((r, ..), _)| *r == resolution)
            .collect();
        for chunk in rows.chunks(ROWS) {
            let mut q: QueryBuilder<Postgres> = QueryBuilder::new(format!(
                "INSERT INTO {latency} (tenant_id, slot, bucket, count) "
            ));
            q.push_values(chunk, |mut row, ((_, tenant, slot, bucket), count)| {
                row.push_bind(tenant)
                    .push_bind(*slot)
                    .push_bind(*bucket)
                    .push_bind(**count);
            });
            q.push(format!(
                " ON CONFLICT (tenant_id, slot, bucket) DO UPDATE \
                 SET count = {latency}.count + excluded.count"
            ));
            q.build().execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// The tags of a stored event (a JSON array of strings; anything else has none).
fn tags_of(tags: Option<&str>) -> Vec<String> {
    tags.and_then(|t| serde_json::from_str::<Vec<serde_json::Value>>(t).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

impl EventStore for PgStore {
    async fn add_events(&self, events: &[NewEvent]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(EVENTS_LOCK)
            .execute(&mut *tx)
            .await?;
        let mut tagged: Vec<(String, String, i64)> = Vec::new();
        for chunk in events.chunks(ROWS) {
            let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
                "INSERT INTO events (tenant_id, time_ms, kind, message_id, recipient, custom_id, tags, detail) ",
            );
            q.push_values(chunk, |mut row, e| {
                row.push_bind(&e.tenant_id)
                    .push_bind(e.time_ms)
                    .push_bind(e.kind.as_str())
                    .push_bind(&e.message_id)
                    .push_bind(e.recipient.to_ascii_lowercase())
                    .push_bind(&e.custom_id)
                    .push_bind(&e.tags)
                    .push_bind(&e.detail);
            });
            q.push(" RETURNING id, tenant_id, tags");
            for row in q.build().fetch_all(&mut *tx).await? {
                let tags: Option<String> = row.try_get("tags")?;
                if tags.is_none() {
                    continue;
                }
                let (id, tenant): (i64, String) = (row.try_get("id")?, row.try_get("tenant_id")?);
                for tag in tags_of(tags.as_deref()) {
                    tagged.push((tenant.clone(), tag, id));
                }
            }
        }
        for chunk in tagged.chunks(ROWS) {
            let mut q: QueryBuilder<Postgres> =
                QueryBuilder::new("INSERT INTO event_tags (tenant, tag, event_id) ");
            q.push_values(chunk, |mut row, (tenant, tag, id)| {
                row.push_bind(tenant).push_bind(tag).push_bind(*id);
            });
            q.push(" ON CONFLICT DO NOTHING");
            q.build().execute(&mut *tx).await?;
        }
        write_rollups(&mut tx, &rollups::additions(events)).await?;
        write_engagement(&mut tx, events).await?;
        write_campaign_counts(&mut tx, crate::campaign_counts::additions(events)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn events(
        &self,
        tenant_id: &str,
        filter: &EventFilter,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut q: QueryBuilder<Postgres> = match &filter.tag {
            Some(tag) => {
                let mut q = QueryBuilder::new(
                    "SELECT events.* FROM event_tags JOIN events ON events.id = event_tags.event_id \
                     WHERE event_tags.tenant = ",
                );
                q.push_bind(tenant_id)
                    .push(" AND event_tags.tag = ")
                    .push_bind(tag)
                    .push(" AND tenant_id = ")
                    .push_bind(tenant_id);
                q
            }
            None => {
                let mut q = QueryBuilder::new("SELECT * FROM events WHERE tenant_id = ");
                q.push_bind(tenant_id);
                q
            }
        };
        if let Some(after) = filter.after_id {
            q.push(" AND id > ").push_bind(after);
        }
        if let Some(before) = filter.before_id {
            q.push(" AND id < ").push_bind(before);
        }
        if let Some(from) = filter.from_ms {
            q.push(" AND time_ms >= ").push_bind(from);
        }
        if let Some(to) = filter.to_ms {
            q.push(" AND time_ms < ").push_bind(to);
        }
        if !filter.kinds.is_empty() {
            q.push(" AND kind IN (");
            let mut list = q.separated(", ");
            for kind in &filter.kinds {
                list.push_bind(kind.as_str());
            }
            q.push(")");
        }
        if let Some(id) = &filter.message_id {
            q.push(" AND message_id = ").push_bind(id);
        }
        if let Some(recipient) = &filter.recipient {
            q.push(" AND recipient = ")
                .push_bind(recipient.to_ascii_lowercase());
        }
        if let Some(custom_id) = &filter.custom_id {
            q.push(" AND custom_id = ").push_bind(custom_id);
        }
        let order = match (filter.tag.is_some(), filter.newest_first) {
            (true, true) => " ORDER BY event_tags.event_id DESC LIMIT ",
            (true, false) => " ORDER BY event_tags.event_id LIMIT ",
            (false, true) => " ORDER BY id DESC LIMIT ",
            (false, false) => " ORDER BY id LIMIT ",
        };
        q.push(order)
            .push_bind(i64::from(filter.limit.clamp(1, EVENTS_PAGE_MAX)));
        let rows = q.build().fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(crate::rows::event)
            .collect::<Result<_, _>>()?)
    }

    async fn rollup(
        &self,
        tenant_id: &str,
        resolution: Resolution,
        from_ms: i64,
        to_ms: i64,
        domain: Option<&str>,
    ) -> Result<Vec<RollupRow>, StoreError> {
        let (counts, _) = tables(resolution);
        let width = resolution.slot_ms();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT slot, kind, domain, provider, category, count FROM {counts}
             WHERE tenant_id = $1 AND slot >= $2 AND slot < $3
               AND ($4::TEXT IS NULL OR domain = $4)
             ORDER BY slot"
        )))
        .bind(tenant_id)
        .bind(from_ms.div_euclid(width))
        .bind(to_ms.div_euclid(width) + 1)
        .bind(domain)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .filter_map(|r| {
                let kind: String = r.try_get("kind").ok()?;
                Some(Ok(RollupRow {
                    slot_ms: r.try_get::<i64, _>("slot").ok()? * width,
                    kind: EventKind::parse(&kind)?,
                    domain: r.try_get("domain").ok()?,
                    provider: r.try_get("provider").ok()?,
                    category: r.try_get("category").ok()?,
                    count: r.try_get("count").ok()?,
                }))
            })
            .collect()
    }

    async fn latency_histogram(
        &self,
        tenant_id: &str,
        resolution: Resolution,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let (_, latency) = tables(resolution);
        let width = resolution.slot_ms();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT bucket, SUM(count)::BIGINT AS n FROM {latency}
             WHERE tenant_id = $1 AND slot >= $2 AND slot < $3 GROUP BY bucket ORDER BY bucket"
        )))
        .bind(tenant_id)
        .bind(from_ms.div_euclid(width))
        .bind(to_ms.div_euclid(width) + 1)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("bucket")?, r.try_get("n")?)))
            .collect()
    }

    async fn purge_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM event_tags WHERE event_id IN (SELECT id FROM events WHERE time_ms < $1)",
        )
        .bind(before_ms)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM events WHERE time_ms < $1")
            .bind(before_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn last_event_id(&self) -> Result<i64, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(id.unwrap_or(0))
    }

    async fn suppressed(
        &self,
        tenant_id: &str,
        addresses: &[String],
    ) -> Result<Vec<String>, StoreError> {
        if addresses.is_empty() {
            return Ok(Vec::new());
        }
        let lowered: Vec<String> = addresses.iter().map(|a| a.to_ascii_lowercase()).collect();
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT address FROM suppressions WHERE tenant_id = $1 AND address = ANY($2)",
        )
        .bind(tenant_id)
        .bind(&lowered)
        .fetch_all(&self.pool)
        .await?;
        Ok(found)
    }

    async fn add_suppressions(
        &self,
        tenant_id: &str,
        entries: &[(String, String)],
    ) -> Result<u64, StoreError> {
        let now = now_ms();
        let mut added = 0;
        let mut tx = self.pool.begin().await?;
        for (address, reason) in entries {
            let done = sqlx::query(
                "INSERT INTO suppressions (tenant_id, address, reason, created_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, address) DO NOTHING",
            )
            .bind(tenant_id)
            .bind(address.to_ascii_lowercase())
            .bind(reason)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            added += done.rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    async fn suppression(
        &self,
        tenant_id: &str,
        address: &str,
    ) -> Result<Option<Suppression>, StoreError> {
        let row = sqlx::query(
            "SELECT address, reason, created_ms FROM suppressions \
             WHERE tenant_id = $1 AND address = $2",
        )
        .bind(tenant_id)
        .bind(address.to_ascii_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(crate::rows::suppression).transpose()?)
    }

    async fn remove_suppression(&self, tenant_id: &str, address: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM suppressions WHERE tenant_id = $1 AND address = $2")
            .bind(tenant_id)
            .bind(address.to_ascii_lowercase())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn suppressions(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Suppression>, StoreError> {
        // Byte order, as SQLite's: the page cursor must compare the same way.
        let rows = sqlx::query(
            "SELECT address, reason, created_ms FROM suppressions \
             WHERE tenant_id = $1 AND address COLLATE \"C\" > $2 \
             ORDER BY address COLLATE \"C\" LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit.clamp(1, EVENTS_PAGE_MAX)))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(crate::rows::suppression)
            .collect::<Result<_, _>>()?)
    }

    async fn add_webhook(
        &self,
        tenant_id: &str,
        url: &str,
        kinds: &[EventKind],
    ) -> Result<Webhook, StoreError> {
        let hook = Webhook {
            id: format!("wh_{}", crate::events::random_hex(8)),
            tenant_id: tenant_id.to_string(),
            url: url.to_string(),
            secret: crate::events::new_secret(),
            kinds: kinds.to_vec(),
            cursor: self.last_event_id().await?,
            created_ms: now_ms(),
            failing_since_ms: None,
            previous_secret: None,
        };
        let inserted = sqlx::query(
            "INSERT INTO webhooks (id, tenant_id, url, secret, kinds, cursor, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&hook.id)
        .bind(tenant_id)
        .bind(url)
        .bind(&hook.secret)
        .bind(crate::events::kinds_text(kinds))
        .bind(hook.cursor)
        .bind(hook.created_ms)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(hook),
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                Err(StoreError::NotFound(format!("tenant {tenant_id}")))
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn webhooks(&self, tenant_id: &str) -> Result<Vec<Webhook>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM webhooks WHERE tenant_id = $1 ORDER BY created_ms, id")
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(crate::rows::webhook)
            .collect::<Result<_, _>>()?)
    }

    async fn all_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let rows = sqlx::query("SELECT * FROM webhooks ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(crate::rows::webhook)
            .collect::<Result<_, _>>()?)
    }

    async fn remove_webhook(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn rotate_webhook_secret(
        &self,
        tenant_id: &str,
        id: &str,
        overlap_ms: i64,
    ) -> Result<Option<Webhook>, StoreError> {
        let row = sqlx::query(
            "UPDATE webhooks SET previous_secret = secret, previous_until_ms = $1, secret = $2 \
             WHERE tenant_id = $3 AND id = $4 RETURNING *",
        )
        .bind(now_ms() + overlap_ms)
        .bind(crate::events::new_secret())
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(crate::rows::webhook).transpose()?)
    }

    async fn set_webhook_state(
        &self,
        id: &str,
        cursor: i64,
        failing_since_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE webhooks SET cursor = $1, failing_since_ms = $2 WHERE id = $3")
            .bind(cursor)
            .bind(failing_since_ms)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn add_webhook_delivery(&self, id: &str, d: &WebhookDelivery) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webhook_deliveries \
             (webhook_id, time_ms, events, first_event, last_event, status, error, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(d.time_ms)
        .bind(d.events)
        .bind(d.first_event)
        .bind(d.last_event)
        .bind(d.status)
        .bind(&d.error)
        .bind(d.duration_ms)
        .execute(&self.pool)
        .await?;
        // The log is for looking at recent trouble, not an archive.
        sqlx::query(
            "DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND id <= \
             (SELECT id FROM webhook_deliveries WHERE webhook_id = $1 \
              ORDER BY id DESC LIMIT 1 OFFSET 1000)",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn webhook_deliveries(
        &self,
        tenant_id: &str,
        id: &str,
        limit: u32,
    ) -> Result<Option<Vec<WebhookDelivery>>, StoreError> {
        let owned: Option<String> =
            sqlx::query_scalar("SELECT id FROM webhooks WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        if owned.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT * FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(id)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(
            rows.iter()
                .map(crate::rows::webhook_delivery)
                .collect::<Result<_, _>>()?,
        ))
    }
}
