//! Reading what comes back to a return path: RFC 3464 delivery status notifications
//! (per-recipient action, status and diagnostic), RFC 5965 feedback reports (complaints),
//! and the bounces that follow neither (qmail, Exchange and friends: free text naming the
//! address and, often, a status code).

use std::sync::LazyLock;

use mail_parser::{MessageParser, MimeHeaders};

/// One recipient's fate as a DSN reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRecipient {
    /// Final-Recipient (or Original-Recipient), without its `rfc822;` type.
    pub recipient: String,
    /// `failed`, `delayed`, `delivered`, `relayed` or `expanded`.
    pub action: String,
    /// Enhanced status code (`5.1.1`), if given.
    pub status: Option<String>,
    /// The remote server's reply, without its `smtp;` type.
    pub diagnostic: Option<String>,
}

/// What a report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Dsn(Vec<DsnRecipient>),
    /// A complaint (or other feedback) about a message.
    Feedback {
        feedback_type: String,
        /// Original-Rcpt-To, else the To of the enclosed message.
        recipients: Vec<String>,
    },
    /// No structure: the text, for matching addresses and codes in it.
    Unstructured {
        text: String,
    },
}

/// Header-style fields of a report part, continuation lines unfolded, names lower-cased;
/// one group per blank-line-separated block.
fn field_groups(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups = Vec::new();
    let mut group: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !group.is_empty() {
                groups.push(std::mem::take(&mut group));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

fn field<'a>(group: &'a [(String, String)], name: &str) -> Option<&'a str> {
    group
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `rfc822; a@b` → `a@b`.
fn untyped(value: &str) -> String {
    let value = value.split_once(';').map_or(value, |(_, v)| v).trim();
    value
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

/// Reads a report; `None` when the content is not a message at all.
pub fn parse(content: &[u8]) -> Option<Report> {
    let message = MessageParser::new().parse(content)?;
    for part in message.parts.iter() {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let kind = (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().map(str::to_ascii_lowercase),
        );
        match (kind.0.as_str(), kind.1.as_deref()) {
            ("message", Some("delivery-status" | "global-delivery-status")) => {
                let text = String::from_utf8_lossy(part.contents());
                let recipients: Vec<DsnRecipient> = field_groups(&text)
                    .iter()
                    .filter_map(|g| {
                        let recipient = field(g, "final-recipient")
                            .or_else(|| field(g, "original-recipient"))?;
                        Some(DsnRecipient {
                            recipient: untyped(recipient),
                            action: field(g, "action")?.to_ascii_lowercase(),
                            status: field(g, "status").map(|s| {
                                s.split_whitespace().next().unwrap_or_default().to_string()
                            }),
                            diagnostic: field(g, "diagnostic-code").map(untyped),
                        })
                    })
                    .collect();
                if !recipients.is_empty() {
                    return Some(Report::Dsn(recipients));
                }
            }
            ("message", Some("feedback-report")) => {
                let text = String::from_utf8_lossy(part.contents());
                let fields: Vec<(String, String)> = field_groups(&text).concat();
                let feedback_type = field(&fields, "feedback-type")
                    .unwrap_or("abuse")
                    .to_ascii_lowercase();
                let mut recipients: Vec<String> = fields
                    .iter()
                    .filter(|(n, _)| n == "original-rcpt-to")
                    .map(|(_, v)| untyped(v))
                    .collect();
                if recipients.is_empty() {
                    recipients = enclosed_recipients(&message);
                }
                return Some(Report::Feedback {
                    feedback_type,
                    recipients,
                });
            }
            _ => {}
        }
    }
    let mut text = String::new();
    for i in 0..message.text_body.len() {
        if let Some(body) = message.body_text(i) {
            text.push_str(&body);
            text.push('\n');
        }
    }
    if text.is_empty() {
        text = String::from_utf8_lossy(content).into_owned();
    }
    Some(Report::Unstructured { text })
}

/// The To addresses of the message a feedback report encloses.
fn enclosed_recipients(message: &mail_parser::Message<'_>) -> Vec<String> {
    for part in message.parts.iter() {
        if let Some(inner) = part.message()
            && let Some(to) = inner.to()
        {
            return to
                .iter()
                .filter_map(|a| a.address().map(str::to_string))
                .collect();
        }
        let is_headers = part.content_type().is_some_and(|ct| {
            ct.subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers"))
        });
        if is_headers
            && let Some(inner) = MessageParser::new().parse_headers(part.contents())
            && let Some(to) = inner.to()
        {
            return to
                .iter()
                .filter_map(|a| a.address().map(str::to_string))
                .collect();
        }
    }
    Vec::new()
}

static STATUS: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b").expect("pattern"));
static CODE: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"\b([45]\d\d)[ -]").expect("pattern"));

