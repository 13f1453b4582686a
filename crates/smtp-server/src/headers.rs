//! Trace and identity headers added at ingress: `Received:` (RFC 5321 §4.4) always, and
//! `Message-ID:` when the submission has none (RFC 5322 §3.6.4 says it SHOULD be present;
//! mailbox providers score its absence).

use std::fmt::Write as _;
use std::net::IpAddr;

/// What goes into the Received header.
#[derive(Debug)]
pub struct TraceInfo<'a> {
    /// The client's EHLO/HELO name.
    pub helo: &'a str,
    /// The client's address.
    pub client_ip: IpAddr,
    /// Our host name.
    pub hostname: &'a str,
    /// RFC 3848 protocol keyword (ESMTPSA, ...).
    pub protocol: &'static str,
    /// Our queue id for the message.
    pub queue_id: &'a str,
    /// The single recipient, if there is exactly one (more would disclose Bcc recipients).
    pub single_recipient: Option<&'a str>,
    /// Seconds since the Unix epoch.
    pub unix_seconds: i64,
}

/// The header text, CRLF-terminated and folded.
pub fn received(info: &TraceInfo<'_>) -> String {
    let helo = printable(info.helo);
    let mut out = format!(
        "Received: from {helo} ([{}])\r\n\tby {} (tsubame) with {} id {}",
        info.client_ip, info.hostname, info.protocol, info.queue_id
    );
    if let Some(rcpt) = info.single_recipient {
        let _ = write!(out, "\r\n\tfor <{}>", printable(rcpt));
    }
    let _ = write!(out, ";\r\n\t{}\r\n", rfc5322_date(info.unix_seconds));
    out
}

/// A `Message-ID:` header for a message that lacks one.
pub fn message_id(queue_id: &str, hostname: &str) -> String {
    format!("Message-ID: <{queue_id}@{hostname}>\r\n")
}

/// True if the header section (up to the first empty line) has a Message-ID field.
pub fn has_message_id(content: &[u8]) -> bool {
    for line in content.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return false;
        }
        if line.len() >= 11 && line[..11].eq_ignore_ascii_case(b"message-id:") {
            return true;
        }
    }
    false
}

/// Replaces anything outside printable ASCII so that client-chosen text cannot break the
/// header (it is already CR/LF-free, but NUL or escapes should not reach other systems).
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// `Sun, 22 Nov 2026 05:08:55 +0000`.
pub fn rfc5322_date(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_795_324_135),
            "Sun, 22 Nov 2026 05:08:55 +0000"
        );
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn message_id_detection_stops_at_body() {
        assert!(has_message_id(
            b"Subject: x\r\nMESSAGE-ID: <a@b>\r\n\r\nbody"
        ));
        assert!(!has_message_id(
            b"Subject: x\r\n\r\nMessage-ID: <in body>\r\n"
        ));
        assert!(!has_message_id(b""));
    }

    #[test]
    fn received_header_shape() {
        let text = received(&TraceInfo {
            helo: "client\u{0}x",
            client_ip: "127.0.0.1".parse().expect("ip"),
            hostname: "mx.test",
            protocol: "ESMTPS",
            queue_id: "ID1",
            single_recipient: Some("r@example.com"),
            unix_seconds: 0,
        });
        assert_eq!(
            text,
            "Received: from client?x ([127.0.0.1])\r\n\tby mx.test (tsubame) with ESMTPS id ID1\r\n\tfor <r@example.com>;\r\n\tThu, 01 Jan 1970 00:00:00 +0000\r\n"
        );
    }
}
