//! [`AudienceStore`] on SQLite.
//!
//! - [`rows`]: row decoding and shared lookups (ids, by id or name, property names).
//! - [`writes`]: contact upserts and membership changes, inside a caller's transaction.
//! - this file: the trait, one operation per method.

pub(crate) mod rows;
mod writes;

use std::collections::HashMap;

use serde_json::Value;
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::audience::{
    AudienceStore, Condition, Consent, Contact, ContactInput, ContactList, ContactQuery, Existing,
    ListConfirmation, MemberStatus, Membership, PropertyDef, PropertyKind, SavedSegment, Upserted,
};
pub use crate::audience_checks::CONTACTS_PAGE_MAX;
use crate::audience_checks::{list_name, list_name_taken};
use crate::segments_sql::{Param, compile};
use crate::{SqliteStore, StoreError, now_ms};
use rows::*;
use writes::{adjust_counts, list_in, statuses};
pub(crate) use writes::{set_members_in, upsert_in};

/// Contacts per INSERT statement (SQLite binds at most 32,766 values; 8 per row).
const UPSERT_ROWS: usize = 1000;

impl AudienceStore for SqliteStore {
    async fn add_property(
        &self,
        tenant_id: &str,
        name: &str,
        kind: &PropertyKind,
    ) -> Result<PropertyDef, StoreError> {
        check_property_name(name)?;
        let choices = match kind {
            PropertyKind::Choice(values) => {
                if values.is_empty() || values.iter().any(|v| v.is_empty() || v.len() > 200) {
                    return Err(invalid(
                        "choices",
                        "one or more values of 1 to 200 characters",
                    ));
                }
                Some(Value::from(values.clone()).to_string())
            }
            _ => None,
        };
        let created_ms = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO contact_properties (tenant_id, name, kind, choices, created_ms) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(tenant_id)
        .bind(name)
        .bind(kind.as_str())
        .bind(choices)
        .bind(created_ms)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(PropertyDef {
                name: name.to_string(),
                kind: kind.clone(),
                created_ms,
            }),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Err(invalid(
                "name",
                format!("a property named {name} exists already"),
            )),
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                Err(StoreError::NotFound(format!("tenant {tenant_id}")))
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn properties(&self, tenant_id: &str) -> Result<Vec<PropertyDef>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM contact_properties WHERE tenant_id = ? ORDER BY name")
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(property_from).collect()
    }

