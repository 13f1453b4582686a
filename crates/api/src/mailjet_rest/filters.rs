//! Mailjet's `contactfilter` (segments). Mailjet's expressions, such as
//! `(age < 35) AND (country = "JP") AND hasopenedsince(30)`, are read into the native
//! segment language (`and`/`or`/`not`, `<>` as `!=`, `hasopenedsince(n)` and
//! `hasclickedsince(n)` as `opened(within: nd)` and `clicked(within: nd)`, `email` as
//! `address`), then checked against the tenant's properties like any segment: the text
//! never becomes SQL.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use store::{CompatKind, SavedSegment};

use super::{MjError, MjKey, MjStore, Page, body, created, data, number, numbers, object, text};
use crate::ApiState;
use crate::auth::{Manage, Read};

/// A Mailjet expression in the native segment language.
pub fn translate(expression: &str) -> String {
    let chars: Vec<char> = expression.chars().collect();
    let mut out = String::with_capacity(expression.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' {
            // A quoted string goes through as it is, escapes included.
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(chars.len());
            out.extend(&chars[start..i]);
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect::<String>().to_lowercase();
            let event = match word.as_str() {
                "hasopenedsince" => Some("opened"),
                "hasclickedsince" => Some("clicked"),
                _ => None,
            };
            if let Some(event) = event {
                let rest: String = chars[i..].iter().collect();
                let trimmed = rest.trim_start();
                if let Some(inner) = trimmed.strip_prefix('(')
                    && let Some(close) = inner.find(')')
                    && inner[..close].trim().chars().all(|d| d.is_ascii_digit())
                    && !inner[..close].trim().is_empty()
                {
                    out.push_str(&format!("{event}(within: {}d)", inner[..close].trim()));
                    let consumed = rest.len() - trimmed.len() + 1 + close + 1;
                    i += rest[..consumed].chars().count();
                    continue;
                }
            }
            out.push_str(match word.as_str() {
                "email" => "address",
                other => other,
            });
        } else if c == '<' && chars.get(i + 1) == Some(&'>') {
            out.push_str("!=");
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn filter_json(segment: &SavedSegment, number: i64, description: &str) -> Value {
    json!({
        "Description": description,
        "Expression": segment.query,
        "ID": number,
        "Name": segment.name,
        "Status": "unused",
    })
}

/// `GET /v3/REST/contactfilter`
pub(crate) async fn all<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Query(query): Query<HashMap<String, String>>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let page = Page::from(&query)?;
    let segments = state.tenancy.store.segments(&key.tenant_id).await?;
    let ids: Vec<String> = segments.iter().map(|s| s.id.clone()).collect();
    let numbers = numbers(&state, &key.tenant_id, CompatKind::Segment, &ids).await?;
    let items: Vec<Value> = segments
        .iter()
        .zip(numbers)
        .map(|(s, n)| filter_json(s, n, ""))
        .collect();
    let (items, total) = page.apply(items);
    Ok(data(items, total))
}

/// `POST /v3/REST/contactfilter`: `{"Name", "Expression", "Description"?}`; an expression
/// that does not check is refused with the column and the property at fault.
pub(crate) async fn add<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let map = body(&bytes)?;
    let name = text(&map, "Name")?.ok_or_else(|| MjError::bad("\"Name\" is required"))?;
    let expression =
        text(&map, "Expression")?.ok_or_else(|| MjError::bad("\"Expression\" is required"))?;
    let description = text(&map, "Description")?.unwrap_or("");
    let query = translate(expression);
    let store = &state.tenancy.store;
    let (properties, lists) = tokio::try_join!(
        store.properties(&key.tenant_id),
        store.lists(&key.tenant_id)
    )?;
    audience::parse_segment(&query, &properties, &lists)
        .map_err(|err| MjError::bad(format!("\"Expression\" {err} (read as: {query})")))?;
    let saved = store.save_segment(&key.tenant_id, name, &query).await?;
    let number = number(&state, &key.tenant_id, CompatKind::Segment, &saved.id).await?;
    Ok(created(filter_json(&saved, number, description)))
}

async fn tenants_filter<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    number: &str,
) -> Result<SavedSegment, MjError> {
    let id = object(state, tenant_id, CompatKind::Segment, number).await?;
    state
        .tenancy
        .store
        .segment(tenant_id, &id)
        .await?
        .ok_or_else(MjError::not_found)
}

/// `GET /v3/REST/contactfilter/{id}`
pub(crate) async fn get<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let segment = tenants_filter(&state, &key.tenant_id, &id).await?;
    let number = number(&state, &key.tenant_id, CompatKind::Segment, &segment.id).await?;
    Ok(data(vec![filter_json(&segment, number, "")], 1))
}

/// `DELETE /v3/REST/contactfilter/{id}`
pub(crate) async fn remove<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
) -> Result<Response, MjError> {
    let segment = tenants_filter(&state, &key.tenant_id, &id).await?;
    state
        .tenancy
        .store
        .remove_segment(&key.tenant_id, &segment.id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn mailjet_expressions_read_as_segments() {
        assert_eq!(
            translate(r#"(Age<35) AND (Country = "JP") AND hasopenedsince(30)"#),
            r#"(age<35) and (country = "JP") and opened(within: 30d)"#
        );
        assert_eq!(
            translate(r#"NOT (plan <> 'AND OR') OR hasclickedsince( 7 )"#),
            r#"not (plan != 'AND OR') or clicked(within: 7d)"#
        );
        assert_eq!(
            translate(r#"Email = "a@b.test""#),
            r#"address = "a@b.test""#
        );
    }
}
