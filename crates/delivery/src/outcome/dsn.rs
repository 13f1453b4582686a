//! RFC 3464 delivery status notifications: a `multipart/report` with a human-readable part,
//! the `message/delivery-status` part, and the original message's headers
//! (`text/rfc822-headers`) or, when the sender asked with RET=FULL, the whole message.

use std::fmt::Write as _;

use spool::{Envelope, MessageId};

/// DSN NOTIFY bits as the spool stores them.
pub const NOTIFY_SUCCESS: u8 = 1;
pub const NOTIFY_FAILURE: u8 = 2;
pub const NOTIFY_DELAY: u8 = 4;
pub const NOTIFY_NEVER: u8 = 8;

/// DSN RET as the spool stores it.
pub const RET_FULL: u8 = 1;

/// Largest original message returned in full; larger ones get headers only.
const FULL_RETURN_BYTES_MAX: usize = 10 * 1024 * 1024;

/// One recipient's line in the report.
#[derive(Debug, Clone)]
pub struct RecipientReport {
    /// Index into the envelope.
    pub index: u32,
    /// "failed", "delivered", "delayed", "relayed", "expanded".
    pub action: &'static str,
    /// RFC 3463 status "5.1.1".
    pub status: String,
    /// The MX host that answered, if any.
    pub remote_mta: Option<String>,
    /// The server's reply ("550 5.1.1 No such user"), or our own diagnosis.
    pub diagnostic: String,
    /// When the last attempt was made, Unix seconds.
    pub last_attempt: i64,
}

/// Whether a failure DSN is wanted for this recipient (RFC 3461 §4.1: without NOTIFY the
/// default is FAILURE; NEVER suppresses everything). Never for the null sender.
pub fn wants_failure_report(envelope: &Envelope, notify: u8) -> bool {
    !envelope.sender.is_empty()
        && notify & NOTIFY_NEVER == 0
        && (notify == 0 || notify & NOTIFY_FAILURE != 0)
}

/// Whether a "delayed" DSN is wanted: NOTIFY=DELAY, or no NOTIFY at all (RFC 3461 §4.1 lets
/// the MTA decide; we warn once). Never for the null sender or NOTIFY=NEVER.
pub fn wants_delay_report(envelope: &Envelope, notify: u8) -> bool {
    !envelope.sender.is_empty()
        && notify & NOTIFY_NEVER == 0
        && (notify == 0 || notify & NOTIFY_DELAY != 0)
}

/// Whether a success DSN is wanted (only with NOTIFY=SUCCESS).
pub fn wants_success_report(envelope: &Envelope, notify: u8) -> bool {
    !envelope.sender.is_empty() && notify & NOTIFY_NEVER == 0 && notify & NOTIFY_SUCCESS != 0
}

/// Everything needed to write one DSN.
pub struct Report<'a> {
    /// Our host name (Reporting-MTA, From, Message-ID).
    pub hostname: &'a str,
    pub original_id: MessageId,
    pub envelope: &'a Envelope,
    /// The original content (headers are cut from it; all of it for RET=FULL).
    pub content: &'a [u8],
    pub recipients: &'a [RecipientReport],
    /// Now, Unix seconds.
    pub now: i64,
    /// Unique, for the boundary and Message-ID.
    pub dsn_id: MessageId,
}

