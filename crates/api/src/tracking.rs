//! Open and click tracking on the tenants' tracking hosts (`track.<sending domain>`, a
//! CNAME to this platform): `GET /t/o/{token}` answers a 1×1 GIF and records `opened`;
//! `GET /t/c/{token}` redirects to the link's URL and records `clicked`. No key and no
//! lookup: the token, signed by this platform, names the tenant, message, recipient,
//! campaign, link number and URL. A forged or altered token is a 404.
//!
//! Events carry the user agent, the client address (truncated to `/24` for IPv4, `/48` for
//! IPv6 — enough for a region, not a household — unless the tenant's tracking mode is
//! `full`; the mode rides in the token), and `machine` when a privacy proxy or link scanner
//! made them (`tracking::machine`); human rates leave those out.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use store::{EventKind, NewEvent};
use tracking::token::{Kind, Token};

use crate::ApiState;

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x01, 0x44, 0x00, 0x3b,
];

/// Longest user agent kept in an event.
const AGENT_CHARS_MAX: usize = 512;

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "This link is not valid.\n",
    )
        .into_response()
}

/// The client address without its last bits.
pub fn truncated(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::", s[0], s[1], s[2])
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn event(token: &Token, kind: EventKind, headers: &HeaderMap, peer: SocketAddr) -> NewEvent {
    let agent: String = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(AGENT_CHARS_MAX)
        .collect();
    let now = now_ms();
    let after = now / 1000 - i64::from(token.sent_s);
    let machine = match kind {
        EventKind::Opened => tracking::machine::open_by_machine(&agent, after),
        _ => tracking::machine::click_by_machine(&agent, after),
    };
    let mut detail = Map::new();
    detail.insert("campaign_id".into(), Value::from(token.campaign.as_str()));
    detail.insert("user_agent".into(), Value::from(agent));
    if let Some(variant) = token.variant {
        detail.insert("variant".into(), Value::from(variant));
    }
    if !token.zone.is_empty() {
        detail.insert("zone".into(), Value::from(token.zone.as_str()));
    }
    let address = if token.full_address {
        peer.ip().to_string()
    } else {
        truncated(peer.ip())
    };
    detail.insert("ip".into(), Value::from(address));
    detail.insert("machine".into(), Value::from(machine.is_some()));
    if let Some(reason) = machine {
        detail.insert("machine_reason".into(), Value::from(reason));
    }
    if kind == EventKind::Clicked {
        detail.insert("link".into(), Value::from(token.link));
        detail.insert("url".into(), Value::from(token.url.as_str()));
    }
    NewEvent {
        tenant_id: token.tenant.clone(),
        time_ms: now,
        kind,
        message_id: spool::MessageId(token.message_id).to_string(),
        recipient: token.recipient.clone(),
        custom_id: None,
        tags: None,
        detail: Some(Value::Object(detail).to_string()),
    }
}

/// `GET /t/o/{token}`: the pixel.
pub(crate) async fn open<S: Send + Sync + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let token = token.strip_suffix(".gif").unwrap_or(&token);
    let Some(found) = state.tracking.get().and_then(|k| k.open(Kind::Open, token)) else {
        return not_found();
    };
    state
        .events
        .record(vec![event(&found, EventKind::Opened, &headers, peer)]);
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "image/gif"),
            (header::CACHE_CONTROL, "no-store, max-age=0"),
        ],
        PIXEL,
    )
        .into_response()
}

/// `GET /t/c/{token}`: the redirect to the link's URL.
pub(crate) async fn click<S: Send + Sync + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(found) = state
        .tracking
        .get()
        .and_then(|k| k.open(Kind::Click, &token))
    else {
        return not_found();
    };
    // Only http(s) links are ever sealed; anything else would be a bug, not a redirect.
    let lower = found.url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://"))
        || found.url.contains(['\r', '\n'])
    {
        return not_found();
    }
    state
        .events
        .record(vec![event(&found, EventKind::Clicked, &headers, peer)]);
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, found.url.as_str()),
            (header::CACHE_CONTROL, "no-store"),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_truncated() {
        assert_eq!(truncated("203.0.113.77".parse().unwrap()), "203.0.113.0");
        assert_eq!(
            truncated("2001:db8:abcd:12:1:2:3:4".parse().unwrap()),
            "2001:db8:abcd::"
        );
    }
}
