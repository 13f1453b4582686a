//! A campaign's report (`GET /v1/campaigns/{id}/report`, and `.../report.csv`): the
//! counters kept while its events arrive, arranged as totals, rates (unique human opens and
//! clicks over delivered; machines left out), bounces by category, per mailbox provider,
//! per link and per hour, per recipient zone and per A/B variant (with the test's decision). Nothing is scanned: one read of the counters.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{CampaignsStore, tenants_campaign};
use crate::ApiState;
use crate::auth::{Authorized, Read};
use crate::error::ApiError;

const TOTALS: &[&str] = &[
    "sent",
    "delivered",
    "bounced",
    "deferred",
    "expired",
    "complained",
    "unsubscribed",
    "opened",
    "opened_unique",
    "opened_machine",
    "clicked",
    "clicked_unique",
    "clicked_machine",
];

fn rate(part: i64, whole: i64) -> Value {
    if whole > 0 {
        Value::from((part as f64 / whole as f64 * 10_000.0).round() / 10_000.0)
    } else {
        Value::from(0.0)
    }
}

/// The report as JSON from the counters (metric, dimension, count).
pub(crate) fn report_json(campaign: &store::Campaign, counts: &[(String, String, i64)]) -> Value {
    let mut totals: BTreeMap<String, i64> = TOTALS.iter().map(|m| (m.to_string(), 0)).collect();
    let mut bounces: BTreeMap<String, i64> = BTreeMap::new();
    let mut providers: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let mut zones: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let mut links: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    let mut hours: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
    let mut variants: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
    for (metric, dimension, count) in counts {
        match dimension.split_once(':') {
            None => {
                totals.insert(metric.clone(), *count);
            }
            Some(("category", category)) => {
                bounces.insert(category.to_string(), *count);
            }
            Some(("provider", provider)) => {
                providers
                    .entry(provider.to_string())
                    .or_default()
                    .insert(metric.clone(), *count);
            }
            Some(("zone", zone)) => {
                zones
                    .entry(zone.to_string())
                    .or_default()
                    .insert(metric.clone(), *count);
            }
            Some(("variant", variant)) => {
                if let Ok(variant) = variant.parse::<i64>() {
                    variants
                        .entry(variant)
                        .or_default()
                        .insert(metric.clone(), *count);
                }
            }
            Some(("link", link)) => {
                if let Ok(link) = link.parse::<i64>() {
                    let entry = links.entry(link).or_default();
                    if metric == "clicked_unique" {
                        entry.1 = *count;
                    } else {
                        entry.0 = *count;
                    }
                }
            }
            Some(("hour", hour)) => {
                if let Ok(hour) = hour.parse::<i64>() {
                    hours
                        .entry(hour)
                        .or_default()
                        .insert(metric.clone(), *count);
                }
            }
            Some(_) => {}
        }
    }
    let get = |m: &str| totals.get(m).copied().unwrap_or(0);
    let mut rates = Map::new();
    rates.insert("delivery".into(), rate(get("delivered"), get("sent")));
    rates.insert("bounce".into(), rate(get("bounced"), get("sent")));
    rates.insert("open".into(), rate(get("opened_unique"), get("delivered")));
    rates.insert(
        "click".into(),
        rate(get("clicked_unique"), get("delivered")),
    );
    rates.insert(
        "complaint".into(),
        rate(get("complained"), get("delivered")),
    );
    rates.insert(
        "unsubscribe".into(),
        rate(get("unsubscribed"), get("delivered")),
    );
    let ab = campaigns::runner::ab_test(campaign).ok().flatten();
    let variants: Vec<Value> = ab
        .iter()
        .flat_map(|test| test.variants.iter().enumerate())
        .map(|(n, variant)| {
            let counts = variants.get(&(n as i64)).cloned().unwrap_or_default();
            let get = |m: &str| counts.get(m).copied().unwrap_or(0);
            let all: BTreeMap<&str, i64> = TOTALS.iter().map(|m| (*m, get(m))).collect();
            json!({
                "variant": n,
                "name": variant.name,
                "winner": campaign.ab.winner == Some(n as i64),
                "totals": all,
                "rates": {
                    "delivery": rate(get("delivered"), get("sent")),
                    "open": rate(get("opened_unique"), get("delivered")),
                    "click": rate(get("clicked_unique"), get("delivered")),
                    "unsubscribe": rate(get("unsubscribed"), get("delivered")),
                },
            })
        })
        .collect();
    let ab_summary = ab.as_ref().map(|test| {
        json!({
            "metric": test.metric.as_str(),
            "test_percent": test.test_percent,
            "test_recipients": campaign.ab.test_end,
            "decide_at_ms": campaign.ab.decide_at_ms,
            "winner": campaign.ab.winner,
            "winner_reason": campaign.ab.winner_reason,
            "decided_ms": campaign.ab.decided_ms,
        })
    });
    json!({
        "campaign_id": campaign.id,
        "ab": ab_summary,
        "variants": variants,
        "state": campaign.state.as_str(),
        "recipients": campaign.progress.recipients,
        "totals": totals,
        "rates": rates,
        "bounces": bounces,
        "providers": providers,
        "zones": zones,
        "links": links.iter().map(|(link, (clicks, unique))| json!({
            "link": link, "clicks": clicks, "unique": unique,
        })).collect::<Vec<_>>(),
        "hourly": hours.iter().map(|(hour, counts)| json!({
            "hour_ms": hour, "counts": counts,
        })).collect::<Vec<_>>(),
    })
}

/// `GET /v1/campaigns/{id}/report`
pub(crate) async fn report<S: CampaignsStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Read>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let campaign = tenants_campaign(&state, &key.tenant_id, &id).await?;
    let counts = state.tenancy.store.campaign_counts(&campaign.id).await?;
    Ok(Json(report_json(&campaign, &counts)).into_response())
}

/// `GET /v1/campaigns/{id}/report.csv`: `metric,dimension,count`, one counter a row.
pub(crate) async fn report_csv<S: CampaignsStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Read>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let campaign = tenants_campaign(&state, &key.tenant_id, &id).await?;
    let counts = state.tenancy.store.campaign_counts(&campaign.id).await?;
    let mut csv = String::from("metric,dimension,count\r\n");
    for (metric, dimension, count) in counts {
        // Metrics and dimensions are ours (letters, digits, ':' and '_'): nothing to quote.
        csv.push_str(&format!("{metric},{dimension},{count}\r\n"));
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-report.csv\"", campaign.id),
            ),
        ],
        csv,
    )
        .into_response())
}