/// The first enhanced status code and reply code in free text.
pub fn codes_in(text: &str) -> (Option<(u8, u16, u16)>, Option<u16>) {
    let status = STATUS
        .captures(text)
        .and_then(|c| Some((c[1].parse().ok()?, c[2].parse().ok()?, c[3].parse().ok()?)));
    let code = CODE.captures(text).and_then(|c| c[1].parse().ok());
    (status, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &str = "From: MAILER-DAEMON@mx.example.net\r\nTo: bounces+X.y@bounce.acme.test\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; Bob@example.net\r\nOriginal-Recipient: rfc822;bob@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <bob@example.net>:\r\n Recipient address rejected: User unknown\r\n\r\nFinal-Recipient: rfc822; cy@example.net\r\nAction: delayed\r\nStatus: 4.2.2\r\n\r\n--b1--\r\n";

    #[test]
    fn a_dsn_reports_each_recipient() {
        let Some(Report::Dsn(recipients)) = parse(DSN.as_bytes()) else {
            panic!("not read as a DSN")
        };
        assert_eq!(recipients.len(), 2);
        assert_eq!(recipients[0].recipient, "Bob@example.net");
        assert_eq!(recipients[0].action, "failed");
        assert_eq!(recipients[0].status.as_deref(), Some("5.1.1"));
        assert_eq!(
            recipients[0].diagnostic.as_deref(),
            Some("550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown")
        );
        assert_eq!(recipients[1].action, "delayed");
    }

    #[test]
    fn a_feedback_report_names_the_complaining_recipient() {
        let arf = "From: fbl@isp.example\r\nTo: bounces+X.y@bounce.acme.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"f\"\r\n\r\n--f\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report\r\n--f\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: SomeGenerator/1.0\r\nVersion: 1\r\n\r\n--f\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\nFrom: news@acme.test\r\nTo: dee@example.net\r\nSubject: Sale\r\n\r\nBuy.\r\n--f--\r\n";
        assert_eq!(
            parse(arf.as_bytes()),
            Some(Report::Feedback {
                feedback_type: "abuse".into(),
                recipients: vec!["dee@example.net".into()]
            })
        );
    }

    #[test]
    fn a_free_text_bounce_keeps_its_text_and_codes() {
        let qmail = "From: MAILER-DAEMON@mx.example.net\r\nSubject: failure notice\r\n\r\nHi. This is the qmail-send program at mx.example.net.\r\nI'm afraid I wasn't able to deliver your message to the following addresses.\r\n\r\n<eve@example.net>:\r\n198.51.100.7 does not like recipient.\r\nRemote host said: 550 5.1.1 Sorry, no mailbox here by that name.\r\n";
        let Some(Report::Unstructured { text }) = parse(qmail.as_bytes()) else {
            panic!("not free text")
        };
        assert!(text.contains("<eve@example.net>"));
        assert_eq!(codes_in(&text), (Some((5, 1, 1)), Some(550)));
    }

    proptest::proptest! {
        /// Reports come from anyone: no content makes reading them panic.
        #[test]
        fn any_content_is_read_without_panicking(
            content in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
            cut in 0usize..2000,
        ) {
            let _ = parse(&content);
            let mut mixed = DSN.as_bytes().to_vec();
            mixed.truncate(cut.min(mixed.len()));
            mixed.extend_from_slice(&content);
            let _ = parse(&mixed);
            let _ = codes_in(&String::from_utf8_lossy(&content));
        }
    }
}
