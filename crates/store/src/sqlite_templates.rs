//! [`TemplateStore`] on SQLite.

use rand::RngCore;

use crate::templates::{Dialect, StoredTemplate, TemplateStore, TemplateVersion, VersionContent};
use crate::{SqliteStore, StoreError, now_ms};

/// The template must be the tenant's.
async fn owned(store: &SqliteStore, tenant_id: &str, template_id: &str) -> Result<(), StoreError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM templates WHERE tenant_id = ? AND id = ?")
            .bind(tenant_id)
            .bind(template_id)
            .fetch_optional(&store.pool)
            .await?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::NotFound(format!("template {template_id}")))
}

impl TemplateStore for SqliteStore {
    async fn add_template(
        &self,
        tenant_id: &str,
        name: &str,
        dialect: Dialect,
    ) -> Result<StoredTemplate, StoreError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(StoreError::Invalid {
                field: "name",
                reason: "1 to 100 characters on one line".into(),
            });
        }
        let mut raw = [0u8; 8];
        rand::rng().fill_bytes(&mut raw);
        let id: String = std::iter::once("tp_".to_string())
            .chain(raw.iter().map(|b| format!("{b:02x}")))
            .collect();
        let created_ms = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO templates (id, tenant_id, name, dialect, created_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(name)
        .bind(dialect.as_str())
        .bind(created_ms)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(StoredTemplate {
                id,
                name: name.to_string(),
                dialect,
                active_version: None,
                created_ms,
            }),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(StoreError::Invalid {
                    field: "name",
                    reason: format!("a template named {name:?} exists already"),
                })
            }
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                Err(StoreError::NotFound(format!("tenant {tenant_id}")))
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn templates(&self, tenant_id: &str) -> Result<Vec<StoredTemplate>, StoreError> {
        let rows = sqlx::query("SELECT * FROM templates WHERE tenant_id = ? ORDER BY name")
            .bind(tenant_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(crate::rows::template)
            .collect::<Result<_, _>>()?)
    }

    async fn template(
        &self,
        tenant_id: &str,
        id_or_name: &str,
    ) -> Result<Option<StoredTemplate>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM templates WHERE tenant_id = ?1 AND (id = ?2 OR name = ?2) \
             ORDER BY id = ?2 DESC LIMIT 1",
        )
        .bind(tenant_id)
        .bind(id_or_name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(crate::rows::template).transpose()?)
    }

    async fn remove_template(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM templates WHERE tenant_id = ? AND id = ?")
            .bind(tenant_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn add_version(
        &self,
        tenant_id: &str,
        template_id: &str,
        content: &VersionContent,
        activate: bool,
    ) -> Result<TemplateVersion, StoreError> {
        let mut tx = self.write_tx().await?;
        let active: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT active_version FROM templates WHERE tenant_id = ? AND id = ?",
        )
        .bind(tenant_id)
        .bind(template_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(active) = active else {
            return Err(StoreError::NotFound(format!("template {template_id}")));
        };
        let next: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM template_versions WHERE template_id = ?",
        )
        .bind(template_id)
        .fetch_one(&mut *tx)
        .await?;
        let created_ms = now_ms();
        sqlx::query(
            "INSERT INTO template_versions (template_id, version, subject, html, text, test_data, \
             created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(template_id)
        .bind(next)
        .bind(&content.subject)
        .bind(content.html.as_deref())
        .bind(content.text.as_deref())
        .bind(&content.test_data)
        .bind(created_ms)
        .execute(&mut *tx)
        .await?;
        if activate || active.is_none() {
            sqlx::query("UPDATE templates SET active_version = ? WHERE id = ?")
                .bind(next)
                .bind(template_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(TemplateVersion {
            version: next,
            content: content.clone(),
            created_ms,
            used_ms: None,
        })
    }

    async fn update_version(
        &self,
        tenant_id: &str,
        template_id: &str,
        version: i64,
        content: &VersionContent,
    ) -> Result<bool, StoreError> {
        owned(self, tenant_id, template_id).await?;
        let Some(current) = self.version(tenant_id, template_id, version).await? else {
            return Ok(false);
        };
        if current.used_ms.is_some() {
            return Err(StoreError::Invalid {
                field: "version",
                reason: format!("version {version} was used by a message: add a new version"),
            });
        }
        let done = sqlx::query(
            "UPDATE template_versions SET subject = ?, html = ?, text = ?, test_data = ? \
             WHERE template_id = ? AND version = ? AND used_ms IS NULL",
        )
        .bind(&content.subject)
        .bind(content.html.as_deref())
        .bind(content.text.as_deref())
        .bind(&content.test_data)
        .bind(template_id)
        .bind(version)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn versions(
        &self,
        tenant_id: &str,
        template_id: &str,
    ) -> Result<Vec<TemplateVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT v.* FROM template_versions v JOIN templates t ON t.id = v.template_id \
             WHERE t.tenant_id = ? AND v.template_id = ? ORDER BY v.version",
        )
        .bind(tenant_id)
        .bind(template_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(crate::rows::template_version)
            .collect::<Result<_, _>>()?)
    }

    async fn version(
        &self,
        tenant_id: &str,
        template_id: &str,
        version: i64,
    ) -> Result<Option<TemplateVersion>, StoreError> {
        let row = sqlx::query(
            "SELECT v.* FROM template_versions v JOIN templates t ON t.id = v.template_id \
             WHERE t.tenant_id = ? AND v.template_id = ? AND v.version = ?",
        )
        .bind(tenant_id)
        .bind(template_id)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .as_ref()
            .map(crate::rows::template_version)
            .transpose()?)
    }

    async fn activate_version(
        &self,
        tenant_id: &str,
        template_id: &str,
        version: i64,
    ) -> Result<bool, StoreError> {
        if self
            .version(tenant_id, template_id, version)
            .await?
            .is_none()
        {
            return Ok(false);
        }
        sqlx::query("UPDATE templates SET active_version = ? WHERE tenant_id = ? AND id = ?")
            .bind(version)
            .bind(tenant_id)
            .bind(template_id)
            .execute(&self.pool)
            .await?;
        Ok(true)
    }

    async fn mark_version_used(&self, template_id: &str, version: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE template_versions SET used_ms = ? \
             WHERE template_id = ? AND version = ? AND used_ms IS NULL",
        )
        .bind(now_ms())
        .bind(template_id)
        .bind(version)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
