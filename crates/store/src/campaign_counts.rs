//! What a batch of events adds to campaign reports (no I/O here; `sqlite_events` writes it
//! in the batch's transaction). An event belongs to a campaign when its detail names a
//! `campaign_id` (test sends, marked `campaign_test`, do not count). Opens and clicks made
//! by machines are counted apart (`opened_machine`, `clicked_machine`) and never unique.

use std::collections::HashMap;

use serde_json::Value;

use crate::events::{EventKind, NewEvent};
use crate::rollups::{HOUR_MS, provider_of};

/// Counter increments, by (campaign, metric, dimension).
pub type Increments = HashMap<(String, &'static str, String), i64>;

/// A person's open or click, counted once per (campaign, kind, recipient, link).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Engaged {
    pub campaign: String,
    pub kind: &'static str,
    pub recipient: String,
    /// The link clicked; 0 for "any link" and for opens.
    pub link: i64,
    /// The dimensions a new unique is also counted under (zone, variant).
    pub split: Vec<String>,
}

/// The increments and unique candidates of a batch.
#[derive(Debug, Default)]
pub struct CampaignAdditions {
    pub increments: Increments,
    pub engaged: Vec<Engaged>,
}

/// The metric a unique engagement adds to once it is new.
pub fn unique_metric(kind: &str) -> &'static str {
    if kind == "opened" {
        "opened_unique"
    } else {
        "clicked_unique"
    }
}

pub fn additions(events: &[NewEvent]) -> CampaignAdditions {
    let mut out = CampaignAdditions::default();
    for e in events {
        let Some(detail) = e.detail.as_deref() else {
            continue;
        };
        if !detail.contains("\"campaign_id\"") {
            continue;
        }
        let Ok(Value::Object(detail)) = serde_json::from_str::<Value>(detail) else {
            continue;
        };
        let Some(campaign) = detail.get("campaign_id").and_then(Value::as_str) else {
            continue;
        };
        if detail.get("campaign_test").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let domain = e.recipient.rsplit_once('@').map_or("", |(_, d)| d);
        let provider = format!("provider:{}", provider_of(domain));
        let hour = format!("hour:{}", e.time_ms - e.time_ms.rem_euclid(HOUR_MS));
        let machine = detail.get("machine").and_then(Value::as_bool) == Some(true);
        // Every metric is also counted per recipient zone and per A/B variant.
        let mut split = Vec::new();
        if let Some(zone) = detail.get("zone").and_then(Value::as_str) {
            split.push(format!("zone:{zone}"));
        }
        if let Some(variant) = detail.get("variant").and_then(Value::as_u64) {
            split.push(format!("variant:{variant}"));
        }
        let mut add = |metric: &'static str, dimension: String| {
            *out.increments
                .entry((campaign.to_string(), metric, dimension))
                .or_default() += 1;
        };
        let add_split = |metric: &'static str, add: &mut dyn FnMut(&'static str, String)| {
            add(metric, String::new());
            for dimension in &split {
                add(metric, dimension.clone());
            }
        };
        match e.kind {
            EventKind::Accepted => {
                add_split("sent", &mut add);
                add("sent", provider);
            }
            EventKind::Delivered => {
                add_split("delivered", &mut add);
                add("delivered", provider);
                add("delivered", hour);
            }
            EventKind::Bounced => {
                let category = detail
                    .get("category")
                    .and_then(Value::as_str)
                    .unwrap_or("other");
                add_split("bounced", &mut add);
                add("bounced", provider);
                add("bounced", format!("category:{category}"));
            }
            EventKind::Deferred => {
                add_split("deferred", &mut add);
                add("deferred", provider);
            }
            EventKind::Expired => add_split("expired", &mut add),
            EventKind::Complained => add_split("complained", &mut add),
            EventKind::Unsubscribed => add_split("unsubscribed", &mut add),
            EventKind::Opened | EventKind::Clicked => {
                let opened = e.kind == EventKind::Opened;
                let kind = if opened { "opened" } else { "clicked" };
                if machine {
                    add_split(
                        if opened {
                            "opened_machine"
                        } else {
                            "clicked_machine"
                        },
                        &mut add,
                    );
                    continue;
                }
                add_split(kind, &mut add);
                add(kind, provider);
                add(kind, hour);
                let link = detail.get("link").and_then(Value::as_i64).unwrap_or(0);
                let recipient = e.recipient.to_ascii_lowercase();
                if !opened {
                    add(kind, format!("link:{link}"));
                    out.engaged.push(Engaged {
                        campaign: campaign.to_string(),
                        kind,
                        recipient: recipient.clone(),
                        link,
                        split: Vec::new(),
                    });
                }
                out.engaged.push(Engaged {
                    campaign: campaign.to_string(),
                    kind,
                    recipient,
                    link: 0,
                    split: split.clone(),
                });
            }
            EventKind::Suppressed => add("suppressed", String::new()),
        }
    }
    out
}
