//! [`ConsoleStore`] on SQLite.

use rand::RngCore;

use crate::console::{AuditEntry, ConsoleStore, Login, Role, Session};
use crate::{SqliteStore, StoreError, now_ms};

/// Most audit entries one page returns.
pub const AUDIT_PAGE_MAX: u32 = 500;

/// A plausible e-mail address: one `@`, something on both sides, no spaces or controls.
pub(crate) fn check_email(email: &str) -> Result<String, StoreError> {
    let lower = email.trim().to_lowercase();
    let ok = lower.len() <= 254
        && lower.split('@').count() == 2
        && lower.split('@').all(|side| !side.is_empty())
        && !lower.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(lower)
    } else {
        Err(StoreError::Invalid {
            field: "email",
            reason: format!("{email:?} is not an e-mail address"),
        })
    }
}

impl ConsoleStore for SqliteStore {
    async fn add_login(
        &self,
        email: &str,
        tenant_id: Option<&str>,
        role: Role,
        password_hash: &str,
    ) -> Result<Login, StoreError> {
        let email = check_email(email)?;
        if (role == Role::Operator) != tenant_id.is_none() {
            return Err(StoreError::Invalid {
                field: "role",
                reason: "operators belong to no tenant; every other role to one".into(),
            });
        }
        let mut raw = [0u8; 8];
        rand::rng().fill_bytes(&mut raw);
        let id: String = std::iter::once("l_".to_string())
            .chain(raw.iter().map(|b| format!("{b:02x}")))
            .collect();
        let now = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO console_logins (id, email, tenant_id, role, password_hash, created_ms, password_changed_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&email)
        .bind(tenant_id)
        .bind(role.as_str())
        .bind(password_hash)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(Login {
                id,
                email,
                display_name: String::new(),
                tenant_id: tenant_id.map(str::to_string),
                role,
                password_hash: password_hash.to_string(),
                totp_secret: None,
                locale: None,
                created_ms: now,
                password_changed_ms: now,
            }),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(StoreError::Invalid {
                    field: "email",
                    reason: format!("a login for {email} exists already"),
                })
            }
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => Err(
                StoreError::NotFound(format!("tenant {}", tenant_id.unwrap_or(""))),
            ),
            Err(err) => Err(err.into()),
        }
    }

    async fn login(&self, email_or_id: &str) -> Result<Option<Login>, StoreError> {
        let row = sqlx::query("SELECT * FROM console_logins WHERE email = ? OR id = ?")
            .bind(email_or_id.trim().to_lowercase())
            .bind(email_or_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(crate::rows::login).transpose()?)
    }

    async fn logins(&self, tenant_id: Option<&str>) -> Result<Vec<Login>, StoreError> {
        let rows =
            match tenant_id {
                Some(tenant) => {
                    sqlx::query("SELECT * FROM console_logins WHERE tenant_id = ? ORDER BY email")
                        .bind(tenant)
                        .fetch_all(&self.pool)
                        .await?
                }
                None => sqlx::query(
                    "SELECT * FROM console_logins ORDER BY tenant_id IS NOT NULL, tenant_id, email",
                )
                .fetch_all(&self.pool)
                .await?,
            };
        Ok(rows
            .iter()
            .map(crate::rows::login)
            .collect::<Result<_, _>>()?)
    }

    async fn remove_login(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM console_logins WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_password(
        &self,
        id: &str,
        password_hash: &str,
        keep: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE console_logins SET password_hash = ?, password_changed_ms = ? WHERE id = ?",
        )
        .bind(password_hash)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM console_sessions WHERE login_id = ? AND id_sha256 IS NOT ?")
            .bind(id)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_totp(&self, id: &str, secret: Option<&[u8]>) -> Result<(), StoreError> {
        sqlx::query("UPDATE console_logins SET totp_secret = ? WHERE id = ?")
            .bind(secret)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_display_name(&self, id: &str, name: &str) -> Result<(), StoreError> {
        let name = name.trim();
        let invalid = |reason: &str| StoreError::Invalid {
            field: "display_name",
            reason: reason.into(),
        };
        if name.chars().count() > 100 {
            return Err(invalid("at most 100 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(invalid("one line, without control characters"));
        }
        let done = sqlx::query("UPDATE console_logins SET display_name = ? WHERE id = ?")
            .bind(name)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("login {id}")));
        }
        Ok(())
    }

    async fn set_role(&self, id: &str, role: Role) -> Result<(), StoreError> {
        if role == Role::Operator {
            return Err(StoreError::Invalid {
                field: "role",
                reason: "a tenant's login cannot become an operator".into(),
            });
        }
        let done = sqlx::query(
            "UPDATE console_logins SET role = ? WHERE id = ? AND tenant_id IS NOT NULL",
        )
        .bind(role.as_str())
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("login {id}")));
        }
        Ok(())
    }

    async fn set_locale(&self, id: &str, locale: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("UPDATE console_logins SET locale = ? WHERE id = ?")
            .bind(locale)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn add_session(&self, session: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_sessions (id_sha256, login_id, csrf, created_ms, seen_ms, pending_second_factor, address)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&session.id_sha256)
        .bind(&session.login_id)
        .bind(&session.csrf)
        .bind(session.created_ms)
        .bind(session.seen_ms)
        .bind(i64::from(session.pending_second_factor))
        .bind(&session.address)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn session(&self, id_sha256: &[u8]) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query("SELECT * FROM console_sessions WHERE id_sha256 = ?")
            .bind(id_sha256)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(crate::rows::session).transpose()?)
    }

    async fn touch_session(&self, id_sha256: &[u8], seen_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE console_sessions SET seen_ms = ? WHERE id_sha256 = ?")
            .bind(seen_ms)
            .bind(id_sha256)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn remove_session(&self, id_sha256: &[u8]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE id_sha256 = ?")
            .bind(id_sha256)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_sessions(
        &self,
        created_before_ms: i64,
        seen_before_ms: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM console_sessions WHERE created_ms < ? OR seen_ms < ?")
            .bind(created_before_ms)
            .bind(seen_before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn audit(
        &self,
        tenant_id: Option<&str>,
        actor: &str,
        action: &str,
        target: &str,
        address: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (time_ms, tenant_id, actor, action, target, address) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(now_ms())
        .bind(tenant_id)
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(address)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit_log(
        &self,
        tenant_id: Option<&str>,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM audit_log WHERE (?1 IS NULL OR tenant_id = ?1) AND id < ?2
             ORDER BY id DESC LIMIT ?3",
        )
        .bind(tenant_id)
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(i64::from(limit.min(AUDIT_PAGE_MAX)))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(crate::rows::audit_entry)
            .collect::<Result<_, _>>()?)
    }
}
