//! `POST /v1/messages`: the native send API. A request holds a batch of messages; every
//! field is checked first (errors name their JSON path), then all messages go to the spool
//! together and the reply comes once every one of them is durable.

use serde_json::Value;

use crate::attachments::{self, Attachment};
use crate::error::FieldError;

/// Messages per request.
pub const MESSAGES_MAX: usize = 500;
/// Recipients (to + cc + bcc) per message.
pub const RECIPIENTS_MAX: usize = 50;
/// Custom headers per message.
pub const HEADERS_MAX: usize = 50;
/// Text, HTML and decoded attachments of one message together, in bytes.
pub const MESSAGE_BYTES_MAX: usize = 20 << 20;
/// Longest subject, header value or display name, in bytes.
pub const TEXT_FIELD_BYTES_MAX: usize = 4096;

/// A mailbox with an optional display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub email: String,
    pub name: Option<String>,
}

/// A message that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub headers: Vec<(String, String)>,
    /// Shared: a SendGrid request's attachments go with each of its personalizations.
    pub attachments: std::sync::Arc<[Attachment]>,
    pub custom_id: Option<String>,
    pub metadata: Vec<(String, String)>,
    pub tags: Vec<String>,
    /// Mailjet's `EventPayload`: a string returned with the message's events.
    pub event_payload: Option<String>,
    /// No delivery before this time (Unix milliseconds).
    pub send_at_ms: Option<u64>,
}

impl Message {
    /// Envelope recipients: to, cc and bcc, each address once.
    pub fn recipients(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.to
            .iter()
            .chain(&self.cc)
            .chain(&self.bcc)
            .filter(|m| seen.insert(m.email.to_ascii_lowercase()))
            .map(|m| m.email.clone())
            .collect()
    }
}

/// Headers the API sets itself; a request may not.
const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "received",
    "return-path",
    "dkim-signature",
];

/// Collects every problem of a request instead of stopping at the first.
pub(crate) struct Check {
    pub(crate) errors: Vec<FieldError>,
}

impl Check {
    pub(crate) fn fail(&mut self, field: String, message: impl Into<String>) {
        self.errors.push(FieldError::at(field, message));
    }

    /// A text without CR, LF or NUL (header injection), within the length limit.
    pub(crate) fn line(&mut self, field: &str, value: &Value) -> Option<String> {
        let Some(text) = value.as_str() else {
            self.fail(field.to_string(), "must be a string");
            return None;
        };
        if text.contains(['\r', '\n', '\0']) {
            self.fail(field.to_string(), "must not contain CR, LF or NUL");
            return None;
        }
        if text.len() > TEXT_FIELD_BYTES_MAX {
            self.fail(
                field.to_string(),
                format!("longer than {TEXT_FIELD_BYTES_MAX} bytes"),
            );
            return None;
        }
        Some(text.to_string())
    }

    pub(crate) fn mailbox(&mut self, field: &str, value: &Value) -> Option<Mailbox> {
        let (email_field, email, name) = match value {
            Value::String(_) => (field.to_string(), value, None),
            Value::Object(map) => {
                // Native and SendGrid say email/name, Mailjet says Email/Name.
                let pick = |lower: &'static str, upper: &'static str| {
                    map.get(lower)
                        .map(|v| (lower, v))
                        .or_else(|| map.get(upper).map(|v| (upper, v)))
                };
                let Some((key, email)) = pick("email", "Email") else {
                    let key = if map.contains_key("Name") {
                        "Email"
                    } else {
                        "email"
                    };
                    self.fail(format!("{field}.{key}"), "is required");
                    return None;
                };
                (format!("{field}.{key}"), email, pick("name", "Name"))
            }
            _ => {
                self.fail(
                    field.to_string(),
                    "must be an address or {\"email\", \"name\"}",
                );
                return None;
            }
        };
        let email = self.line(&email_field, email)?;
        let smtputf8 = !email.is_ascii();
        if smtp_wire::address::check_mailbox(&email, smtputf8).is_err() || email.is_empty() {
            self.fail(email_field, "is not a valid email address");
            return None;
        }
        let name = match name {
            None | Some((_, Value::Null)) => None,
            Some((key, v)) => Some(self.line(&format!("{field}.{key}"), v)?),
        };
        Some(Mailbox { email, name })
    }

