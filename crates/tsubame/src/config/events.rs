//! `[events]` and `[webhooks]`: how long events are kept, and how webhooks are delivered
//! (which private networks they may reach, time limits, retry period).

use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;

use super::duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvents {
    pub retention: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhooks {
    /// Networks a webhook may reach although they are private, loopback or link-local.
    pub allow_networks: Option<Vec<String>>,
    pub timeout: Option<String>,
    pub retry_for: Option<String>,
    pub backoff_max: Option<String>,
}

/// Validated events and webhook settings.
#[derive(Debug, Clone)]
pub struct Events {
    pub retention: Duration,
    pub webhooks: events::webhooks::WebhookConfig,
}

pub fn validate(raw: &RawEvents, hooks: &RawWebhooks) -> anyhow::Result<Events> {
    let retention = duration("events.retention", raw.retention.as_deref(), "30d")?;
    if retention < Duration::from_secs(3600) {
        bail!("events.retention: at least 1h");
    }
    let allowed = hooks
        .allow_networks
        .clone()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, text)| {
            text.parse::<smtp_server::cidr::Cidr>()
                .map_err(|e| anyhow::anyhow!("webhooks.allow_networks[{i}]: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let timeout = duration("webhooks.timeout", hooks.timeout.as_deref(), "10s")?;
    let give_up_after = duration("webhooks.retry_for", hooks.retry_for.as_deref(), "24h")?;
    let backoff_max = duration("webhooks.backoff_max", hooks.backoff_max.as_deref(), "10m")?;
    for (key, value) in [
        ("webhooks.timeout", timeout),
        ("webhooks.retry_for", give_up_after),
        ("webhooks.backoff_max", backoff_max),
    ] {
        if value.is_zero() {
            bail!("{key}: must be greater than zero");
        }
    }
    Ok(Events {
        retention,
        webhooks: events::webhooks::WebhookConfig {
            timeout,
            give_up_after,
            backoff_max,
            backoff_min: Duration::from_secs(1).min(backoff_max),
            guard: events::ssrf::Guard { allowed },
            ..events::webhooks::WebhookConfig::default()
        },
    })
}
