//! Capacity forecasts: a planned campaign's domains routed to their sites, with what each
//! site and the node have shown, run through [`crate::forecast`].

use super::*;

/// A planned campaign, as the operator describes it.
#[derive(Debug, Clone, Default)]
pub struct ForecastRequest {
    /// Recipients per domain.
    pub recipients: BTreeMap<String, u64>,
    pub message_bytes: u64,
    pub start_ms: Option<i64>,
    pub rate_per_sec: Option<f64>,
    /// The node's capacity (attempts per second), when the operator knows better.
    pub node_rate: Option<f64>,
}

/// The forecast with its times and what the model assumed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ForecastAnswer {
    #[serde(flatten)]
    pub forecast: crate::forecast::Forecast,
    pub starts_at: String,
    pub ends_at: String,
    /// Where the node's capacity came from.
    pub node_rate_source: String,
    /// Domains that could not be routed (and are left out).
    pub unroutable: Vec<String>,
}

/// Seconds per message on one connection at a site not seen yet: a typical answer time of
/// a large mailbox provider over the Internet.
pub const UNSEEN_TRANSACTION_S: f64 = 0.05;
/// The node's capacity until it has measured itself (attempts per second).
pub const UNMEASURED_NODE_RATE: f64 = 1_000.0;

impl Ops {
    /// Forecasts a planned campaign under the current shaping and capacity.
    pub async fn forecast(&self, req: &ForecastRequest) -> Result<ForecastAnswer, OpsFailure> {
        use crate::forecast::{Lane, Plan, forecast};
        if req.recipients.is_empty() || req.recipients.values().all(|n| *n == 0) {
            return Err(OpsFailure::Refused(
                "recipients: name at least one domain and its count".into(),
            ));
        }
        if req.recipients.len() > 1000 {
            return Err(OpsFailure::Refused(
                "recipients: at most 1,000 domains".into(),
            ));
        }
        if let Some(r) = req.rate_per_sec
            && !(r > 0.0 && r.is_finite())
        {
            return Err(OpsFailure::Refused(
                "rate_per_sec: a positive number".into(),
            ));
        }
        let Some(engine) = &self.observer.delivery else {
            return Err(OpsFailure::Refused(
                "delivery is disabled on this node: nothing to forecast".into(),
            ));
        };
        let seen = self.observer.activity.sites();
        let mut lanes: Vec<Lane> = Vec::new();
        let mut unroutable = Vec::new();
        for (domain, count) in &req.recipients {
            let plan = match engine.site_of(domain).await {
                Ok(p) => p,
                Err(e) => {
                    unroutable.push(format!("{domain}: {e}"));
                    continue;
                }
            };
            if let Some(lane) = lanes.iter_mut().find(|l| l.site == plan.site) {
                lane.recipients += count;
                continue;
            }
            let site = seen.iter().find(|s| s.site == plan.site);
            let transaction_s = site
                .filter(|s| s.attempts_timed > 0)
                .map(|s| s.attempt_ms_total as f64 / s.attempts_timed as f64 / 1000.0)
                .unwrap_or(UNSEEN_TRANSACTION_S);
            let deferral = site
                .filter(|s| s.delivered + s.deferred >= 100)
                .map(|s| s.deferred as f64 / (s.delivered + s.deferred) as f64)
                .unwrap_or(0.0)
                .min(0.95);
            let connections = match plan.provider_connections_max {
                Some(total) => plan.limits.connections_max.min(total),
                None => plan.limits.connections_max,
            };
            lanes.push(Lane {
                provider: plan.provider.clone().unwrap_or_else(|| "other".into()),
                site: plan.site,
                recipients: *count,
                rate: plan.limits.message_rate.map(|r| r.per_second),
                connections,
                transaction_s,
                deferral,
            });
        }
        if lanes.is_empty() {
            return Err(OpsFailure::Refused(format!(
                "recipients: no domain could be routed ({})",
                unroutable.join("; ")
            )));
        }
        let (node_rate, source) = match req.node_rate {
            Some(r) if r > 0.0 => (r, "given".to_string()),
            _ => {
                let now = self.clock.now_ms();
                let best = self
                    .store
                    .ops_samples(now - 30 * 86_400_000, now + 1)
                    .await?
                    .iter()
                    .map(|(_, body)| {
                        let s = monthly::sample(body);
                        (s.period.delivered + s.period.deferred + s.period.bounced) as f64
                            / (SAMPLE_EVERY_MS / 1000) as f64
                    })
                    .fold(0.0, f64::max);
                if best >= 50.0 {
                    (best, "the best 5 minutes of the last 30 days".to_string())
                } else {
                    (
                        UNMEASURED_NODE_RATE,
                        "not measured yet: the default".to_string(),
                    )
                }
            }
        };
        let sample = self.observer.sample(wall_ms());
        let plan = Plan {
            lanes,
            node_rate,
            message_bytes: req.message_bytes.max(1),
            campaign_rate: req.rate_per_sec,
            latency_threshold_s: self.tracker.delivery_threshold().map(|d| d.as_secs_f64()),
            disk_free: (sample.disk_total > 0).then_some(sample.disk_free),
        };
        let f = forecast(&plan);
        let start = req.start_ms.unwrap_or_else(|| self.clock.now_ms());
        Ok(ForecastAnswer {
            starts_at: payload::rfc3339(start),
            ends_at: payload::rfc3339(start + (f.seconds * 1000.0) as i64),
            forecast: f,
            node_rate_source: source,
            unroutable,
        })
    }
}