    pub(crate) fn mailboxes(&mut self, field: &str, value: Option<&Value>) -> Vec<Mailbox> {
        match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.mailbox(&format!("{field}[{i}]"), item))
                .collect(),
            Some(single) => self.mailbox(field, single).into_iter().collect(),
        }
    }

    pub(crate) fn body(&mut self, field: &str, value: Option<&Value>) -> Option<String> {
        match value {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) if text.contains('\0') => {
                self.fail(field.to_string(), "must not contain NUL");
                None
            }
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                self.fail(field.to_string(), "must be a string");
                None
            }
        }
    }

    pub(crate) fn headers(&mut self, field: &str, value: Option<&Value>) -> Vec<(String, String)> {
        let map = match value {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Object(map)) => map,
            Some(_) => {
                self.fail(
                    field.to_string(),
                    "must be an object of header names to values",
                );
                return Vec::new();
            }
        };
        if map.len() > HEADERS_MAX {
            self.fail(
                field.to_string(),
                format!("more than {HEADERS_MAX} headers"),
            );
            return Vec::new();
        }
        let mut out = Vec::new();
        for (name, value) in map {
            let path = format!("{field}.{name}");
            let name_ok = !name.is_empty()
                && name.len() <= 76
                && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            if !name_ok {
                self.fail(path, "is not a valid header name");
                continue;
            }
            let lower = name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str()) {
                self.fail(path, "is set by tsubame; use the message's own field");
                continue;
            }
            if lower == "authentication-results" || lower.starts_with("arc-") {
                // Receivers record their verdicts in these; one forged by a sender could be
                // trusted by a mailbox downstream as if a verifier had written it.
                self.fail(
                    path,
                    "is written by receiving servers; a sender may not set it",
                );
                continue;
            }
            if let Some(value) = self.line(&path, value) {
                out.push((name.clone(), value));
            }
        }
        out
    }

    fn message(&mut self, field: &str, value: &Value) -> Option<Message> {
        let Some(map) = value.as_object() else {
            self.fail(field.to_string(), "must be an object");
            return None;
        };
        let before = self.errors.len();
        let from = match map.get("from") {
            Some(v) => self.mailbox(&format!("{field}.from"), v),
            None => {
                self.fail(format!("{field}.from"), "is required");
                None
            }
        };
        let to = self.mailboxes(&format!("{field}.to"), map.get("to"));
        let cc = self.mailboxes(&format!("{field}.cc"), map.get("cc"));
        let bcc = self.mailboxes(&format!("{field}.bcc"), map.get("bcc"));
        let reply_to = match map.get("reply_to") {
            None | Some(Value::Null) => None,
            Some(v) => self.mailbox(&format!("{field}.reply_to"), v),
        };
        let mut subject = match map.get("subject") {
            None | Some(Value::Null) => String::new(),
            Some(v) => self
                .line(&format!("{field}.subject"), v)
                .unwrap_or_default(),
        };
        let mut text = self.body(&format!("{field}.text"), map.get("text"));
        let mut html = self.body(&format!("{field}.html"), map.get("html"));
        let headers = self.headers(&format!("{field}.headers"), map.get("headers"));
        let attachments = self.attachments(
            &format!("{field}.attachments"),
            map.get("attachments"),
            &attachments::NATIVE,
            false,
        );
        let custom_id = match map.get("custom_id") {
            None | Some(Value::Null) => None,
            Some(v) => self.line(&format!("{field}.custom_id"), v),
        };
        let metadata = self.metadata(&format!("{field}.metadata"), map.get("metadata"));
        let tags = self.tags(&format!("{field}.tags"), map.get("tags"));
        let send_at_ms = self.send_at(&format!("{field}.send_at"), map.get("send_at"));
        match map.get("variables") {
            None | Some(Value::Null) => {}
            Some(variables @ Value::Object(_)) => {
                let fields = ["subject", "text", "html"].map(|f| format!("{field}.{f}"));
                self.render_parts(&fields, variables, &mut subject, &mut text, &mut html);
            }
            Some(_) => self.fail(format!("{field}.variables"), "must be an object"),
        }
        for key in map.keys() {
            let known = [
                "from",
                "to",
                "cc",
                "bcc",
                "reply_to",
                "subject",
                "text",
                "html",
                "headers",
                "attachments",
                "custom_id",
                "metadata",
                "tags",
                "variables",
                "send_at",
            ];
            if !known.contains(&key.as_str()) {
                self.fail(format!("{field}.{key}"), "is not a known field");
            }
        }
        if self.errors.len() > before {
            return None;
        }
        let message = Message {
            from: from?,
            to,
            cc,
            bcc,
            reply_to,
            subject,
            text,
            html,
            headers,
            attachments: attachments.into(),
            custom_id,
            metadata,
            tags,
            event_payload: None,
            send_at_ms,
        };
        self.limits(
            &format!("{field}.to"),
            &format!("{field}.text"),
            &format!("{field}.attachments"),
            &message,
        )?;
        Some(message)
    }

    /// Recipient count, body presence and attachment size, for every API's messages; errors
    /// name each API's own fields.
    pub(crate) fn limits(
        &mut self,
        recipients_field: &str,
        body_field: &str,
        attachments_field: &str,
        message: &Message,
    ) -> Option<()> {
        let count = message.recipients().len();
        if count == 0 {
            self.fail(
                recipients_field.to_string(),
                "at least one recipient (to, cc or bcc) is required",
            );
            return None;
        }
        if count > RECIPIENTS_MAX {
            self.fail(
                recipients_field.to_string(),
                format!("{count} recipients; at most {RECIPIENTS_MAX} per message"),
            );
            return None;
        }
        if message.text.is_none() && message.html.is_none() {
            self.fail(body_field.to_string(), "a text or html body is required");
            return None;
        }
        let before = self.errors.len();
        self.attachment_size(attachments_field, &message.attachments);
        let size = message.text.as_ref().map_or(0, String::len)
            + message.html.as_ref().map_or(0, String::len)
            + message
                .attachments
                .iter()
                .map(|a| a.content.len())
                .sum::<usize>();
        if size > MESSAGE_BYTES_MAX {
            self.fail(
                body_field.to_string(),
                format!(
                    "the message is {size} bytes with its attachments; at most {MESSAGE_BYTES_MAX}"
                ),
            );
        }
        (self.errors.len() == before).then_some(())
    }
}

