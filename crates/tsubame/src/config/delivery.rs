//! The `[delivery]` section: routing, DNS, TLS, retries, shaping and bounce-rule files,
//! client timeouts. Validated into `delivery::DeliveryConfig`; every error names its key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ::delivery::engine::DeliveryConfig;
use ::delivery::outcome::classify::Classifier;
use ::delivery::outcome::retry::RetryPolicy;
use ::delivery::route::dns::{DnsConfig, NameServers};
use ::delivery::route::{DomainPattern, HostPort, RoutingConfig, StaticRoute};
use ::delivery::shaping::Shaping;
use ::delivery::{ClientTimeouts, Credentials, TlsPolicy};
use anyhow::{Context, bail};
use serde::Deserialize;

use super::duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
    pub enabled: Option<bool>,
    pub helo_name: Option<String>,
    pub dns_servers: Option<Vec<String>>,
    pub dns_timeout: Option<String>,
    pub mx_port: Option<u16>,
    pub tls: Option<String>,
    pub shaping_file: Option<PathBuf>,
    pub bounce_rules_file: Option<PathBuf>,
    pub retry_initial: Option<String>,
    pub retry_factor: Option<f64>,
    pub retry_interval_max: Option<String>,
    pub retry_jitter: Option<f64>,
    pub max_age: Option<String>,
    pub recipients_per_transaction: Option<usize>,
    pub delay_warning: Option<String>,
    pub events_log: Option<bool>,
    pub shutdown_grace: Option<String>,
    pub connect_timeout: Option<String>,
    pub banner_timeout: Option<String>,
    pub command_timeout: Option<String>,
    pub tls_handshake_timeout: Option<String>,
    pub mail_timeout: Option<String>,
    pub rcpt_timeout: Option<String>,
    pub data_timeout: Option<String>,
    pub data_block_timeout: Option<String>,
    pub data_dot_timeout: Option<String>,
    #[serde(default)]
    pub route: Vec<RawRoute>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub domains: Vec<String>,
    pub hosts: Vec<String>,
    pub tls: Option<String>,
    pub auth_user: Option<String>,
    pub auth_password: Option<String>,
    pub auth_password_file: Option<PathBuf>,
}

/// Validated delivery settings.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub enabled: bool,
    pub engine: DeliveryConfig,
    pub shutdown_grace: std::time::Duration,
}

fn tls_policy(key: &str, text: &str) -> anyhow::Result<TlsPolicy> {
    Ok(match text {
        "disabled" => TlsPolicy::Disabled,
        "opportunistic" => TlsPolicy::Opportunistic,
        "required" => TlsPolicy::Required,
        "verify" => TlsPolicy::Verify,
        other => bail!(
            "{key}: {other:?} is not one of \"disabled\", \"opportunistic\", \"required\", \"verify\""
        ),
    })
}

