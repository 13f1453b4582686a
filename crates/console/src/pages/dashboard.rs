//! The dashboard: sent, delivered, deferred, bounced (by category), complaints and
//! unsubscribes over the last 24 h, 7 d or 30 d, as an SVG chart drawn here and as tables
//! per mailbox provider and sending domain; the tenant's accept→delivered latency
//! percentiles. Everything comes from the rollup tables kept as events are recorded.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::EventKind;
use store::rollups::{self, Resolution};

use super::store_failed;
use crate::auth::TenantViewer;
use crate::{ConsoleState, Store};

/// The series drawn, in order (each has a CSS class `series-<kind>`).
const CHARTED: [EventKind; 4] = [
    EventKind::Accepted,
    EventKind::Delivered,
    EventKind::Deferred,
    EventKind::Bounced,
];
/// The columns of the totals and per-provider tables.
const COUNTED: [EventKind; 7] = [
    EventKind::Accepted,
    EventKind::Delivered,
    EventKind::Deferred,
    EventKind::Bounced,
    EventKind::Complained,
    EventKind::Unsubscribed,
    EventKind::Suppressed,
];

const CHART_WIDTH: f64 = 720.0;
const CHART_HEIGHT: f64 = 200.0;

#[derive(Deserialize, Default)]
pub struct DashboardQuery {
    period: Option<String>,
    /// One sending domain only; none or empty: all.
    domain: Option<String>,
}

/// Period → (span, resolution read, chart point width). A period covers whole slots of
/// its resolution (the last 24 h from the start of the hour 24 h ago; the last 30 days from
/// the start of that UTC day), so a page reads a few thousand rollup rows at most.
fn period(name: &str) -> (&'static str, i64, Resolution, i64) {
    match name {
        "7d" => ("7d", 7 * 86_400_000, Resolution::Hour, 3_600_000),
        "30d" => ("30d", 30 * 86_400_000, Resolution::Day, 86_400_000),
        _ => ("24h", 86_400_000, Resolution::Hour, 3_600_000),
    }
}

/// One polyline's `points` for a series of counts, scaled to the chart.
pub(crate) fn points(values: &[i64], max: i64) -> String {
    let step = if values.len() > 1 {
        CHART_WIDTH / (values.len() - 1) as f64
    } else {
        0.0
    };
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let y = CHART_HEIGHT - (v as f64 / max.max(1) as f64) * (CHART_HEIGHT - 10.0);
            format!("{:.1},{:.1}", i as f64 * step, y)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `GET /`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Query(query): Query<DashboardQuery>,
) -> Response {
    let (name, span, resolution, point_ms) = period(query.period.as_deref().unwrap_or("24h"));
    let now = crate::auth::sessions::now_ms();
    let from = (now - span).div_euclid(resolution.slot_ms()) * resolution.slot_ms();
    let chosen = query
        .domain
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_ascii_lowercase);
    let store = state.store();
    let (rows, histogram, sending_domains) = match tokio::try_join!(
        store.rollup(&who.tenant.id, resolution, from, now, chosen.as_deref()),
        store.latency_histogram(&who.tenant.id, resolution, from, now),
        store.domains(&who.tenant.id),
    ) {
        Ok(found) => found,
        Err(err) => return store_failed(&state, &who.viewer, err),
    };
    let domain_names: Vec<String> = sending_domains.into_iter().map(|d| d.domain).collect();
    let first_point = from.div_euclid(point_ms);
    let point_count = (now.div_euclid(point_ms) - first_point + 1) as usize;
    let mut series: BTreeMap<&str, Vec<i64>> = CHARTED
        .iter()
        .map(|k| (k.as_str(), vec![0; point_count]))
        .collect();
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    let mut providers: BTreeMap<String, BTreeMap<&str, i64>> = BTreeMap::new();
    let mut domains: BTreeMap<String, BTreeMap<&str, i64>> = BTreeMap::new();
    let mut categories: BTreeMap<String, i64> = BTreeMap::new();
    for row in &rows {
        if row.slot_ms < from {
            continue;
        }
        let kind = row.kind.as_str();
        *totals.entry(kind).or_default() += row.count;
        *providers
            .entry(row.provider.clone())
            .or_default()
            .entry(kind)
            .or_default() += row.count;
        if !row.domain.is_empty() {
            *domains
                .entry(row.domain.clone())
                .or_default()
                .entry(kind)
                .or_default() += row.count;
        }
        if row.kind == EventKind::Bounced {
            let category = if row.category.is_empty() {
                "other"
            } else {
                &row.category
            };
            *categories.entry(category.to_string()).or_default() += row.count;
        }
        if let Some(values) = series.get_mut(kind) {
            let index =
                (row.slot_ms.div_euclid(point_ms) - first_point).clamp(0, point_count as i64 - 1);
            values[index as usize] += row.count;
        }
    }
    let max = series
        .values()
        .flat_map(|v| v.iter().copied())
        .max()
        .unwrap_or(0);
    let lines: Vec<minijinja::Value> = CHARTED
        .iter()
        .map(|k| {
            let values = &series[k.as_str()];
            minijinja::context! { kind => k.as_str(), points => points(values, max) }
        })
        .collect();
    let table = |map: &BTreeMap<String, BTreeMap<&str, i64>>| -> Vec<minijinja::Value> {
        map.iter()
            .map(|(name, counts)| {
                let cells: Vec<i64> = COUNTED
                    .iter()
                    .map(|k| counts.get(k.as_str()).copied().unwrap_or(0))
                    .collect();
                minijinja::context! { name => name, cells => cells }
            })
            .collect()
    };
    let latency = minijinja::context! {
        p50 => rollups::quantile(&histogram, 0.50),
        p99 => rollups::quantile(&histogram, 0.99),
        p9999 => rollups::quantile(&histogram, 0.9999),
        count => histogram.iter().map(|(_, c)| c).sum::<i64>(),
    };
    let base = who.viewer.context("dashboard", Some(&who.tenant));
    state.views.page(
        StatusCode::OK,
        "dashboard.html",
        minijinja::context! {
            period => name,
            domain => chosen,
            domain_names => domain_names,
            from_ms => from,
            to_ms => now,
            chart_max => max,
            lines => lines,
            columns => COUNTED.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            totals => COUNTED.iter().map(|k| totals.get(k.as_str()).copied().unwrap_or(0)).collect::<Vec<_>>(),
            providers => table(&providers),
            domains => table(&domains),
            categories => categories,
            latency => latency,
            series_rows => CHARTED.iter().map(|k| minijinja::context! { kind => k.as_str(), total => series[k.as_str()].iter().sum::<i64>() }).collect::<Vec<_>>(),
            ..base
        },
    )
}
