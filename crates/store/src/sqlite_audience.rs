//! [`AudienceStore`] on SQLite.

use std::collections::HashMap;

use rand::RngCore;
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::audience::{
    AudienceStore, Condition, Consent, Contact, ContactInput, ContactList, ContactQuery, Existing,
    ListConfirmation, MemberStatus, Membership, PropertyDef, PropertyKind, SavedSegment, Upserted,
};
use crate::sqlite_segments::{Param, compile};
use crate::{SqliteStore, StoreError, now_ms};

/// Contacts per INSERT statement (SQLite binds at most 32,766 values; 8 per row).
const UPSERT_ROWS: usize = 1000;
/// Most contacts or members one page returns.
pub const CONTACTS_PAGE_MAX: u32 = 1000;

fn invalid(field: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field,
        reason: reason.into(),
    }
}

fn property_from(row: &SqliteRow) -> Result<PropertyDef, StoreError> {
    let kind: String = row.try_get("kind")?;
    let choices: Option<String> = row.try_get("choices")?;
    let kind = match kind.as_str() {
        "text" => PropertyKind::Text,
        "number" => PropertyKind::Number,
        "datetime" => PropertyKind::DateTime,
        "boolean" => PropertyKind::Boolean,
        "choice" => PropertyKind::Choice(
            choices
                .and_then(|c| serde_json::from_str(&c).ok())
                .unwrap_or_default(),
        ),
        other => return Err(invalid("kind", format!("stored kind {other:?} is unknown"))),
    };
    Ok(PropertyDef {
        name: row.try_get("name")?,
        kind,
        created_ms: row.try_get("created_ms")?,
    })
}

fn contact_from(row: &SqliteRow) -> Result<Contact, StoreError> {
    let props: String = row.try_get("props")?;
    Ok(Contact {
        id: row.try_get("id")?,
        address: row.try_get("address")?,
        timezone: row.try_get("timezone")?,
        locale: row.try_get("locale")?,
        country: row.try_get("country")?,
        properties: serde_json::from_str(&props).unwrap_or_default(),
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
    })
}

fn list_from(row: &SqliteRow) -> Result<ContactList, StoreError> {
    Ok(ContactList {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        double_opt_in: row.try_get::<i64, _>("double_opt_in")? != 0,
        subscribed: row.try_get("subscribed")?,
        unconfirmed: row.try_get("unconfirmed")?,
        unsubscribed: row.try_get("unsubscribed")?,
        created_ms: row.try_get("created_ms")?,
        confirmation: match (
            row.try_get::<Option<String>, _>("confirm_from")?,
            row.try_get::<Option<String>, _>("confirm_subject")?,
            row.try_get::<Option<String>, _>("confirm_text")?,
        ) {
            (Some(from), Some(subject), Some(text)) => Some(ListConfirmation {
                from,
                subject,
                text,
                redirect: row.try_get("form_redirect")?,
            }),
            _ => None,
        },
    })
}

fn membership_from(row: &SqliteRow) -> Result<Membership, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(Membership {
        list_id: row.try_get("list_id")?,
        contact_id: row.try_get("contact_id")?,
        status: MemberStatus::parse(&status)
            .ok_or_else(|| invalid("status", format!("stored status {status:?} is unknown")))?,
        consent: Consent {
            source: row.try_get("source")?,
            time_ms: row.try_get("consent_ms")?,
            address: row.try_get("consent_address")?,
            confirmed_ms: row.try_get("confirmed_ms")?,
        },
        updated_ms: row.try_get("updated_ms")?,
    })
}

/// A fresh id: `prefix` and 64 random bits in hex.
fn new_id(prefix: &str) -> String {
    let mut raw = [0u8; 8];
    rand::rng().fill_bytes(&mut raw);
    std::iter::once(prefix.to_string())
        .chain(raw.iter().map(|b| format!("{b:02x}")))
        .collect()
}

/// A row of a tenant's `table` (`contact_lists` or `segments`) by id, or else by name.
async fn by_id_or_name(
    store: &SqliteStore,
    table: &'static str,
    tenant_id: &str,
    key: &str,
) -> Result<Option<SqliteRow>, StoreError> {
    Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM {table} WHERE tenant_id = ?1 AND (id = ?2 OR name = ?2) \
         ORDER BY id = ?2 DESC LIMIT 1"
    )))
    .bind(tenant_id)
    .bind(key)
    .fetch_optional(&store.pool)
    .await?)
}

fn segment_from(row: &SqliteRow) -> Result<SavedSegment, StoreError> {
    Ok(SavedSegment {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        query: row.try_get("query")?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
    })
}

fn check_property_name(name: &str) -> Result<(), StoreError> {
    let mut chars = name.chars();
    let starts = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !(starts && rest && name.len() <= 64) {
        return Err(invalid(
            "name",
            "a letter, then lower-case letters, digits or _ (at most 64)",
        ));
    }
    if matches!(
        name,
        "id" | "address" | "email" | "timezone" | "locale" | "country" | "created" | "updated"
    ) {
        return Err(invalid("name", format!("{name} is a contact's own field")));
    }
    Ok(())
}