/// The DSN message, CRLF line endings, ready to be spooled from the null sender.
pub fn build(report: &Report<'_>) -> Vec<u8> {
    let envelope = report.envelope;
    let boundary = format!("{}/{}", report.dsn_id, report.hostname);
    let failed = report.recipients.iter().any(|r| r.action == "failed");
    let subject = if failed {
        "Undelivered Mail Returned to Sender"
    } else if report.recipients.iter().any(|r| r.action == "delayed") {
        "Delayed Mail (still being retried)"
    } else {
        "Successful Mail Delivery Report"
    };
    let date = smtp_wire::date::rfc5322_date(report.now);
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "From: Mail Delivery System <MAILER-DAEMON@{host}>\r\n\
         To: <{to}>\r\n\
         Subject: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <{id}.dsn@{host}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"{boundary}\"\r\n\
         \r\n\
         This is a MIME-encapsulated delivery status notification.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n",
        host = report.hostname,
        to = envelope.sender,
        id = report.dsn_id,
    );
    if failed {
        out.push_str(
            "Your message could not be delivered to one or more recipients.\r\n\
             The details are below; the original message's headers are attached.\r\n\r\n",
        );
    } else if report.recipients.iter().any(|r| r.action == "delayed") {
        out.push_str(
            "Your message has not been delivered yet to the recipients below.\r\n\
             It is still queued and will be retried; nothing is needed from you now.\r\n\r\n",
        );
    } else {
        out.push_str("This is a report on your message's delivery.\r\n\r\n");
    }
    for r in report.recipients {
        let address = recipient_address(envelope, r.index);
        let _ = write!(out, "<{address}>: {}\r\n", one_line(&r.diagnostic));
        if let Some(mta) = &r.remote_mta {
            let _ = write!(out, "    (reported by {mta})\r\n");
        }
    }
    let _ = write!(
        out,
        "\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; {}\r\n",
        report.hostname
    );
    if let Some(envid) = &envelope.dsn_envid {
        let _ = write!(out, "Original-Envelope-Id: {}\r\n", one_line(envid));
    }
    let _ = write!(
        out,
        "X-Tsubame-Queue-ID: {}\r\nArrival-Date: {}\r\n",
        report.original_id,
        smtp_wire::date::rfc5322_date((envelope.received_ms / 1000) as i64)
    );
    for r in report.recipients {
        out.push_str("\r\n");
        let rcpt = envelope.recipients.get(r.index as usize);
        if let Some(orcpt) = rcpt.and_then(|r| r.orcpt.as_deref()) {
            let _ = write!(out, "Original-Recipient: {}\r\n", one_line(orcpt));
        }
        let _ = write!(
            out,
            "Final-Recipient: rfc822; {}\r\nAction: {}\r\nStatus: {}\r\n",
            recipient_address(envelope, r.index),
            r.action,
            r.status
        );
        if let Some(mta) = &r.remote_mta {
            let _ = write!(out, "Remote-MTA: dns; {mta}\r\n");
        }
        let _ = write!(
            out,
            "Diagnostic-Code: smtp; {}\r\nLast-Attempt-Date: {}\r\n",
            one_line(&r.diagnostic),
            smtp_wire::date::rfc5322_date(r.last_attempt)
        );
    }
    let full = envelope.dsn_ret == RET_FULL && report.content.len() <= FULL_RETURN_BYTES_MAX;
    let mut bytes = out.into_bytes();
    if full {
        let _ = write_part_header(&mut bytes, &boundary, "message/rfc822");
        bytes.extend_from_slice(report.content);
        if !report.content.ends_with(b"\r\n") {
            bytes.extend_from_slice(b"\r\n");
        }
    } else {
        let _ = write_part_header(&mut bytes, &boundary, "text/rfc822-headers");
        bytes.extend_from_slice(headers_of(report.content));
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    bytes
}

fn write_part_header(out: &mut Vec<u8>, boundary: &str, content_type: &str) -> std::fmt::Result {
    out.extend_from_slice(
        format!("\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n").as_bytes(),
    );
    Ok(())
}

fn recipient_address(envelope: &Envelope, index: u32) -> &str {
    envelope
        .recipients
        .get(index as usize)
        .map_or("unknown", |r| r.address.as_str())
}

/// A header field value must stay on one line; replies can be multi-line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '\r' || c == '\n' || c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// The header section, including its final CRLF (not the blank line).
pub fn headers_of(content: &[u8]) -> &[u8] {
    if content.starts_with(b"\r\n") {
        return &[];
    }
    match memchr::memmem::find(content, b"\r\n\r\n") {
        Some(end) => &content[..end + 2],
        None => content,
    }
}
