//! `[http]`: the HTTP listener (address, public URL) and how long and how many
//! connections it keeps.

use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;

use super::{duration, in_range};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub header_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub send_timeout: Option<String>,
    pub connections_max: Option<u64>,
    pub connections_per_ip_max: Option<u64>,
    pub header_bytes_max: Option<u64>,
}

/// The listener's limits; defaults here and in docs/configuration.md.
pub fn limits(raw: &RawHttp) -> anyhow::Result<http_listener::HttpLimits> {
    let positive = |key: &str, value: Option<&str>, default: &str| -> anyhow::Result<Duration> {
        let d = duration(key, value, default)?;
        if d.is_zero() {
            bail!("{key}: must be greater than zero");
        }
        Ok(d)
    };
    Ok(http_listener::HttpLimits {
        header_timeout: positive("http.header_timeout", raw.header_timeout.as_deref(), "10s")?,
        body_timeout: positive("http.body_timeout", raw.body_timeout.as_deref(), "120s")?,
        idle_timeout: positive("http.idle_timeout", raw.idle_timeout.as_deref(), "60s")?,
        send_timeout: positive("http.send_timeout", raw.send_timeout.as_deref(), "30s")?,
        connections_max: in_range(
            "http.connections_max",
            raw.connections_max.unwrap_or(4096),
            1,
            1_000_000,
        )? as usize,
        connections_per_ip_max: in_range(
            "http.connections_per_ip_max",
            raw.connections_per_ip_max.unwrap_or(256),
            1,
            1_000_000,
        )? as u32,
        header_bytes_max: in_range(
            "http.header_bytes_max",
            raw.header_bytes_max.unwrap_or(65_536),
            8192,
            1 << 20,
        )? as usize,
    })
}