/// Adds `delta` per status to a list's counts.
async fn adjust_counts(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    list_id: &str,
    delta: &HashMap<MemberStatus, i64>,
) -> Result<(), StoreError> {
    let get = |s| delta.get(&s).copied().unwrap_or(0);
    sqlx::query(
        "UPDATE contact_lists SET subscribed = subscribed + ?, unconfirmed = unconfirmed + ?, \
         unsubscribed = unsubscribed + ? WHERE id = ?",
    )
    .bind(get(MemberStatus::Subscribed))
    .bind(get(MemberStatus::Unconfirmed))
    .bind(get(MemberStatus::Unsubscribed))
    .bind(list_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The current statuses of `contact_ids` on a list (those that are members).
async fn statuses(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    list_id: &str,
    contact_ids: &[i64],
) -> Result<HashMap<i64, MemberStatus>, StoreError> {
    let mut out = HashMap::new();
    for chunk in contact_ids.chunks(UPSERT_ROWS) {
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT contact_id, status FROM list_members WHERE list_id = ");
        q.push_bind(list_id).push(" AND contact_id IN (");
        let mut ids = q.separated(", ");
        for id in chunk {
            ids.push_bind(*id);
        }
        q.push(")");
        for row in q.build().fetch_all(&mut **tx).await? {
            let status: String = row.try_get("status")?;
            if let Some(status) = MemberStatus::parse(&status) {
                out.insert(row.try_get("contact_id")?, status);
            }
        }
    }
    Ok(out)
}

async fn list_in(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    tenant_id: &str,
    list_id: &str,
) -> Result<ContactList, StoreError> {
    let row = sqlx::query("SELECT * FROM contact_lists WHERE tenant_id = ? AND id = ?")
        .bind(tenant_id)
        .bind(list_id)
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => list_from(&row),
        None => Err(StoreError::NotFound(format!("list {list_id}"))),
    }
}

/// Adds and updates contacts inside `tx` (see [`AudienceStore::upsert_contacts`]).
pub(crate) async fn upsert_in(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    tenant_id: &str,
    contacts: &[ContactInput],
    existing: Existing,
) -> Result<Upserted, StoreError> {
    // Fold repeated addresses into one, at the first one's position: later fields and
    // properties override earlier ones, as successive updates would.
    let mut order: Vec<&str> = Vec::with_capacity(contacts.len());
    let mut latest: HashMap<&str, ContactInput> = HashMap::with_capacity(contacts.len());
    for contact in contacts {
        match latest.get_mut(contact.address.as_str()) {
            Some(folded) => {
                folded.timezone = contact.timezone.clone().or(folded.timezone.take());
                folded.locale = contact.locale.clone().or(folded.locale.take());
                folded.country = contact.country.clone().or(folded.country.take());
                folded.properties.extend(
                    contact
                        .properties
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
            }
            None => {
                latest.insert(contact.address.as_str(), contact.clone());
                order.push(contact.address.as_str());
            }
        }
    }
    let now = now_ms();
    let mut out = Upserted::default();
    let mut ids: HashMap<String, i64> = HashMap::with_capacity(order.len());
    // New contacts given a null property (meaning "clear it"): stored without it below.
    let mut with_nulls: Vec<&str> = Vec::new();
    for chunk in order.chunks(UPSERT_ROWS) {
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT address FROM contacts WHERE tenant_id = ");
        q.push_bind(tenant_id).push(" AND address IN (");
        let mut list = q.separated(", ");
        for address in chunk {
            list.push_bind(*address);
        }
        q.push(")");
        let known: std::collections::HashSet<String> = q
            .build()
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("address"))
            .collect::<Result<_, _>>()?;
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO contacts (tenant_id, address, timezone, locale, country, props, \
             created_ms, updated_ms) ",
        );
        q.push_values(chunk, |mut row, address| {
            let c = &latest[address];
            row.push_bind(tenant_id)
                .push_bind(*address)
                .push_bind(c.timezone.as_deref())
                .push_bind(c.locale.as_deref())
                .push_bind(c.country.as_deref())
                .push_bind(Value::Object(c.properties.clone()).to_string())
                .push_bind(now)
                .push_bind(now);
        });
        match existing {
            // json_patch on a new row's '{}' drops null values too.
            Existing::Update => q.push(
                " ON CONFLICT (tenant_id, address) DO UPDATE SET \
                 timezone = COALESCE(excluded.timezone, timezone), \
                 locale = COALESCE(excluded.locale, locale), \
                 country = COALESCE(excluded.country, country), \
                 props = json_patch(props, excluded.props), updated_ms = excluded.updated_ms",
            ),
            Existing::Keep => q.push(" ON CONFLICT (tenant_id, address) DO NOTHING"),
        };
        q.push(" RETURNING id, address");
        for row in q.build().fetch_all(&mut **tx).await? {
            ids.insert(row.try_get("address")?, row.try_get("id")?);
        }
        for address in chunk {
            if !known.contains(*address) && latest[address].properties.values().any(Value::is_null)
            {
                with_nulls.push(address);
            }
            match (known.contains(*address), existing) {
                (false, _) => out.added += 1,
                (true, Existing::Update) => out.updated += 1,
                (true, Existing::Keep) => out.unchanged += 1,
            }
        }
    }
    // One statement serves both new and existing contacts, so new ones were stored with
    // their nulls as given: drop them (json_patch onto '{}' removes null members).
    for chunk in with_nulls.chunks(UPSERT_ROWS) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "UPDATE contacts SET props = json_patch('{}', props) WHERE tenant_id = ",
        );
        q.push_bind(tenant_id).push(" AND address IN (");
        let mut list = q.separated(", ");
        for address in chunk {
            list.push_bind(*address);
        }
        q.push(")");
        q.build().execute(&mut **tx).await?;
    }
    if existing == Existing::Keep {
        // Contacts left alone did not come back from RETURNING: look their ids up.
        let missing: Vec<&str> = order
            .iter()
            .copied()
            .filter(|a| !ids.contains_key(*a))
            .collect();
        for chunk in missing.chunks(UPSERT_ROWS) {
            let mut q: QueryBuilder<Sqlite> =
                QueryBuilder::new("SELECT id, address FROM contacts WHERE tenant_id = ");
            q.push_bind(tenant_id).push(" AND address IN (");
            let mut list = q.separated(", ");
            for address in chunk {
                list.push_bind(*address);
            }
            q.push(")");
            for row in q.build().fetch_all(&mut **tx).await? {
                ids.insert(row.try_get("address")?, row.try_get("id")?);
            }
        }
    }
    out.ids = order.iter().filter_map(|a| ids.get(*a).copied()).collect();
    Ok(out)
}

