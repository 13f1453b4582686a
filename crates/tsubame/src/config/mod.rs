//! Configuration: the TOML file as written ([`RawConfig`], unknown keys refused) and the
//! validated [`Config`] the server runs with. Every error names the key it is about.
//! docs/configuration.md lists every option; keep the two in step.

pub mod cluster;
pub mod console;
pub mod delivery;
pub mod events;
pub mod http;

use http::RawHttp;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use smtp_server::cidr::Cidr;
use smtp_server::{ConnectionLimits, ServerConfig, Timeouts};

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub smtp: RawSmtp,
    #[serde(default)]
    pub tls: RawTls,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub spool: RawSpool,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub delivery: delivery::RawDelivery,
    #[serde(default)]
    pub events: events::RawEvents,
    #[serde(default)]
    pub webhooks: events::RawWebhooks,
    #[serde(default)]
    pub console: console::RawConsole,
    #[serde(default)]
    pub campaigns: RawCampaigns,
    /// `[[slo]]`: the service level objectives.
    #[serde(default)]
    pub slo: Vec<ops::slo::SloSpec>,
    /// `[ops]`: alerts, on-call, notifications, reports.
    #[serde(default)]
    pub ops: ops::config::OpsSpec,
    /// `[cluster]`: cluster mode; absent for a single node.
    pub cluster: Option<cluster::RawCluster>,
    /// `[control]`: where tenants, keys, contacts, campaigns... are kept.
    #[serde(default)]
    pub control: RawControl,
}

/// `[control]`: the control plane's database. SQLite in the data directory unless
/// `postgres` names a PostgreSQL database every node of a cluster shares.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawControl {
    pub postgres: Option<String>,
}

/// `[campaigns]`: how campaigns are expanded into the spool.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCampaigns {
    /// Recipients per batch (one open/commit of the cursor and one burst of spool commits).
    pub batch: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub listen: Option<Vec<String>>,
    pub listen_tls: Option<Vec<String>>,
    pub hostname: Option<String>,
    pub message_bytes_max: Option<u64>,
    pub recipients_max: Option<u64>,
    pub command_line_bytes_max: Option<u64>,
    pub bad_commands_max: Option<u32>,
    pub auth_plaintext_allowed: Option<bool>,
    pub relay_networks: Option<Vec<String>>,
    pub proxy_protocol_from: Option<Vec<String>>,
    pub connections_max: Option<u64>,
    pub connections_per_ip_max: Option<u32>,
    pub connection_rate_per_ip_max: Option<u32>,
    pub connection_rate_interval: Option<String>,
    pub connection_limit_exceptions: Option<Vec<String>>,
    pub greeting_delay: Option<String>,
    pub command_timeout: Option<String>,
    pub data_idle_timeout: Option<String>,
    pub data_rate_min_bytes_per_sec: Option<u64>,
    pub data_rate_grace: Option<String>,
    pub tls_handshake_timeout: Option<String>,
    pub shutdown_grace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpool {
    pub segment_bytes_max: Option<u64>,
    pub batch_bytes_max: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<String>,
    pub level: Option<String>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub smtp: ServerConfig,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub http_listen: SocketAddr,
    pub http_limits: http_listener::HttpLimits,
    /// How recipients reach this server's HTTP listener (one-click unsubscribe links).
    pub public_url: Option<String>,
    pub segment_bytes_max: u64,
    pub batch_bytes_max: usize,
    pub log_format: LogFormat,
    pub log_level: String,
    pub delivery: delivery::Delivery,
    pub events: events::Events,
    pub console: ::console::ConsoleConfig,
    /// Recipients a campaign spools per batch.
    pub campaign_batch: u32,
    pub slos: Vec<ops::slo::Slo>,
    pub ops: ops::config::OpsConfig,
    pub cluster: Option<::cluster::node::ClusterConfig>,
    /// The shared PostgreSQL control plane (`postgres://...`); None: SQLite on this node.
    pub control_postgres: Option<String>,
}

