//! Dashboard rollups: what a batch of events adds to the per-minute, per-hour and per-day
//! (UTC) counts
//! (no I/O here; `sqlite_events` writes them in the batch's transaction), the mailbox
//! provider a recipient domain belongs to, and the latency histogram's buckets.

use std::collections::HashMap;

use crate::events::{EventKind, NewEvent};

/// Slot widths in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// Which table a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    Minute,
    Hour,
    Day,
}

impl Resolution {
    pub const ALL: [Resolution; 3] = [Resolution::Minute, Resolution::Hour, Resolution::Day];

    pub fn slot_ms(self) -> i64 {
        match self {
            Resolution::Minute => MINUTE_MS,
            Resolution::Hour => HOUR_MS,
            Resolution::Day => DAY_MS,
        }
    }
}

/// One rollup row as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupRow {
    /// Start of the slot, Unix ms.
    pub slot_ms: i64,
    pub kind: EventKind,
    pub domain: String,
    pub provider: String,
    pub category: String,
    pub count: i64,
}

/// The mailbox provider of a recipient domain, for grouping (the big consumer mailbox
/// providers by their public domains; everything else is `other`).
pub fn provider_of(domain: &str) -> &'static str {
    let domain = domain.to_ascii_lowercase();
    let d = domain.as_str();
    let first = d.split('.').next().unwrap_or("");
    match d {
        "gmail.com" | "googlemail.com" => "gmail",
        "outlook.com" | "msn.com" | "outlook.jp" => "microsoft",
        "icloud.com" | "me.com" | "mac.com" => "apple",
        "docomo.ne.jp" => "docomo",
        "ezweb.ne.jp" | "au.com" => "au",
        "softbank.ne.jp" | "i.softbank.jp" => "softbank",
        "aol.com" | "ymail.com" => "yahoo",
        _ if first == "yahoo" => "yahoo",
        _ if first == "hotmail" || first == "live" => "microsoft",
        _ => "other",
    }
}

/// Latency buckets: eight per doubling (each ~9 % wide), bucket 0 for 0 ms.
pub fn latency_bucket(ms: i64) -> i64 {
    if ms <= 0 {
        return 0;
    }
    ((ms as f64 + 1.0).log2() * 8.0).floor() as i64
}

/// The upper bound of a bucket in ms (what a percentile in that bucket is reported as).
pub fn bucket_upper_ms(bucket: i64) -> i64 {
    (2f64.powf((bucket + 1) as f64 / 8.0) - 1.0).ceil() as i64
}

/// The value at quantile `q` (0..1) of a histogram of (bucket, count), as a bucket's
/// upper bound; `None` when empty.
pub fn quantile(histogram: &[(i64, i64)], q: f64) -> Option<i64> {
    let total: i64 = histogram.iter().map(|(_, c)| c).sum();
    if total == 0 {
        return None;
    }
    let mut sorted = histogram.to_vec();
    sorted.sort_unstable();
    let rank = ((total as f64) * q).ceil().max(1.0) as i64;
    let mut seen = 0;
    for (bucket, count) in sorted {
        seen += count;
        if seen >= rank {
            return Some(bucket_upper_ms(bucket));
        }
    }
    None
}

/// Key of a count row: tenant, slot, kind, domain, provider, category.
pub type CountKey = (String, i64, &'static str, String, &'static str, String);

/// What one batch adds: counts and latency observations, per resolution.
#[derive(Debug, Default)]
pub struct Additions {
    pub counts: HashMap<(Resolution, CountKey), i64>,
    pub latency: HashMap<(Resolution, String, i64, i64), i64>,
}

fn json_text<'a>(detail: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    detail.get(key).and_then(|v| v.as_str())
}

/// Sums a batch into rollup additions.
pub fn additions(events: &[NewEvent]) -> Additions {
    let mut out = Additions::default();
    for e in events {
        let detail: serde_json::Value = e
            .detail
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        let provider = provider_of(e.recipient.rsplit_once('@').map_or("", |(_, d)| d));
        let category = json_text(&detail, "category").unwrap_or("").to_string();
        let domain = json_text(&detail, "sending_domain")
            .unwrap_or("")
            .to_string();
        for resolution in Resolution::ALL {
            let slot = e.time_ms.div_euclid(resolution.slot_ms());
            let key = (
                e.tenant_id.clone(),
                slot,
                e.kind.as_str(),
                domain.clone(),
                provider,
                category.clone(),
            );
            *out.counts.entry((resolution, key)).or_default() += 1;
            if e.kind == EventKind::Delivered
                && let Some(ms) = detail.get("queued_ms").and_then(|v| v.as_i64())
            {
                *out.latency
                    .entry((resolution, e.tenant_id.clone(), slot, latency_bucket(ms)))
                    .or_default() += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_group_their_domains() {
        assert_eq!(provider_of("Gmail.com"), "gmail");
        assert_eq!(provider_of("yahoo.co.jp"), "yahoo");
        assert_eq!(provider_of("hotmail.co.uk"), "microsoft");
        assert_eq!(provider_of("docomo.ne.jp"), "docomo");
        assert_eq!(provider_of("example.com"), "other");
    }

    #[test]
    fn buckets_bound_their_values_within_ten_percent() {
        for ms in [1, 2, 7, 100, 999, 7000, 65_000, 3_600_000] {
            let upper = bucket_upper_ms(latency_bucket(ms));
            assert!(upper >= ms, "{ms} -> {upper}");
            assert!((upper as f64) <= (ms as f64) * 1.1 + 1.0, "{ms} -> {upper}");
        }
        let histogram = [
            (latency_bucket(10), 98),
            (latency_bucket(1000), 1),
            (latency_bucket(60_000), 1),
        ];
        assert_eq!(
            quantile(&histogram, 0.5),
            Some(bucket_upper_ms(latency_bucket(10)))
        );
        assert_eq!(
            quantile(&histogram, 0.99),
            Some(bucket_upper_ms(latency_bucket(1000)))
        );
        assert_eq!(
            quantile(&histogram, 0.9999),
            Some(bucket_upper_ms(latency_bucket(60_000)))
        );
        assert_eq!(quantile(&[], 0.5), None);
    }
}
