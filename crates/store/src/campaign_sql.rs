//! The SQL both stores use for campaigns: the audience a campaign fixes (as a condition and
//! as the INSERT numbering its recipients), names, and stored message ids.

use crate::StoreError;
use crate::campaigns::AudiencePlan;
use crate::segments_sql::{Compiled, Dialect, Param, compile_for};

pub(crate) fn checked_name(name: &str) -> Result<&str, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid {
            field: "name",
            reason: "1 to 200 characters on one line".into(),
        });
    }
    Ok(name)
}

/// Message ids stored 16 bytes each, big-endian.
pub(crate) fn ids_of(bytes: &[u8]) -> Vec<u128> {
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
pub(crate) fn audience_condition(
    dialect: Dialect,
    tenant_id: &str,
    plan: &AudiencePlan,
) -> Compiled {
    let (truth, falsity) = match dialect {
        Dialect::Sqlite => ("1", "0"),
        Dialect::Postgres => ("TRUE", "FALSE"),
    };
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
            let compiled = compile_for(dialect, condition, tenant_id);
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
        falsity,
        &mut params,
    );
    let unwanted = all(
        &plan.exclude_lists,
        None,
        &plan.exclude_segments,
        " OR ",
        falsity,
        &mut params,
    );
    let within = all(
        &[],
        None,
        &plan.filter_segments,
        " AND ",
        truth,
        &mut params,
    );
    params.push(Param::Text(tenant_id.to_string()));
    let sql = format!(
        "c.tenant_id = ? AND ({wanted}) AND NOT ({unwanted}) AND ({within}) \
         AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.tenant_id = ? AND s.address = c.address)"
    );
    Compiled {
        sql,
        params,
        dialect,
    }
}

pub(crate) fn audience_query(dialect: Dialect, tenant_id: &str, plan: &AudiencePlan) -> Compiled {
    let Compiled {
        sql: condition,
        params,
        ..
    } = audience_condition(dialect, tenant_id, plan);
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
        dialect,
    }
}