fn host_port(key: &str, text: &str) -> anyhow::Result<HostPort> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(HostPort {
            host: addr.ip().to_string(),
            port: addr.port(),
        });
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| anyhow::anyhow!("{key}: {text:?}: bad port"))?,
        ),
        None => (text, 25),
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        bail!("{key}: {text:?} is not HOST[:PORT]");
    }
    Ok(HostPort {
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// SMTP AUTH for a route: a user and exactly one of password / password file; never over a
/// route whose TLS is disabled.
fn route_auth(route: &RawRoute, at: &str, tls: TlsPolicy) -> anyhow::Result<Option<Credentials>> {
    let password = match (&route.auth_password, &route.auth_password_file) {
        (None, None) => None,
        (Some(p), None) => Some(p.clone()),
        (None, Some(path)) => Some(
            read_file(&format!("{at}.auth_password_file"), path)?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        ),
        (Some(_), Some(_)) => {
            bail!("{at}: give auth_password or auth_password_file, not both")
        }
    };
    match (&route.auth_user, password) {
        (None, None) => Ok(None),
        (Some(user), Some(password)) => {
            if tls == TlsPolicy::Disabled {
                bail!(
                    "{at}.tls: AUTH credentials are only sent under TLS; use \"required\" or \"verify\""
                );
            }
            Ok(Some(Credentials {
                user: user.clone(),
                password,
            }))
        }
        (Some(_), None) => bail!("{at}: auth_user needs auth_password or auth_password_file"),
        (None, Some(_)) => bail!("{at}: a password needs auth_user"),
    }
}

fn read_file(key: &str, path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{key}: reading {}", path.display()))
}

pub fn validate(
    raw: &RawDelivery,
    smtp_hostname: &str,
    data_dir: &Path,
) -> anyhow::Result<Delivery> {
    let hostname = raw
        .helo_name
        .clone()
        .unwrap_or_else(|| smtp_hostname.to_string());
    let servers = match &raw.dns_servers {
        None => NameServers::System,
        Some(list) if list.is_empty() => {
            bail!("delivery.dns_servers: give at least one or omit it")
        }
        Some(list) => NameServers::Listed(
            list.iter()
                .enumerate()
                .map(|(i, t)| {
                    t.parse::<SocketAddr>().map_err(|_| {
                        anyhow::anyhow!("delivery.dns_servers[{i}]: {t:?} is not IP:PORT")
                    })
                })
                .collect::<anyhow::Result<_>>()?,
        ),
    };
    let dns = DnsConfig {
        servers,
        timeout: duration("delivery.dns_timeout", raw.dns_timeout.as_deref(), "5s")?,
        ..DnsConfig::default()
    };
    let default_tls = tls_policy(
        "delivery.tls",
        raw.tls.as_deref().unwrap_or("opportunistic"),
    )?;
    let mut statics = Vec::new();
    for (i, route) in raw.route.iter().enumerate() {
        let at = format!("delivery.route[{i}]");
        if route.domains.is_empty() || route.hosts.is_empty() {
            bail!("{at}: needs at least one of each of domains and hosts");
        }
        let hosts = route
            .hosts
            .iter()
            .enumerate()
            .map(|(j, h)| host_port(&format!("{at}.hosts[{j}]"), h))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let tls = route
            .tls
            .as_deref()
            .map(|t| tls_policy(&format!("{at}.tls"), t))
            .transpose()?;
        let auth = route_auth(route, &at, tls.unwrap_or(default_tls))?;
        for (j, d) in route.domains.iter().enumerate() {
            let pattern =
                DomainPattern::parse(d).map_err(|e| anyhow::anyhow!("{at}.domains[{j}]: {e}"))?;
            statics.push(StaticRoute {
                pattern,
                hosts: hosts.clone(),
                tls,
                auth: auth.clone(),
            });
        }
    }
    let shaping_text = raw
        .shaping_file
        .as_deref()
        .map(|p| read_file("delivery.shaping_file", p))
        .transpose()?;
    let shaping_files: Vec<&str> = shaping_text.as_deref().into_iter().collect();
    let shaping = Shaping::from_files(&shaping_files)
        .map_err(|e| anyhow::anyhow!("delivery.shaping_file: {e}"))?;
    let rules_text = raw
        .bounce_rules_file
        .as_deref()
        .map(|p| read_file("delivery.bounce_rules_file", p))
        .transpose()?;
    let rules_files: Vec<&str> = rules_text.as_deref().into_iter().collect();
    let classifier = Classifier::from_files(&rules_files)
        .map_err(|e| anyhow::anyhow!("delivery.bounce_rules_file: {e}"))?;
    let retry = RetryPolicy {
        initial: duration("delivery.retry_initial", raw.retry_initial.as_deref(), "1m")?,
        factor: raw.retry_factor.unwrap_or(2.0),
        interval_max: duration(
            "delivery.retry_interval_max",
            raw.retry_interval_max.as_deref(),
            "4h",
        )?,
        max_age: duration("delivery.max_age", raw.max_age.as_deref(), "5d")?,
        jitter: raw.retry_jitter.unwrap_or(0.2),
    };
    if !(1.0..=10.0).contains(&retry.factor) {
        bail!("delivery.retry_factor: must be between 1 and 10");
    }
    if !(0.0..=0.5).contains(&retry.jitter) {
        bail!("delivery.retry_jitter: must be between 0 and 0.5");
    }
    if retry.initial.is_zero() || retry.max_age.is_zero() {
        bail!("delivery.retry_initial and delivery.max_age must be greater than zero");
    }
    let d = |key: &str, value: &Option<String>, default: &str| {
        duration(&format!("delivery.{key}"), value.as_deref(), default)
    };
    let timeouts = ClientTimeouts {
        connect: d("connect_timeout", &raw.connect_timeout, "30s")?,
        banner: d("banner_timeout", &raw.banner_timeout, "5m")?,
        command: d("command_timeout", &raw.command_timeout, "5m")?,
        tls_handshake: d("tls_handshake_timeout", &raw.tls_handshake_timeout, "30s")?,
        mail: d("mail_timeout", &raw.mail_timeout, "5m")?,
        rcpt: d("rcpt_timeout", &raw.rcpt_timeout, "5m")?,
        data: d("data_timeout", &raw.data_timeout, "2m")?,
        data_block: d("data_block_timeout", &raw.data_block_timeout, "3m")?,
        data_dot: d("data_dot_timeout", &raw.data_dot_timeout, "10m")?,
    };
    let recipients_per_transaction = raw.recipients_per_transaction.unwrap_or(100);
    if !(1..=10_000).contains(&recipients_per_transaction) {
        bail!("delivery.recipients_per_transaction: must be between 1 and 10000");
    }
    Ok(Delivery {
        enabled: raw.enabled.unwrap_or(true),
        shutdown_grace: d("shutdown_grace", &raw.shutdown_grace, "10s")?,
        engine: DeliveryConfig {
            hostname,
            dns,
            routing: RoutingConfig {
                statics,
                default_tls,
                mx_port: raw.mx_port.unwrap_or(25),
            },
            shaping,
            classifier,
            retry,
            timeouts,
            recipients_per_transaction,
            delay_warning: Some(d("delay_warning", &raw.delay_warning, "4h")?)
                .filter(|d| !d.is_zero()),
            events_file: raw
                .events_log
                .unwrap_or(true)
                .then(|| data_dir.join("events").join("delivery.jsonl")),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Delivery> {
        let raw: RawDelivery = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        validate(&raw, "mx.test", Path::new("/tmp/data"))
    }

    #[test]
    fn routes_with_auth_need_tls_and_a_password() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "p4ss\n").unwrap();
        let ok = parse(&format!(
            "[[route]]\ndomains = [\"*\"]\nhosts = [\"smarthost.example:587\"]\ntls = \"verify\"\n\
             auth_user = \"me\"\nauth_password_file = {:?}\n",
            secret.display().to_string()
        ))
        .unwrap();
        let route = &ok.engine.routing.statics[0];
        assert_eq!(
            route.auth.as_ref().map(|a| a.password.as_str()),
            Some("p4ss")
        );
        assert_eq!(route.hosts[0].port, 587);

        let clear = parse(
            "[[route]]\ndomains = [\"*\"]\nhosts = [\"h:25\"]\ntls = \"disabled\"\nauth_user = \"me\"\nauth_password = \"x\"\n",
        )
        .unwrap_err();
        assert!(clear.to_string().contains("route[0].tls"), "{clear}");
        let half = parse("[[route]]\ndomains = [\"*\"]\nhosts = [\"h\"]\nauth_user = \"me\"\n")
            .unwrap_err();
        assert!(half.to_string().contains("auth_password"), "{half}");
        let bad = parse("[[route]]\ndomains = [\"bad domain\"]\nhosts = [\"h\"]\n").unwrap_err();
        assert!(bad.to_string().contains("route[0].domains[0]"), "{bad}");
        let bad = parse("retry_factor = 50.0\n").unwrap_err();
        assert!(bad.to_string().contains("delivery.retry_factor"), "{bad}");
    }
}