/// Checks a whole request body; all of its messages, or every error found.
pub fn parse(body: &[u8]) -> Result<Vec<Message>, Vec<FieldError>> {
    let value: Value = serde_json::from_slice(body).map_err(|err| {
        vec![FieldError::general(format!(
            "the body is not valid JSON: {err}"
        ))]
    })?;
    let mut check = Check { errors: Vec::new() };
    let Some(items) = value.get("messages").and_then(Value::as_array) else {
        return Err(vec![FieldError::at(
            "messages",
            "must be an array of messages",
        )]);
    };
    if items.is_empty() || items.len() > MESSAGES_MAX {
        return Err(vec![FieldError::at(
            "messages",
            format!("1 to {MESSAGES_MAX} messages per request"),
        )]);
    }
    let messages: Vec<Message> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| check.message(&format!("messages[{i}]"), item))
        .collect();
    if check.errors.is_empty() {
        Ok(messages)
    } else {
        Err(check.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(body: &str) -> Vec<String> {
        parse(body.as_bytes())
            .expect_err("refused")
            .into_iter()
            .filter_map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_full_message_parses() {
        let body = r#"{"messages":[{"from":{"email":"a@acme.test","name":"Acme"},
            "to":["b@x.test",{"email":"c@x.test"}],"cc":"d@x.test","bcc":[{"email":"B@x.test"}],
            "subject":"Hi","text":"Hello","headers":{"X-Campaign":"7"},"custom_id":"o-1"}]}"#;
        let messages = parse(body.as_bytes()).expect("valid");
        assert_eq!(messages[0].from.name.as_deref(), Some("Acme"));
        // b@ and B@ are one recipient.
        assert_eq!(
            messages[0].recipients(),
            ["b@x.test", "c@x.test", "d@x.test"]
        );
        assert_eq!(messages[0].headers, [("X-Campaign".into(), "7".into())]);
    }

    #[test]
    fn header_injection_is_refused_wherever_it_hides() {
        let body = r#"{"messages":[{"from":{"email":"a@acme.test","name":"A\r\nBcc: x@evil.test"},
            "to":["b@x.test"],"subject":"Hi\nBcc: x@evil.test","text":"t",
            "headers":{"X-A":"1\r\nBcc: x@evil.test","Bad Name":"v","Subject":"again"}}]}"#;
        let mut got = fields(body);
        got.sort();
        assert_eq!(
            got,
            [
                "messages[0].from.name",
                "messages[0].headers.Bad Name",
                "messages[0].headers.Subject",
                "messages[0].headers.X-A",
                "messages[0].subject",
            ]
        );
    }

    /// Verdict headers (Authentication-Results, ARC-*) are receivers' to write: a forged
    /// one could be trusted downstream. Every API refuses them, naming the header.
    #[test]
    fn receivers_verdict_headers_are_refused() {
        let body = r#"{"messages":[{"from":"a@acme.test","to":["b@x.test"],"subject":"s","text":"t",
            "headers":{"Authentication-Results":"mx.example; dkim=pass","ARC-Seal":"i=1; cv=none",
            "arc-message-signature":"x","ARC-Authentication-Results":"i=1; spf=pass","X-Arc":"ok"}}]}"#;
        let mut got = fields(body);
        got.sort();
        assert_eq!(
            got,
            [
                "messages[0].headers.ARC-Authentication-Results",
                "messages[0].headers.ARC-Seal",
                "messages[0].headers.Authentication-Results",
                "messages[0].headers.arc-message-signature",
            ]
        );
        let sendgrid = r#"{"personalizations":[{"to":[{"email":"b@x.test"}],
            "headers":{"ARC-Seal":"i=1"}}],"from":{"email":"a@acme.test"},"subject":"s",
            "headers":{"Authentication-Results":"x"},"content":[{"type":"text/plain","value":"x"}]}"#;
        let mut got: Vec<String> = crate::sendgrid::parse(sendgrid.as_bytes(), &Default::default())
            .expect_err("refused")
            .into_iter()
            .filter_map(|e| e.field)
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                "headers.Authentication-Results",
                "personalizations[0].headers.ARC-Seal"
            ]
        );
    }

    #[test]
    fn every_error_names_its_field() {
        let body = r#"{"messages":[{"to":["not an address"],"text":"t"},
            {"from":"a@acme.test","to":[],"text":5,"colour":"red"}]}"#;
        let got = fields(body);
        assert!(got.contains(&"messages[0].from".to_string()), "{got:?}");
        assert!(got.contains(&"messages[0].to[0]".to_string()), "{got:?}");
        assert!(got.contains(&"messages[1].text".to_string()), "{got:?}");
        assert!(got.contains(&"messages[1].colour".to_string()), "{got:?}");
        assert_eq!(fields(r#"{"messages":[]}"#), ["messages"]);
        assert!(parse(b"{not json").is_err());
    }

    #[test]
    fn recipient_limit_holds() {
        let to: Vec<String> = (0..=RECIPIENTS_MAX)
            .map(|i| format!("\"u{i}@x.test\""))
            .collect();
        let body = format!(
            r#"{{"messages":[{{"from":"a@acme.test","to":[{}],"text":"t"}}]}}"#,
            to.join(",")
        );
        assert_eq!(fields(&body), ["messages[0].to"]);
    }

    #[test]
    fn attachments_metadata_tags_variables_and_send_at_parse() {
        let in_an_hour = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            + 3600;
        let body = format!(
            r#"{{"messages":[{{"from":"a@acme.test","to":["b@x.test"],
            "subject":"Order {{{{ order }}}}","html":"<p>Hi {{{{ name }}}} <img src=\"cid:logo\"></p>",
            "variables":{{"order":42,"name":"<Ann>"}},
            "attachments":[{{"filename":"a.pdf","content_type":"application/pdf","content":"JVBERi0x\nLjQ="}},
                           {{"filename":"logo.png","content_type":"image/png","content":"iVBORw==","content_id":"logo"}}],
            "metadata":{{"order":"42"}},"tags":["receipt","receipt","eu"],"send_at":{in_an_hour}}}]}}"#
        );
        let message = parse(body.as_bytes()).expect("valid").remove(0);
        assert_eq!(message.subject, "Order 42");
        assert_eq!(
            message.html.as_deref(),
            Some("<p>Hi &lt;Ann&gt; <img src=\"cid:logo\"></p>")
        );
        assert_eq!(message.attachments[0].content, b"%PDF-1.4");
        assert_eq!(message.attachments[0].content_id, None);
        assert_eq!(message.attachments[1].content_id.as_deref(), Some("logo"));
        assert_eq!(message.metadata, [("order".to_string(), "42".to_string())]);
        assert_eq!(message.tags, ["receipt", "eu"]);
        assert_eq!(message.send_at_ms, Some(in_an_hour * 1000));
    }

    #[test]
    fn bad_attachments_templates_and_schedules_name_their_fields() {
        let body = r#"{"messages":[{"from":"a@acme.test","to":["b@x.test"],
            "subject":"{{ subject }}","text":"{{ missing }}","variables":{"subject":"Hi\r\nBcc: x@evil.test"},
            "attachments":[{"filename":"a","content":"not base64!"},{"content":"AA==","content_type":"bad"}],
            "metadata":{"n":1},"tags":[""],"send_at":"2126-01-01T00:00:00Z"}]}"#;
        let mut got = fields(body);
        got.sort();
        assert_eq!(
            got,
            [
                "messages[0].attachments[0].content",
                "messages[0].attachments[1].content_type",
                "messages[0].attachments[1].filename",
                "messages[0].metadata.n",
                "messages[0].send_at",
                "messages[0].subject",
                "messages[0].tags[0]",
                "messages[0].text",
            ]
        );
    }

    #[test]
    fn size_and_count_limits_hold() {
        let message = |extra: &str| {
            format!(
                r#"{{"messages":[{{"from":"a@acme.test","to":["b@x.test"],"text":"t"{extra}}}]}}"#
            )
        };
        let file = |bytes: usize| {
            use base64::Engine as _;
            let content = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; bytes]);
            format!(r#"{{"filename":"f","content":"{content}"}}"#)
        };
        let within = message(&format!(
            r#","attachments":[{}]"#,
            file(attachments::ATTACHMENT_BYTES_MAX)
        ));
        assert!(parse(within.as_bytes()).is_ok());
        let over = message(&format!(
            r#","attachments":[{},{}]"#,
            file(attachments::ATTACHMENT_BYTES_MAX),
            file(1)
        ));
        assert_eq!(fields(&over), ["messages[0].attachments"]);
        let many: Vec<String> = (0..=attachments::ATTACHMENTS_MAX)
            .map(|_| file(1))
            .collect();
        let over = message(&format!(r#","attachments":[{}]"#, many.join(",")));
        assert_eq!(fields(&over), ["messages[0].attachments"]);
        let huge_text = format!(
            r#"{{"messages":[{{"from":"a@acme.test","to":["b@x.test"],"text":"{}","html":"{}"}}]}}"#,
            "x".repeat(MESSAGE_BYTES_MAX / 2),
            "y".repeat(MESSAGE_BYTES_MAX / 2 + 1)
        );
        assert_eq!(fields(&huge_text), ["messages[0].text"]);
        let tags: Vec<String> = (0..=crate::attributes::TAGS_MAX)
            .map(|i| format!("\"t{i}\""))
            .collect();
        assert_eq!(
            fields(&message(&format!(r#","tags":[{}]"#, tags.join(",")))),
            ["messages[0].tags"]
        );
        let keys: Vec<String> = (0..=crate::attributes::METADATA_KEYS_MAX)
            .map(|i| format!("\"k{i}\":\"v\""))
            .collect();
        assert_eq!(
            fields(&message(&format!(r#","metadata":{{{}}}"#, keys.join(",")))),
            ["messages[0].metadata"]
        );
        let big_value = format!(
            r#","metadata":{{"k":"{}"}}"#,
            "v".repeat(crate::attributes::METADATA_BYTES_MAX)
        );
        assert_eq!(fields(&message(&big_value)), ["messages[0].metadata"]);
    }
}
