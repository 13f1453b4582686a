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
    let mut out = String::with_capacity(160 + info.helo.len() + info.hostname.len());
    out.push_str("Received: from ");
    push_printable(&mut out, info.helo);
    out.push_str(" ([");
    let _ = write!(out, "{}", info.client_ip);
    out.push_str("])\r\n\tby ");
    out.push_str(info.hostname);
    out.push_str(" (tsubame) with ");
    out.push_str(info.protocol);
    out.push_str(" id ");
    out.push_str(info.queue_id);
    if let Some(rcpt) = info.single_recipient {
        out.push_str("\r\n\tfor <");
        push_printable(&mut out, rcpt);
        out.push('>');
    }
    out.push_str(";\r\n\t");
    smtp_wire::date::push_rfc5322_date(&mut out, info.unix_seconds);
    out.push_str("\r\n");
    out
}

/// A `Message-ID:` header for a message that lacks one.
pub fn message_id(queue_id: &str, hostname: &str) -> String {
    format!("Message-ID: <{queue_id}@{hostname}>\r\n")
}

/// True if the header section (up to the first empty line) has a Message-ID field.
pub fn has_message_id(content: &[u8]) -> bool {
    has_field(content, b"message-id:")
}

/// True if the header section has a field `name` (lower case, with its colon).
pub fn has_field(content: &[u8], name: &[u8]) -> bool {
    let mut start = 0;
    // Line ends found by memchr: this runs over every message's header section.
    let ends = memchr::memchr_iter(b'\n', content).chain(std::iter::once(content.len()));
    for end in ends {
        let line = &content[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return false;
        }
        if line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name) {
            return true;
        }
        start = end + 1;
    }
    false
}

/// Appends `text` with anything outside printable ASCII replaced, so that client-chosen text
/// cannot break the header (it is already CR/LF-free, but NUL or escapes should not reach
/// other systems).
fn push_printable(out: &mut String, text: &str) {
    if text.bytes().all(|b| b.is_ascii_graphic()) {
        out.push_str(text);
        return;
    }
    out.extend(
        text.chars()
            .map(|c| if c.is_ascii_graphic() { c } else { '?' }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_detection_stops_at_body() {
        assert!(has_message_id(
            b"Subject: x\r\nMESSAGE-ID: <a@b>\r\n\r\nbody"
        ));
        assert!(!has_message_id(
            b"Subject: x\r\n\r\nMessage-ID: <in body>\r\n"
        ));
        assert!(!has_message_id(b""));
        assert!(
            has_message_id(b"Message-Id: <a@b>"),
            "last line without CRLF"
        );
        assert!(!has_message_id(b"Subject: x\nX: y"));
        assert!(has_message_id(b"Subject: x\nmessage-id: <a@b>\n"));
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