/// Sets members' statuses inside `tx` (see [`AudienceStore::set_members`]).
pub(crate) async fn set_members_in(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    tenant_id: &str,
    list_id: &str,
    members: &[(i64, MemberStatus)],
    consent: &Consent,
) -> Result<ContactList, StoreError> {
    list_in(tx, tenant_id, list_id).await?;
    // Only this tenant's contacts; the last status given for a contact wins.
    let mut wanted: HashMap<i64, MemberStatus> = HashMap::new();
    let ids: Vec<i64> = members.iter().map(|(id, _)| *id).collect();
    let mut own = std::collections::HashSet::new();
    for chunk in ids.chunks(UPSERT_ROWS) {
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT id FROM contacts WHERE tenant_id = ");
        q.push_bind(tenant_id).push(" AND id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push(")");
        for row in q.build().fetch_all(&mut **tx).await? {
            own.insert(row.try_get::<i64, _>("id")?);
        }
    }
    for (id, status) in members {
        if own.contains(id) {
            wanted.insert(*id, *status);
        }
    }
    let wanted_ids: Vec<i64> = wanted.keys().copied().collect();
    let before = statuses(tx, list_id, &wanted_ids).await?;
    let mut delta: HashMap<MemberStatus, i64> = HashMap::new();
    let now = now_ms();
    let rows: Vec<(i64, MemberStatus)> = wanted.into_iter().collect();
    for (id, status) in &rows {
        if let Some(old) = before.get(id) {
            *delta.entry(*old).or_default() -= 1;
        }
        *delta.entry(*status).or_default() += 1;
    }
    for chunk in rows.chunks(UPSERT_ROWS / 2) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO list_members (list_id, contact_id, status, source, consent_ms, \
             consent_address, confirmed_ms, updated_ms) ",
        );
        q.push_values(chunk, |mut row, (id, status)| {
            let confirmed = match status {
                MemberStatus::Subscribed => consent.confirmed_ms,
                _ => None,
            };
            row.push_bind(list_id)
                .push_bind(*id)
                .push_bind(status.as_str())
                .push_bind(&consent.source)
                .push_bind(consent.time_ms)
                .push_bind(consent.address.as_deref())
                .push_bind(confirmed)
                .push_bind(now);
        });
        // The first consent stays on record; a confirmation is added when it comes.
        q.push(
            " ON CONFLICT (list_id, contact_id) DO UPDATE SET status = excluded.status, \
             confirmed_ms = COALESCE(excluded.confirmed_ms, confirmed_ms), \
             updated_ms = excluded.updated_ms",
        );
        q.build().execute(&mut **tx).await?;
    }
    adjust_counts(tx, list_id, &delta).await?;
    list_in(tx, tenant_id, list_id).await
}

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
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin().await?;
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
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(invalid("name", "1 to 100 characters on one line"));
        }
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
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Err(invalid(
                "name",
                format!("a list named {name:?} exists already"),
            )),
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
        let mut tx = self.pool.begin().await?;
        let list = set_members_in(&mut tx, tenant_id, list_id, members, consent).await?;
        tx.commit().await?;
        Ok(list)
    }

    async fn remove_members(
        &self,
        tenant_id: &str,
        list_id: &str,
        contact_ids: &[i64],
    ) -> Result<ContactList, StoreError> {
        let mut tx = self.pool.begin().await?;
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
