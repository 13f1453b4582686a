//! `send_at`: a message accepted now and delivered later. The spool keeps it durably like
//! any other; delivery makes no attempt before the time.

use serde_json::Value;

use crate::native::Check;

/// How far ahead a message may be scheduled (as SendGrid allows).
pub const AHEAD_MAX_SECS: u64 = 72 * 3600;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Check {
    /// Unix seconds or an RFC 3339 time; Unix milliseconds out. A time already past means
    /// now.
    pub(crate) fn send_at(&mut self, field: &str, value: Option<&Value>) -> Option<u64> {
        let secs = match value? {
            Value::Null => return None,
            Value::Number(n) => match n.as_u64() {
                Some(secs) => secs,
                None => {
                    self.fail(field.to_string(), "must be a Unix time in seconds");
                    return None;
                }
            },
            Value::String(text) => match text.parse::<jiff::Timestamp>() {
                Ok(time) => time.as_second().max(0) as u64,
                Err(_) => {
                    self.fail(
                        field.to_string(),
                        "must be an RFC 3339 time with an offset (2026-11-26T09:00:00+09:00) or Unix seconds",
                    );
                    return None;
                }
            },
            _ => {
                self.fail(
                    field.to_string(),
                    "must be an RFC 3339 time or Unix seconds",
                );
                return None;
            }
        };
        if secs > now_secs() + AHEAD_MAX_SECS {
            self.fail(
                field.to_string(),
                format!("at most {} hours ahead", AHEAD_MAX_SECS / 3600),
            );
            return None;
        }
        (secs > now_secs()).then_some(secs * 1000)
    }
}
