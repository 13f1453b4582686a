//! The writes that must happen inside a caller's transaction: contact upserts and list
//! membership changes with their counts. `AudienceStore` wraps each in its own
//! transaction; imports run them together with a batch's counters.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::UPSERT_ROWS;
use super::rows::list_from;
use crate::audience::{Consent, ContactInput, ContactList, Existing, MemberStatus, Upserted};
use crate::audience_checks::fold;
use crate::{StoreError, now_ms};

/// Adds `delta` per status to a list's counts.
pub(super) async fn adjust_counts(
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
pub(super) async fn statuses(
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

pub(super) async fn list_in(
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
    let (order, latest) = fold(contacts);
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
                .push_bind(
                    serde_json::to_string(&c.properties).unwrap_or_else(|_| String::from("{}")),
                )
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
    keep_unsubscribed: bool,
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
    if keep_unsubscribed {
        wanted.retain(|id, _| before.get(id) != Some(&MemberStatus::Unsubscribed));
    }
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