    async fn remove_property(&self, tenant_id: &str, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM contact_properties WHERE tenant_id = ? AND name = ?")
            .bind(tenant_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        // The name was checked when declared: a plain key, safe in a JSON path.
        sqlx::query(
            "UPDATE contacts SET props = json_remove(props, '$.' || ?) \
             WHERE tenant_id = ? AND json_type(props, '$.' || ?) IS NOT NULL",
        )
        .bind(name)
        .bind(tenant_id)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn upsert_contacts(
        &self,
        tenant_id: &str,
        contacts: &[ContactInput],
        existing: Existing,
    ) -> Result<Upserted, StoreError> {
        let mut tx = self.write_tx().await?;
        let out = upsert_in(&mut tx, tenant_id, contacts, existing).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn contact(
        &self,
        tenant_id: &str,
        id_or_address: &str,
    ) -> Result<Option<Contact>, StoreError> {
        let row = match id_or_address.parse::<i64>() {
            Ok(id) => {
                sqlx::query("SELECT * FROM contacts WHERE tenant_id = ? AND id = ?")
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
            }
            Err(_) => {
                sqlx::query("SELECT * FROM contacts WHERE tenant_id = ? AND address = ?")
                    .bind(tenant_id)
                    .bind(id_or_address.trim().to_lowercase())
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        row.as_ref().map(contact_from).transpose()
    }

    async fn contacts(
        &self,
        tenant_id: &str,
        query: &ContactQuery,
    ) -> Result<Vec<Contact>, StoreError> {
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT * FROM contacts WHERE tenant_id = ");
        q.push_bind(tenant_id);
        if let Some(prefix) = query.prefix.as_deref().filter(|p| !p.is_empty()) {
            // A range on the (tenant, address) key rather than LIKE, which would scan.
            let prefix = prefix.to_lowercase();
            q.push(" AND address >= ")
                .push_bind(prefix.clone())
                .push(" AND address < ")
                .push_bind(format!("{prefix}\u{10FFFF}"));
        }
        if let Some(after) = query.after_id {
            q.push(" AND id > ").push_bind(after);
        }
        q.push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(query.limit.clamp(1, CONTACTS_PAGE_MAX)));
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(contact_from).collect()
    }

    async fn contact_count(&self, tenant_id: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM contacts WHERE tenant_id = ?")
                .bind(tenant_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn remove_contact(&self, tenant_id: &str, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let memberships = sqlx::query(
            "SELECT m.list_id, m.status FROM list_members m JOIN contacts c ON c.id = m.contact_id \
             WHERE c.tenant_id = ? AND c.id = ?",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for row in &memberships {
            let list_id: String = row.try_get("list_id")?;
            let status: String = row.try_get("status")?;
            if let Some(status) = MemberStatus::parse(&status) {
                adjust_counts(&mut tx, &list_id, &HashMap::from([(status, -1)])).await?;
            }
        }
        let done = sqlx::query("DELETE FROM contacts WHERE tenant_id = ? AND id = ?")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn add_list(
        &self,
        tenant_id: &str,
        name: &str,
        double_opt_in: bool,
    ) -> Result<ContactList, StoreError> {
        let name = list_name(name)?;
        let id = new_id("ls_");
        let created_ms = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO contact_lists (id, tenant_id, name, double_opt_in, created_ms) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(name)
        .bind(i64::from(double_opt_in))
        .bind(created_ms)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(ContactList {
                id,
                name: name.to_string(),
                double_opt_in,
                subscribed: 0,
                unconfirmed: 0,
                unsubscribed: 0,
                created_ms,
                confirmation: None,
            }),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(list_name_taken(name))
            }
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                Err(StoreError::NotFound(format!("tenant {tenant_id}")))
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn lists(&self, tenant_id: &str) -> Result<Vec<ContactList>, StoreError> {
        let rows = sqlx::query("SELECT * FROM contact_lists WHERE tenant_id = ? ORDER BY name")
            .bind(tenant_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(list_from).collect()
    }

    async fn list(
        &self,
        tenant_id: &str,
        id_or_name: &str,
    ) -> Result<Option<ContactList>, StoreError> {
        let row = by_id_or_name(self, "contact_lists", tenant_id, id_or_name).await?;
        row.as_ref().map(list_from).transpose()
    }

    async fn public_list(&self, id: &str) -> Result<Option<(String, ContactList)>, StoreError> {
        let row = sqlx::query("SELECT * FROM contact_lists WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(|r| Ok((r.try_get("tenant_id")?, list_from(r)?)))
            .transpose()
    }

    async fn set_list_confirmation(
        &self,
        tenant_id: &str,
        list_id: &str,
        confirmation: Option<&ListConfirmation>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE contact_lists SET confirm_from = ?, confirm_subject = ?, confirm_text = ?, \
             form_redirect = ? WHERE tenant_id = ? AND id = ?",
        )
        .bind(confirmation.map(|c| c.from.as_str()))
        .bind(confirmation.map(|c| c.subject.as_str()))
        .bind(confirmation.map(|c| c.text.as_str()))
        .bind(confirmation.and_then(|c| c.redirect.as_deref()))
        .bind(tenant_id)
        .bind(list_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn rename_list(&self, tenant_id: &str, id: &str, name: &str) -> Result<bool, StoreError> {
        let name = list_name(name)?;
        let done = sqlx::query("UPDATE contact_lists SET name = ? WHERE tenant_id = ? AND id = ?")
            .bind(name)
            .bind(tenant_id)
            .bind(id)
            .execute(&self.pool)
            .await;
        match done {
            Ok(done) => Ok(done.rows_affected() > 0),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(list_name_taken(name))
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn remove_list(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM contact_lists WHERE tenant_id = ? AND id = ?")
            .bind(tenant_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_members(
        &self,
        tenant_id: &str,
        list_id: &str,
        members: &[(i64, MemberStatus)],
        consent: &Consent,
    ) -> Result<ContactList, StoreError> {
        let mut tx = self.write_tx().await?;
        let list = set_members_in(&mut tx, tenant_id, list_id, members, consent, false).await?;
        tx.commit().await?;
        Ok(list)
    }

    async fn add_members(
        &self,
        tenant_id: &str,
        list_id: &str,
        members: &[(i64, MemberStatus)],
        consent: &Consent,
    ) -> Result<ContactList, StoreError> {
        let mut tx = self.write_tx().await?;
        let list = set_members_in(&mut tx, tenant_id, list_id, members, consent, true).await?;
        tx.commit().await?;
        Ok(list)
    }

    async fn remove_members(
        &self,
        tenant_id: &str,
        list_id: &str,
        contact_ids: &[i64],
    ) -> Result<ContactList, StoreError> {
        let mut tx = self.write_tx().await?;
        list_in(&mut tx, tenant_id, list_id).await?;
        let before = statuses(&mut tx, list_id, contact_ids).await?;
        let mut delta: HashMap<MemberStatus, i64> = HashMap::new();
        for status in before.values() {
            *delta.entry(*status).or_default() -= 1;
        }
        let gone: Vec<i64> = before.keys().copied().collect();
        for chunk in gone.chunks(UPSERT_ROWS) {
            let mut q: QueryBuilder<Sqlite> =
                QueryBuilder::new("DELETE FROM list_members WHERE list_id = ");
            q.push_bind(list_id).push(" AND contact_id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            q.push(")");
            q.build().execute(&mut *tx).await?;
        }
        adjust_counts(&mut tx, list_id, &delta).await?;
        let list = list_in(&mut tx, tenant_id, list_id).await?;
        tx.commit().await?;
        Ok(list)
    }

    async fn members(
        &self,
        tenant_id: &str,
        list_id: &str,
        status: Option<MemberStatus>,
        after_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(Contact, Membership)>, StoreError> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT c.*, m.list_id, m.contact_id, m.status, m.source, m.consent_ms, \
             m.consent_address, m.confirmed_ms, m.updated_ms AS member_updated_ms \
             FROM list_members m JOIN contact_lists l ON l.id = m.list_id \
             JOIN contacts c ON c.id = m.contact_id WHERE l.tenant_id = ",
        );
        q.push_bind(tenant_id)
            .push(" AND m.list_id = ")
            .push_bind(list_id);
        if let Some(status) = status {
            q.push(" AND m.status = ").push_bind(status.as_str());
        }
        if let Some(after) = after_id {
            q.push(" AND m.contact_id > ").push_bind(after);
        }
        q.push(" ORDER BY m.contact_id LIMIT ")
            .push_bind(i64::from(limit.clamp(1, CONTACTS_PAGE_MAX)));
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let contact = contact_from(row)?;
                let status: String = row.try_get("status")?;
                let membership = Membership {
                    list_id: row.try_get("list_id")?,
                    contact_id: row.try_get("contact_id")?,
                    status: MemberStatus::parse(&status).ok_or_else(|| {
                        invalid("status", format!("stored status {status:?} is unknown"))
                    })?,
                    consent: Consent {
                        source: row.try_get("source")?,
                        time_ms: row.try_get("consent_ms")?,
                        address: row.try_get("consent_address")?,
                        confirmed_ms: row.try_get("confirmed_ms")?,
                    },
                    updated_ms: row.try_get("member_updated_ms")?,
                };
                Ok((contact, membership))
            })
            .collect()
    }

    async fn segment_count(
        &self,
        tenant_id: &str,
        condition: &Condition,
    ) -> Result<i64, StoreError> {
        let compiled = compile(condition, tenant_id);
        let sql = format!(
            "SELECT COUNT(*) FROM contacts c WHERE c.tenant_id = ? AND {}",
            compiled.sql
        );
        let args = compiled.arguments(&[Param::Text(tenant_id.into())])?;
        Ok(sqlx::query_scalar_with(sqlx::AssertSqlSafe(sql), args)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn segment_contacts(
        &self,
        tenant_id: &str,
        condition: &Condition,
        after_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Contact>, StoreError> {
        let compiled = compile(condition, tenant_id);
        let sql = format!(
            "SELECT c.* FROM contacts c WHERE c.tenant_id = ? AND c.id > ? AND {} \
             ORDER BY c.id LIMIT {}",
            compiled.sql,
            limit.clamp(1, CONTACTS_PAGE_MAX)
        );
        let args = compiled.arguments(&[
            Param::Text(tenant_id.into()),
            Param::Int(after_id.unwrap_or(0)),
        ])?;
        let rows = sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(contact_from).collect()
    }

    async fn save_segment(
        &self,
        tenant_id: &str,
        name: &str,
        query: &str,
    ) -> Result<SavedSegment, StoreError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(invalid("name", "1 to 100 characters on one line"));
        }
        if query.len() > 10_000 {
            return Err(invalid("query", "at most 10,000 characters"));
        }
        let id = new_id("sg_");
        let now = now_ms();
        let row = sqlx::query(
            "INSERT INTO segments (id, tenant_id, name, query, created_ms, updated_ms) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, name) DO UPDATE SET \
             query = excluded.query, updated_ms = excluded.updated_ms RETURNING *",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(name)
        .bind(query)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|err| match err {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::NotFound(format!("tenant {tenant_id}"))
            }
            err => err.into(),
        })?;
        segment_from(&row)
    }

    async fn segments(&self, tenant_id: &str) -> Result<Vec<SavedSegment>, StoreError> {
        let rows = sqlx::query("SELECT * FROM segments WHERE tenant_id = ? ORDER BY name")
            .bind(tenant_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(segment_from).collect()
    }

    async fn segment(
        &self,
        tenant_id: &str,
        id_or_name: &str,
    ) -> Result<Option<SavedSegment>, StoreError> {
        let row = by_id_or_name(self, "segments", tenant_id, id_or_name).await?;
        row.as_ref().map(segment_from).transpose()
    }

    async fn remove_segment(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM segments WHERE tenant_id = ? AND id = ?")
            .bind(tenant_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn memberships(
        &self,
        tenant_id: &str,
        contact_id: i64,
    ) -> Result<Vec<Membership>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.* FROM list_members m JOIN contacts c ON c.id = m.contact_id \
             WHERE c.tenant_id = ? AND m.contact_id = ? ORDER BY m.list_id",
        )
        .bind(tenant_id)
        .bind(contact_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(membership_from).collect()
    }
}
