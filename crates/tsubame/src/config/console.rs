//! `[console]`: the web console's cookies, session expiry and sign-in throttle.

use anyhow::bail;
use serde::Deserialize;

use super::{duration, in_range};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsole {
    /// Mark cookies Secure; default: when `http.public_url` is https (a TLS proxy in front).
    pub secure_cookies: Option<bool>,
    pub session_idle: Option<String>,
    pub session_absolute: Option<String>,
    pub login_attempts_per_account: Option<u64>,
    pub login_attempts_per_address: Option<u64>,
    pub login_window: Option<String>,
}

/// The console's settings; defaults here and in docs/configuration.md.
pub fn validate(
    raw: &RawConsole,
    public_url: Option<&str>,
    mail_host: &str,
    dns: &::delivery::route::dns::DnsConfig,
) -> anyhow::Result<console::ConsoleConfig> {
    let session_idle = duration("console.session_idle", raw.session_idle.as_deref(), "30m")?;
    let session_absolute = duration(
        "console.session_absolute",
        raw.session_absolute.as_deref(),
        "12h",
    )?;
    if session_idle.is_zero() || session_absolute < session_idle {
        bail!(
            "console.session_idle must be above zero and no longer than console.session_absolute"
        );
    }
    let window = duration("console.login_window", raw.login_window.as_deref(), "15m")?;
    if window.is_zero() {
        bail!("console.login_window: must be greater than zero");
    }
    Ok(console::ConsoleConfig {
        secure_cookies: raw
            .secure_cookies
            .unwrap_or_else(|| public_url.is_some_and(|u| u.starts_with("https://"))),
        session_idle,
        session_absolute,
        throttle: console::auth::throttle::ThrottleLimits {
            per_account: in_range(
                "console.login_attempts_per_account",
                raw.login_attempts_per_account.unwrap_or(5),
                1,
                1000,
            )? as u32,
            per_address: in_range(
                "console.login_attempts_per_address",
                raw.login_attempts_per_address.unwrap_or(20),
                1,
                100_000,
            )? as u32,
            window,
        },
        mail_host: mail_host.to_string(),
        dns: dns.clone(),
    })
}