/// Command-line values that override the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub smtp_listen: Option<Vec<String>>,
    pub http_listen: Option<String>,
    pub log_format: Option<String>,
}

/// Reads and parses a config file (syntax and unknown keys only).
pub fn read(path: &std::path::Path) -> anyhow::Result<RawConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))
}

fn duration(key: &str, value: Option<&str>, default: &str) -> anyhow::Result<Duration> {
    let text = value.unwrap_or(default);
    humantime::parse_duration(text)
        .map_err(|e| anyhow::anyhow!("{key}: invalid duration {text:?}: {e}"))
}

fn addr(key: &str, text: &str) -> anyhow::Result<SocketAddr> {
    text.parse()
        .map_err(|_| anyhow::anyhow!("{key}: invalid address {text:?}, expected IP:PORT"))
}

fn in_range(key: &str, value: u64, min: u64, max: u64) -> anyhow::Result<u64> {
    if value < min || value > max {
        bail!("{key}: {value} is out of range {min}..={max}");
    }
    Ok(value)
}

/// A list of networks; errors name the key and the index.
fn cidrs(key: &str, list: &[String]) -> anyhow::Result<Vec<Cidr>> {
    list.iter()
        .enumerate()
        .map(|(i, n)| {
            n.parse::<Cidr>()
                .map_err(|e| anyhow::anyhow!("{key}[{i}]: {e}"))
        })
        .collect()
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Validates `raw` with `overrides` applied. Defaults live here and in docs/configuration.md.
pub fn validate(raw: RawConfig, overrides: &Overrides) -> anyhow::Result<Config> {
    let s = &raw.smtp;
    let listen_texts = overrides
        .smtp_listen
        .clone()
        .or_else(|| s.listen.clone())
        .unwrap_or_else(|| vec!["127.0.0.1:2525".into()]);
    let listen = listen_texts
        .iter()
        .map(|t| addr("smtp.listen", t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let tls_texts = s
        .listen_tls
        .clone()
        .unwrap_or_else(|| vec!["127.0.0.1:4650".into()]);
    let listen_tls = tls_texts
        .iter()
        .map(|t| addr("smtp.listen_tls", t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let hostname = s.hostname.clone().unwrap_or_else(system_hostname);
    if hostname.is_empty()
        || hostname.len() > 253
        || !hostname
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        bail!("smtp.hostname: {hostname:?} is not a valid host name");
    }
    let networks = s
        .relay_networks
        .clone()
        .unwrap_or_else(|| vec!["127.0.0.0/8".into(), "::1/128".into()]);
    let relay_networks = cidrs("smtp.relay_networks", &networks)?;
    let limits = ConnectionLimits {
        connections_max: in_range(
            "smtp.connections_max",
            s.connections_max.unwrap_or(10_000),
            1,
            10_000_000,
        )? as usize,
        connections_per_ip_max: in_range(
            "smtp.connections_per_ip_max",
            u64::from(s.connections_per_ip_max.unwrap_or(50)),
            1,
            1_000_000,
        )? as u32,
        connection_rate_per_ip_max: in_range(
            "smtp.connection_rate_per_ip_max",
            u64::from(s.connection_rate_per_ip_max.unwrap_or(600)),
            1,
            u64::from(u32::MAX),
        )? as u32,
        rate_interval: duration(
            "smtp.connection_rate_interval",
            s.connection_rate_interval.as_deref(),
            "60s",
        )?,
        exempt_networks: match &s.connection_limit_exceptions {
            None => relay_networks.clone(),
            Some(list) => cidrs("smtp.connection_limit_exceptions", list)?,
        },
    };
    if limits.rate_interval.is_zero() {
        bail!("smtp.connection_rate_interval: must be greater than zero");
    }
    let timeouts = Timeouts {
        greeting_delay: duration("smtp.greeting_delay", s.greeting_delay.as_deref(), "0s")?,
        command: duration("smtp.command_timeout", s.command_timeout.as_deref(), "5m")?,
        data_idle: duration(
            "smtp.data_idle_timeout",
            s.data_idle_timeout.as_deref(),
            "3m",
        )?,
        data_rate_bytes_per_sec_min: in_range(
            "smtp.data_rate_min_bytes_per_sec",
            s.data_rate_min_bytes_per_sec.unwrap_or(500),
            1,
            1 << 40,
        )?,
        data_grace: duration("smtp.data_rate_grace", s.data_rate_grace.as_deref(), "30s")?,
        tls_handshake: duration(
            "smtp.tls_handshake_timeout",
            s.tls_handshake_timeout.as_deref(),
            "30s",
        )?,
        shutdown_grace: duration("smtp.shutdown_grace", s.shutdown_grace.as_deref(), "30s")?,
    };
    for (key, value) in [
        ("smtp.command_timeout", timeouts.command),
        ("smtp.data_idle_timeout", timeouts.data_idle),
    ] {
        if value.is_zero() {
            bail!("{key}: must be greater than zero");
        }
    }
    let smtp = ServerConfig {
        listen,
        listen_tls,
        hostname,
        message_bytes_max: in_range(
            "smtp.message_bytes_max",
            s.message_bytes_max.unwrap_or(25 << 20),
            1024,
            1 << 30,
        )? as usize,
        recipients_max: in_range(
            "smtp.recipients_max",
            s.recipients_max.unwrap_or(1000),
            1,
            100_000,
        )? as usize,
        command_line_bytes_max: in_range(
            "smtp.command_line_bytes_max",
            s.command_line_bytes_max.unwrap_or(4096),
            512,
            1 << 20,
        )? as usize,
        bad_commands_max: in_range(
            "smtp.bad_commands_max",
            u64::from(s.bad_commands_max.unwrap_or(20)),
            1,
            10_000,
        )? as u32,
        auth_plaintext_allowed: s.auth_plaintext_allowed.unwrap_or(false),
        relay_networks,
        proxy_protocol_from: cidrs(
            "smtp.proxy_protocol_from",
            s.proxy_protocol_from.as_deref().unwrap_or_default(),
        )?,
        limits,
        timeouts,
    };
    let tls = match (&raw.tls.cert, &raw.tls.key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        (None, None) => None,
        (Some(_), None) => bail!("tls.key: required when tls.cert is set"),
        (None, Some(_)) => bail!("tls.cert: required when tls.key is set"),
    };
    let http_text = overrides
        .http_listen
        .clone()
        .or(raw.http.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8025".into());
    let log_format = match overrides
        .log_format
        .as_deref()
        .or(raw.log.format.as_deref())
        .unwrap_or("human")
    {
        "human" => LogFormat::Human,
        "json" => LogFormat::Json,
        other => bail!("log.format: {other:?} is not one of \"human\", \"json\""),
    };
    let log_level = raw.log.level.clone().unwrap_or_else(|| "info".into());
    if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
        bail!("log.level: {log_level:?} is not a valid level or filter");
    }
    let data_dir = overrides
        .data_dir
        .clone()
        .or(raw.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("./tsubame-data"));
    let delivery = delivery::validate(&raw.delivery, &smtp.hostname, &data_dir)?;
    let events = events::validate(&raw.events, &raw.webhooks)?;
    let public_url = match raw.http.public_url.as_deref() {
        None => None,
        Some(url) => {
            let trimmed = url.trim_end_matches('/');
            let ok = (trimmed.starts_with("https://") || trimmed.starts_with("http://"))
                && trimmed.len() > "https://".len()
                && !trimmed.contains(['?', '#', ' ', '"', '<', '>']);
            if !ok {
                bail!("http.public_url: {url:?} is not an http(s) URL without query or fragment");
            }
            Some(trimmed.to_string())
        }
    };
    let console = console::validate(
        &raw.console,
        public_url.as_deref(),
        &smtp.hostname,
        &delivery.engine.dns,
    )?;
    Ok(Config {
        console,
        data_dir,
        delivery,
        events,
        smtp,
        tls,
        http_listen: addr("http.listen", &http_text)?,
        http_limits: http::limits(&raw.http)?,
        public_url,
        segment_bytes_max: in_range(
            "spool.segment_bytes_max",
            raw.spool.segment_bytes_max.unwrap_or(64 << 20),
            4096,
            1 << 31,
        )?,
        batch_bytes_max: in_range(
            "spool.batch_bytes_max",
            raw.spool.batch_bytes_max.unwrap_or(8 << 20),
            4096,
            1 << 30,
        )? as usize,
        log_format,
        log_level,
        campaign_batch: in_range(
            "campaigns.batch",
            raw.campaigns.batch.unwrap_or(2500),
            1,
            20_000,
        )? as u32,
        slos: ops::slo::read(&raw.slo)?,
        ops: ops::config::read(&raw.ops)?,
        cluster: cluster::validate(raw.cluster.as_ref())?,
        control_postgres: control_postgres(&raw.control)?,
    })
}

fn control_postgres(raw: &RawControl) -> anyhow::Result<Option<String>> {
    let Some(url) = raw.postgres.as_deref().map(str::trim) else {
        return Ok(None);
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        anyhow::bail!(
            "control.postgres: expected a postgres://user@host:port/database address, got {url:?}"
        );
    }
    Ok(Some(url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Config> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        validate(raw, &Overrides::default())
    }

    #[test]
    fn defaults() {
        let config = parse("").expect("empty config is valid");
        assert_eq!(
            config.smtp.listen,
            vec!["127.0.0.1:2525".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(
            config.http_listen,
            "127.0.0.1:8025".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(config.data_dir, PathBuf::from("./tsubame-data"));
        assert_eq!(config.smtp.recipients_max, 1000);
    }

    #[test]
    fn errors_name_the_key() {
        let unknown = parse("[smtp]\nlisten_port = 25\n").expect_err("unknown key");
        assert!(unknown.to_string().contains("listen_port"), "{unknown}");
        let bad = parse("[smtp]\ncommand_timeout = \"soon\"\n").expect_err("bad duration");
        assert!(bad.to_string().contains("smtp.command_timeout"), "{bad}");
        let bad =
            parse("[smtp]\nrelay_networks = [\"10.0.0.0/8\", \"x\"]\n").expect_err("bad network");
        assert!(bad.to_string().contains("smtp.relay_networks[1]"), "{bad}");
        let bad = parse("[smtp]\nrecipients_max = 0\n").expect_err("range");
        assert!(bad.to_string().contains("smtp.recipients_max"), "{bad}");
        let bad = parse("[tls]\ncert = \"/x\"\n").expect_err("pair");
        assert!(bad.to_string().contains("tls.key"), "{bad}");
        let bad = parse("[http]\npublic_url = \"ftp://x\"\n").expect_err("url");
        assert!(bad.to_string().contains("http.public_url"), "{bad}");
        let bad = parse("[events]\nretention = \"10m\"\n").expect_err("retention");
        assert!(bad.to_string().contains("events.retention"), "{bad}");
        let bad = parse("[webhooks]\nallow_networks = [\"10.0.0.0/99\"]\n").expect_err("network");
        assert!(
            bad.to_string().contains("webhooks.allow_networks[0]"),
            "{bad}"
        );
        let bad = parse("[webhooks]\ntimeout = \"0s\"\n").expect_err("zero");
        assert!(bad.to_string().contains("webhooks.timeout"), "{bad}");
        let good = parse("[http]\npublic_url = \"https://mail.example.net/\"\n").expect("url");
        assert_eq!(good.public_url.as_deref(), Some("https://mail.example.net"));
    }
}
