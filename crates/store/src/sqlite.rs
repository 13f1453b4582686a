//! The control plane in one SQLite file (WAL, foreign keys on, synchronous FULL: a key or
//! tenant change that returned is on disk). Schema changes are numbered SQL files applied in
//! order inside a transaction, tracked by `PRAGMA user_version`.

use std::path::Path;
use std::str::FromStr;

use rand::RngCore;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::keys::{self, Scopes};
use crate::{
    ApiKey, ControlStore, Idempotent, NewKey, SendingDomain, StoreError, StoredResponse, Tenant,
    now_ms,
};

/// Schema steps, in order; step n brings `user_version` from n to n + 1.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_tenants_keys.sql"),
    include_str!("../migrations/0002_usage.sql"),
    include_str!("../migrations/0003_idempotency.sql"),
    include_str!("../migrations/0004_domains.sql"),
    include_str!("../migrations/0005_events_suppressions_webhooks.sql"),
    include_str!("../migrations/0006_console.sql"),
    include_str!("../migrations/0007_rollups.sql"),
    include_str!("../migrations/0008_webhook_rotation.sql"),
    include_str!("../migrations/0009_login_names.sql"),
    include_str!("../migrations/0010_day_rollups_event_tags.sql"),
    include_str!("../migrations/0011_audience.sql"),
    include_str!("../migrations/0012_imports.sql"),
    include_str!("../migrations/0013_engagement.sql"),
    include_str!("../migrations/0014_list_confirmation.sql"),
    include_str!("../migrations/0015_templates.sql"),
    include_str!("../migrations/0016_compat_numbers.sql"),
    include_str!("../migrations/0017_campaigns.sql"),
    include_str!("../migrations/0018_campaign_sends.sql"),
    include_str!("../migrations/0019_tracking_mode.sql"),
    include_str!("../migrations/0020_campaign_counts.sql"),
    include_str!("../migrations/0021_ab_tests.sql"),
    include_str!("../migrations/0022_tenant_timezone.sql"),
    include_str!("../migrations/0023_slo_counts.sql"),
    include_str!("../migrations/0024_alerts.sql"),
    include_str!("../migrations/0025_leases.sql"),
];

/// The SQLite control plane.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
}

impl SqliteStore {
    /// A transaction that writes: it takes the write lock at `BEGIN` (waiting up to the busy
    /// timeout). A deferred one that reads first and writes later fails at once with
    /// "database is locked" when another writer committed in between, which no waiting
    /// can cure.
    pub(crate) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5))
            // 16 MiB of page cache per connection (SQLite's default is 2 MiB): a bulk write
            // of tens of thousands of contacts otherwise spills pages mid-transaction.
            .pragma("cache_size", "-16384");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let store = SqliteStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        // Most opens find the schema current: read only, so a CLI command never takes the
        // write lock from a running server just to open the file.
        let current: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&self.pool)
            .await?;
        if current == MIGRATIONS.len() as i64 {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await?;
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
        // PRAGMA takes no bound parameters; the value is our own constant.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {known}"
        )))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

pub(crate) fn check_name(field: &'static str, name: &str) -> Result<(), StoreError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            field,
            reason: format!("{name:?}: 1 to 64 letters, digits, '.', '_' or '-'"),
        })
    }
}

pub(crate) fn check_domain(domain: &str) -> Result<String, StoreError> {
    let lower = domain.trim_end_matches('.').to_ascii_lowercase();
    let labels_ok = lower.split('.').count() >= 2
        && lower.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if labels_ok && lower.len() <= 253 {
        Ok(lower)
    } else {
        Err(StoreError::Invalid {
            field: "domain",
            reason: format!("{domain:?} is not a domain name"),
        })
    }
}

/// A suspension reason is shown to the tenant's clients in SMTP replies and API errors:
/// one line of plain text.
pub(crate) fn check_reason(reason: &str) -> Result<(), StoreError> {
    let invalid = |why: &str| StoreError::Invalid {
        field: "reason",
        reason: why.into(),
    };
    if reason.trim().is_empty() {
        return Err(invalid("say why the account is suspended"));
    }
    if reason.chars().count() > 200 {
        return Err(invalid("at most 200 characters"));
    }
    if reason.chars().any(char::is_control) {
        return Err(invalid("one line, without control characters"));
    }
    Ok(())
}

