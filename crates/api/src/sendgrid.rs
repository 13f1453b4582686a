//! SendGrid v3 compatible `POST /v3/mail/send`: each personalization becomes one message
//! (its recipients, subject and headers over the request's), `content` gives the text and
//! HTML bodies, legacy `substitutions` are applied. The reply is SendGrid's: 202 with an
//! empty body and `X-Message-Id`, or 200 in sandbox mode (checked, not sent); errors are
//! `{"errors":[{"message","field","help"}]}`. Attachments, `custom_args` (metadata),
//! `categories` (tags) and `send_at` are honoured, a personalization's own over the
//! request's. What tsubame does not do (stored templates, unsubscribe groups, batches) is
//! refused by name rather than silently dropped.

use serde_json::{Map, Value};

use crate::attachments::Names;
use crate::error::FieldError;
use crate::native::{Check, Message};

/// SendGrid's attachment fields.
const ATTACHMENT_NAMES: Names = Names {
    filename: "filename",
    content_type: "type",
    content: "content",
    content_id: "content_id",
    disposition: Some("disposition"),
};

/// Personalizations per request (SendGrid's limit).
pub const PERSONALIZATIONS_MAX: usize = 1000;

/// A checked request: its messages and whether it is a sandbox run.
#[derive(Debug)]
pub struct Request {
    pub messages: Vec<Message>,
    pub sandbox: bool,
}

/// Fields accepted at the top level; the ones tsubame cannot honour yet are refused.
const UNSUPPORTED: &[&str] = &["template_id", "batch_id", "asm"];
const IGNORED: &[&str] = &["ip_pool_name", "tracking_settings", "reply_to_list"];

fn object<'a>(
    check: &mut Check,
    field: &str,
    value: Option<&'a Value>,
) -> Option<&'a Map<String, Value>> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => {
            check.fail(field.to_string(), "must be an object");
            None
        }
    }
}

fn substitute(text: &str, substitutions: &[(String, String)]) -> String {
    substitutions
        .iter()
        .fold(text.to_string(), |acc, (from, to)| {
            acc.replace(from.as_str(), to)
        })
}

