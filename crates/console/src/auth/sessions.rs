//! Server-side sessions. The cookie holds 256 random bits; the store keeps only their
//! SHA-256, the login, the CSRF token, and when the session began and was last used. A
//! session ends at sign-out, after `session_idle` unused, `session_absolute` after sign-in,
//! or when its login's password changes elsewhere.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use rand::RngCore;
use store::Session;

use crate::{ConsoleConfig, ConsoleState, Store};

/// Cookie name; with `Secure`, the `__Host-` prefix also pins it to this host and path.
fn cookie_name(config: &ConsoleConfig) -> &'static str {
    if config.secure_cookies {
        "__Host-tsubame_session"
    } else {
        "tsubame_session"
    }
}

/// Touching a session is a write: at most once per this interval.
const TOUCH_EVERY_MS: i64 = 60_000;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn random_text(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

pub fn hash(cookie_value: &str) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cookie_value.as_bytes())
        .as_ref()
        .to_vec()
}

/// The session cookie's value from a request, if it carries one.
pub fn cookie_value(config: &ConsoleConfig, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(config);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The `Set-Cookie` header for a new session: HttpOnly, SameSite=Lax, Secure when
/// configured; no Max-Age, so it lives as long as the browser session or the server-side
/// expiry, whichever ends first.
pub fn set_cookie(config: &ConsoleConfig, value: &str) -> HeaderValue {
    let secure = if config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax{secure}",
        cookie_name(config)
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` header that removes the session cookie.
pub fn clear_cookie(config: &ConsoleConfig) -> HeaderValue {
    let secure = if config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
        cookie_name(config)
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Starts a session for a login; returns the cookie value (shown to nobody else).
pub async fn start<S: Store>(
    state: &ConsoleState<S>,
    login_id: &str,
    pending_second_factor: bool,
    address: IpAddr,
) -> Result<String, store::StoreError> {
    let value = random_text(32);
    let now = now_ms();
    state
        .store()
        .add_session(&Session {
            id_sha256: hash(&value),
            login_id: login_id.to_string(),
            csrf: random_text(24),
            created_ms: now,
            seen_ms: now,
            pending_second_factor,
            address: address.to_string(),
        })
        .await?;
    Ok(value)
}

/// Why a request has no usable session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSession {
    /// No cookie, or one the store does not know.
    Absent,
    /// It was valid once and has expired (idle or absolute): the page says so.
    Expired,
}

/// The live session a cookie value names, touched now; expired ones are removed.
pub async fn find<S: Store>(state: &ConsoleState<S>, value: &str) -> Result<Session, NoSession> {
    let id = hash(value);
    let session = match state.store().session(&id).await {
        Ok(Some(session)) => session,
        Ok(None) => return Err(NoSession::Absent),
        Err(err) => {
            tracing::error!(error = %err, "console session lookup failed");
            return Err(NoSession::Absent);
        }
    };
    let now = now_ms();
    let idle = state.config.session_idle.as_millis() as i64;
    let absolute = state.config.session_absolute.as_millis() as i64;
    if now - session.seen_ms > idle || now - session.created_ms > absolute {
        let _ = state.store().remove_session(&id).await;
        return Err(NoSession::Expired);
    }
    if now - session.seen_ms > TOUCH_EVERY_MS.min(idle / 2) {
        let _ = state.store().touch_session(&id, now).await;
    }
    Ok(session)
}

/// Forgets expired sessions every few minutes.
pub async fn purge_forever<S: Store>(state: Arc<ConsoleState<S>>) {
    loop {
        tokio::time::sleep(Duration::from_secs(300)).await;
        let now = now_ms();
        let created_before = now - state.config.session_absolute.as_millis() as i64;
        let seen_before = now - state.config.session_idle.as_millis() as i64;
        if let Err(err) = state
            .store()
            .purge_sessions(created_before, seen_before)
            .await
        {
            tracing::warn!(error = %err, "purging console sessions failed");
        }
    }
}