impl ControlStore for SqliteStore {
    async fn add_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        check_name("tenant name", name)?;
        let mut raw = [0u8; 8];
        rand::rng().fill_bytes(&mut raw);
        let id: String = std::iter::once("t_".to_string())
            .chain(raw.iter().map(|b| format!("{b:02x}")))
            .collect();
        let created_ms = now_ms();
        let inserted = sqlx::query("INSERT INTO tenants (id, name, created_ms) VALUES (?, ?, ?)")
            .bind(&id)
            .bind(name)
            .bind(created_ms)
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(Tenant {
                id,
                name: name.to_string(),
                created_ms,
                rate_per_sec: None,
                daily_quota: None,
                suspended: None,
            }),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(StoreError::DuplicateTenant(name.to_string()))
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query("SELECT * FROM tenants ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(crate::rows::tenant)
            .collect::<Result<_, _>>()?)
    }

    async fn tenant(&self, id_or_name: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query("SELECT * FROM tenants WHERE id = ? OR name = ?")
            .bind(id_or_name)
            .bind(id_or_name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(crate::rows::tenant).transpose()?)
    }

    async fn remove_tenant(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        // Tables keyed by tenant without a foreign key (derived data): cleared here.
        for table in [
            "DELETE FROM event_tags WHERE tenant = ?",
            "DELETE FROM rollup_minute WHERE tenant_id = ?",
            "DELETE FROM rollup_hour WHERE tenant_id = ?",
            "DELETE FROM rollup_day WHERE tenant_id = ?",
            "DELETE FROM latency_minute WHERE tenant_id = ?",
            "DELETE FROM latency_hour WHERE tenant_id = ?",
            "DELETE FROM latency_day WHERE tenant_id = ?",
            "DELETE FROM contact_engagement WHERE tenant_id = ?",
        ] {
            sqlx::query(table).bind(id).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM tenants WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_tenant_limits(
        &self,
        id: &str,
        rate_per_sec: Option<i64>,
        daily_quota: Option<i64>,
    ) -> Result<(), StoreError> {
        for (field, value) in [("rate_per_sec", rate_per_sec), ("daily_quota", daily_quota)] {
            if value.is_some_and(|v| v < 1) {
                return Err(StoreError::Invalid {
                    field,
                    reason: "must be at least 1 (or unset for no limit)".into(),
                });
            }
        }
        let done = sqlx::query("UPDATE tenants SET rate_per_sec = ?, daily_quota = ? WHERE id = ?")
            .bind(rate_per_sec)
            .bind(daily_quota)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("tenant {id}")));
        }
        Ok(())
    }

    async fn set_tenant_suspended(&self, id: &str, reason: Option<&str>) -> Result<(), StoreError> {
        if let Some(reason) = reason {
            check_reason(reason)?;
        }
        let done = sqlx::query(
            "UPDATE tenants SET suspended_ms = CASE WHEN ?1 IS NULL THEN NULL ELSE ?2 END,
             suspended_reason = ?1 WHERE id = ?3",
        )
        .bind(reason)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("tenant {id}")));
        }
        Ok(())
    }

    async fn add_key(
        &self,
        tenant_id: &str,
        name: &str,
        scopes: Scopes,
    ) -> Result<NewKey, StoreError> {
        check_name("key name", name)?;
        if scopes == Scopes::default() {
            return Err(StoreError::Invalid {
                field: "scopes",
                reason: "a key needs at least one scope".into(),
            });
        }
        let (id, token, hash) = keys::generate();
        let created_ms = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, secret_sha256, scopes, created_ms) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(name)
        .bind(hash)
        .bind(scopes.to_text())
        .bind(created_ms)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(NewKey {
                key: ApiKey {
                    id,
                    tenant_id: tenant_id.to_string(),
                    name: name.to_string(),
                    scopes,
                    created_ms,
                    revoked_ms: None,
                    tenant_suspended: None,
                },
                token,
            }),
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                Err(StoreError::NotFound(format!("tenant {tenant_id}")))
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn keys(&self, tenant_id: &str) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT k.id, k.tenant_id, k.name, k.scopes, k.created_ms, k.revoked_ms, \
             t.suspended_reason FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
             WHERE k.tenant_id = ? ORDER BY k.created_ms, k.id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::rows::key).collect()
    }

    async fn revoke_key(&self, tenant_id: &str, key_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_ms = ? \
             WHERE id = ? AND tenant_id = ? AND revoked_ms IS NULL",
        )
        .bind(now_ms())
        .bind(key_id)
        .bind(tenant_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn authenticate(&self, token: &str) -> Result<Option<ApiKey>, StoreError> {
        let Ok((id, presented)) = keys::parse(token) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT k.id, k.tenant_id, k.name, k.scopes, k.created_ms, k.revoked_ms, \
             k.secret_sha256, t.suspended_reason \
             FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
             WHERE k.id = ? AND k.revoked_ms IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: Vec<u8> = row.try_get("secret_sha256")?;
        if !keys::same(&stored, &presented) {
            return Ok(None);
        }
        Ok(Some(crate::rows::key(&row)?))
    }

    async fn usage(&self, tenant_id: &str, day: i64) -> Result<i64, StoreError> {
        let used: Option<i64> =
            sqlx::query_scalar("SELECT messages FROM tenant_usage WHERE tenant_id = ? AND day = ?")
                .bind(tenant_id)
                .bind(day)
                .fetch_optional(&self.pool)
                .await?;
        Ok(used.unwrap_or(0))
    }

    async fn add_usage(&self, tenant_id: &str, day: i64, messages: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tenant_usage (tenant_id, day, messages) VALUES (?, ?, ?) \
             ON CONFLICT (tenant_id, day) DO UPDATE SET messages = messages + excluded.messages",
        )
        .bind(tenant_id)
        .bind(day)
        .bind(messages)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn begin_idempotent(
        &self,
        tenant_id: &str,
        key: &str,
        request_sha256: &[u8],
        retention_ms: i64,
    ) -> Result<Idempotent, StoreError> {
        let now = now_ms();
        sqlx::query("DELETE FROM idempotency WHERE created_ms < ?")
            .bind(now - retention_ms)
            .execute(&self.pool)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency (tenant_id, key, request_sha256, created_ms) VALUES (?, ?, ?, ?)",
        )
        .bind(tenant_id)
        .bind(key)
        .bind(request_sha256)
        .bind(now)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => return Ok(Idempotent::New),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {}
            Err(err) => return Err(err.into()),
        }
        let row = sqlx::query(
            "SELECT request_sha256, status, headers, body FROM idempotency WHERE tenant_id = ? AND key = ?",
        )
        .bind(tenant_id)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            // Pruned between the insert and the read: a new request after all.
            return Ok(Idempotent::InProgress);
        };
        let stored_hash: Vec<u8> = row.try_get("request_sha256")?;
        if !keys::same(&stored_hash, request_sha256) {
            return Ok(Idempotent::Mismatch);
        }
        let status: Option<i64> = row.try_get("status")?;
        let Some(status) = status else {
            return Ok(Idempotent::InProgress);
        };
        let headers: Option<String> = row.try_get("headers")?;
        let body: Option<Vec<u8>> = row.try_get("body")?;
        Ok(Idempotent::Done(StoredResponse {
            status: status as u16,
            headers: headers
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split_once(": "))
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.unwrap_or_default(),
        }))
    }

    async fn finish_idempotent(
        &self,
        tenant_id: &str,
        key: &str,
        response: Option<&StoredResponse>,
    ) -> Result<(), StoreError> {
        match response {
            Some(response) => {
                let headers: String = response
                    .headers
                    .iter()
                    .map(|(n, v)| format!("{n}: {v}\n"))
                    .collect();
                sqlx::query(
                    "UPDATE idempotency SET status = ?, headers = ?, body = ? WHERE tenant_id = ? AND key = ?",
                )
                .bind(i64::from(response.status))
                .bind(headers)
                .bind(&response.body)
                .bind(tenant_id)
                .bind(key)
                .execute(&self.pool)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM idempotency WHERE tenant_id = ? AND key = ?")
                    .bind(tenant_id)
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    async fn add_domain(&self, domain: SendingDomain) -> Result<SendingDomain, StoreError> {
        let name = check_domain(&domain.domain)?;
        check_name("selector", &domain.selector)?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT tenant_id FROM domains WHERE domain = ?")
                .bind(&name)
                .fetch_optional(&self.pool)
                .await?;
        match existing {
            Some(owner) if owner == domain.tenant_id => {
                return Err(StoreError::DuplicateDomain(name));
            }
            Some(_) => return Err(StoreError::DomainTaken(name)),
            None => {}
        }
        let stored = SendingDomain {
            domain: name,
            created_ms: now_ms(),
            ..domain
        };
        let inserted = sqlx::query(
            "INSERT INTO domains (domain, tenant_id, selector, algorithm, private_key, public_key, created_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&stored.domain)
        .bind(&stored.tenant_id)
        .bind(&stored.selector)
        .bind(&stored.algorithm)
        .bind(&stored.private_key)
        .bind(&stored.public_key)
        .bind(stored.created_ms)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(stored),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(StoreError::DomainTaken(stored.domain))
            }
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                Err(StoreError::NotFound(format!("tenant {}", stored.tenant_id)))
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn domains(&self, tenant_id: &str) -> Result<Vec<SendingDomain>, StoreError> {
        let rows = sqlx::query("SELECT * FROM domains WHERE tenant_id = ? ORDER BY domain")
            .bind(tenant_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(crate::rows::domain)
            .collect::<Result<_, _>>()?)
    }

    async fn sending_domain(
        &self,
        tenant_id: &str,
        domain: &str,
    ) -> Result<Option<SendingDomain>, StoreError> {
        let row = sqlx::query("SELECT * FROM domains WHERE tenant_id = ? AND domain = ?")
            .bind(tenant_id)
            .bind(domain.trim_end_matches('.').to_ascii_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(crate::rows::domain).transpose()?)
    }

    async fn domain_owner(&self, domain: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT tenant_id FROM domains WHERE domain = ?")
                .bind(domain.to_ascii_lowercase())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn remove_domain(&self, tenant_id: &str, domain: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM domains WHERE tenant_id = ? AND domain = ?")
            .bind(tenant_id)
            .bind(domain.trim_end_matches('.').to_ascii_lowercase())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