/// Checks a SendGrid request body.
pub fn parse(body: &[u8]) -> Result<Request, Vec<FieldError>> {
    let value: Value = serde_json::from_slice(body).map_err(|err| {
        vec![FieldError::general(format!(
            "Bad Request: invalid JSON ({err})"
        ))]
    })?;
    let Some(root) = value.as_object() else {
        return Err(vec![FieldError::general(
            "the request body must be a JSON object",
        )]);
    };
    let mut check = Check { errors: Vec::new() };
    for name in UNSUPPORTED {
        if root.get(*name).is_some_and(|v| !v.is_null()) {
            check.fail(name.to_string(), "is not supported by this server yet");
        }
    }
    for key in root.keys() {
        let known = [
            "personalizations",
            "from",
            "reply_to",
            "subject",
            "content",
            "headers",
            "mail_settings",
            "attachments",
            "custom_args",
            "categories",
            "send_at",
        ];
        if !known.contains(&key.as_str())
            && !UNSUPPORTED.contains(&key.as_str())
            && !IGNORED.contains(&key.as_str())
        {
            check.fail(key.clone(), "is not a known field");
        }
    }
    let from = match root.get("from") {
        Some(v) => check.mailbox("from", v),
        None => {
            check.fail(
                "from".into(),
                "The from object must have an 'email' parameter",
            );
            None
        }
    };
    let reply_to = match root.get("reply_to") {
        None | Some(Value::Null) => None,
        Some(v) => check.mailbox("reply_to", v),
    };
    let subject = match root.get("subject") {
        None | Some(Value::Null) => None,
        Some(v) => check.line("subject", v),
    };
    let headers = check.headers("headers", root.get("headers"));
    let attachments: std::sync::Arc<[crate::attachments::Attachment]> = check
        .attachments(
            "attachments",
            root.get("attachments"),
            &ATTACHMENT_NAMES,
            false,
        )
        .into();
    let custom_args = check.metadata("custom_args", root.get("custom_args"));
    let tags = check.tags("categories", root.get("categories"));
    let send_at_ms = check.send_at("send_at", root.get("send_at"));
    let (mut text, mut html) = (None, None);
    match root.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::Array(parts)) => {
            for (i, part) in parts.iter().enumerate() {
                let field = format!("content[{i}]");
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                let body = check.body(&format!("{field}.value"), part.get("value"));
                match kind {
                    "text/plain" => text = body,
                    "text/html" => html = body,
                    _ => check.fail(
                        format!("{field}.type"),
                        "only text/plain and text/html are supported",
                    ),
                }
            }
        }
        Some(_) => check.fail("content".into(), "must be an array of {type, value}"),
    }
    let sandbox = object(&mut check, "mail_settings", root.get("mail_settings"))
        .and_then(|m| m.get("sandbox_mode"))
        .and_then(|s| s.get("enable"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let personalizations = match root.get("personalizations") {
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= PERSONALIZATIONS_MAX => {
            items.as_slice()
        }
        _ => {
            return Err(vec![FieldError::at(
                "personalizations",
                format!("must be an array of 1 to {PERSONALIZATIONS_MAX} personalizations"),
            )]);
        }
    };
    let mut messages = Vec::new();
    for (i, p) in personalizations.iter().enumerate() {
        let field = format!("personalizations[{i}]");
        let Some(p) = object(&mut check, &field, Some(p)) else {
            continue;
        };
        if p.get("dynamic_template_data").is_some_and(|v| !v.is_null()) {
            check.fail(
                format!("{field}.dynamic_template_data"),
                "is not supported by this server yet",
            );
        }
        let mut metadata = custom_args.clone();
        for (key, value) in check.metadata(&format!("{field}.custom_args"), p.get("custom_args")) {
            metadata.retain(|(k, _)| *k != key);
            metadata.push((key, value));
        }
        let own_send_at = match p.get("send_at") {
            None | Some(Value::Null) => None,
            v => check.send_at(&format!("{field}.send_at"), v),
        };
        if p.get("to").is_none() {
            check.fail(format!("{field}.to"), "is required");
        }
        let to = check.mailboxes(&format!("{field}.to"), p.get("to"));
        let cc = check.mailboxes(&format!("{field}.cc"), p.get("cc"));
        let bcc = check.mailboxes(&format!("{field}.bcc"), p.get("bcc"));
        let own_from = match p.get("from") {
            None | Some(Value::Null) => None,
            Some(v) => check.mailbox(&format!("{field}.from"), v),
        };
        let own_subject = match p.get("subject") {
            None | Some(Value::Null) => None,
            Some(v) => check.line(&format!("{field}.subject"), v),
        };
        let mut own_headers = headers.clone();
        for (name, value) in check.headers(&format!("{field}.headers"), p.get("headers")) {
            own_headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
            own_headers.push((name, value));
        }
        let substitutions: Vec<(String, String)> = object(
            &mut check,
            &format!("{field}.substitutions"),
            p.get("substitutions"),
        )
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
        let Some(from) = own_from.or_else(|| from.clone()) else {
            continue;
        };
        let subject = own_subject.or_else(|| subject.clone());
        if subject.is_none() {
            check.fail(
                format!("{field}.subject"),
                "a subject is required (here or at the top level)",
            );
            continue;
        }
        let message = Message {
            from,
            to,
            cc,
            bcc,
            reply_to: reply_to.clone(),
            subject: substitute(&subject.unwrap_or_default(), &substitutions),
            text: text.as_deref().map(|t| substitute(t, &substitutions)),
            html: html.as_deref().map(|t| substitute(t, &substitutions)),
            headers: own_headers,
            attachments: attachments.clone(),
            custom_id: None,
            metadata,
            tags: tags.clone(),
            event_payload: None,
            send_at_ms: own_send_at.or(send_at_ms),
        };
        if check
            .limits(&format!("{field}.to"), "content", "attachments", &message)
            .is_some()
        {
            messages.push(message);
        }
    }
    if text.is_none()
        && html.is_none()
        && !check
            .errors
            .iter()
            .any(|e| e.field.as_deref() == Some("content"))
    {
        check.fail(
            "content".into(),
            "content with text/plain or text/html is required",
        );
    }
    if check.errors.is_empty() {
        Ok(Request { messages, sandbox })
    } else {
        Err(check.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personalizations_become_messages_with_their_overrides() {
        let body = r#"{"personalizations":[
            {"to":[{"email":"ann@x.test","name":"Ann"}],"substitutions":{"-name-":"Ann"}},
            {"to":[{"email":"bob@x.test"}],"bcc":[{"email":"audit@x.test"}],"subject":"For Bob","headers":{"X-A":"2"}}],
            "from":{"email":"news@acme.test"},"subject":"Hello -name-","headers":{"X-A":"1"},
            "content":[{"type":"text/plain","value":"Hi -name-"},{"type":"text/html","value":"<p>Hi -name-</p>"}],
            "categories":["welcome"],"custom_args":{"k":"v"}}"#;
        let request = parse(body.as_bytes()).expect("valid");
        assert!(!request.sandbox);
        let [ann, bob] = request.messages.as_slice() else {
            panic!("two messages")
        };
        assert_eq!(ann.subject, "Hello Ann");
        assert_eq!(ann.text.as_deref(), Some("Hi Ann"));
        assert_eq!(bob.subject, "For Bob");
        assert_eq!(bob.recipients(), ["bob@x.test", "audit@x.test"]);
        assert_eq!(bob.headers, [("X-A".to_string(), "2".to_string())]);
    }

    #[test]
    fn unsupported_and_invalid_fields_are_named() {
        let body = r#"{"personalizations":[{"to":[{"email":"not-an-address"}]}],
            "from":{"email":"a@acme.test"},"subject":"s","template_id":"d-1",
            "content":[{"type":"text/plain","value":"x"}]}"#;
        let fields: Vec<String> = parse(body.as_bytes())
            .expect_err("refused")
            .into_iter()
            .filter_map(|e| e.field)
            .collect();
        assert!(fields.contains(&"template_id".to_string()), "{fields:?}");
        assert!(
            fields.contains(&"personalizations[0].to[0].email".to_string()),
            "{fields:?}"
        );
        let no_from = r#"{"personalizations":[{"to":[{"email":"b@x.test"}]}],"subject":"s",
            "content":[{"type":"text/plain","value":"x"}]}"#;
        let errors = parse(no_from.as_bytes()).expect_err("refused");
        assert_eq!(errors[0].field.as_deref(), Some("from"));
    }

    #[test]
    fn sandbox_mode_is_read() {
        let body = r#"{"personalizations":[{"to":[{"email":"b@x.test"}]}],"from":{"email":"a@acme.test"},
            "subject":"s","content":[{"type":"text/plain","value":"x"}],
            "mail_settings":{"sandbox_mode":{"enable":true}}}"#;
        assert!(parse(body.as_bytes()).expect("valid").sandbox);
    }
}
