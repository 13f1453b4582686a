//! SendGrid v3 compatible `POST /v3/mail/send`: each personalization becomes one message
//! (its recipients, subject and headers over the request's), `content` gives the text and
//! HTML bodies, legacy `substitutions` are applied. The reply is SendGrid's: 202 with an
//! empty body and `X-Message-Id`, or 200 in sandbox mode (checked, not sent); errors are
//! `{"errors":[{"message","field","help"}]}`. Attachments, `custom_args` (metadata),
//! `categories` (tags) and `send_at` are honoured, a personalization's own over the
//! request's. A dynamic template (`template_id` `d-...`, a stored template of the tenant)
//! gives the subject and bodies, rendered per personalization with its
//! `dynamic_template_data`. What tsubame does not do (unsubscribe groups, batches) is
//! refused by name rather than silently dropped.

use serde_json::{Map, Value};

use crate::attachments::Names;
use crate::error::FieldError;
use crate::native::{Check, Message};
use crate::stored_templates::{Resolved, Templates};
use crate::template::Part;

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
    /// The stored template version the messages were made from.
    pub template: Option<(String, i64)>,
}

/// Fields accepted at the top level; the ones tsubame cannot honour yet are refused.
const UNSUPPORTED: &[&str] = &["batch_id", "asm"];
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

/// One part of a dynamic template rendered with a personalization's data.
fn render_template_part(
    check: &mut Check,
    template: &Resolved,
    source: &str,
    data: &Value,
    part: Part,
    field: &str,
) -> Option<String> {
    match templates::render(template.dialect, source, data, part) {
        Ok(out) => Some(out),
        Err(err) => {
            check.fail(
                field.to_string(),
                format!("the template does not render with this data: {err}"),
            );
            None
        }
    }
}

/// Checks a SendGrid request body; `templates` holds the dynamic template its
/// `template_id` names, when it is the tenant's.
pub fn parse(body: &[u8], templates: &Templates) -> Result<Request, Vec<FieldError>> {
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
            "template_id",
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
    let template = match root.get("template_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => {
            match templates.get(id) {
                Some(found) => Some(found),
                None => {
                    check.fail(
                    "template_id".into(),
                    format!("{id:?} is not a dynamic template of this account with an active version"),
                );
                    None
                }
            }
        }
        Some(_) => {
            check.fail("template_id".into(), "must be a string");
            None
        }
    };
    if let Some(template) = template {
        for (given, has, kind) in [
            (&text, &template.content.text, "text/plain"),
            (&html, &template.content.html, "text/html"),
        ] {
            if given.is_some() && has.is_some() {
                check.fail("content".into(), format!("{kind} is given by the template"));
            }
        }
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
        let data_field = format!("{field}.dynamic_template_data");
        let data = match p.get("dynamic_template_data") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(_) if template.is_none() => {
                check.fail(data_field.clone(), "needs a template_id");
                Value::Object(Map::new())
            }
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => {
                check.fail(data_field.clone(), "must be an object");
                Value::Object(Map::new())
            }
        };
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
        let (subject, text, html) = match template {
            // A dynamic template's subject wins, as SendGrid's does; its data can carry one.
            Some(template) => {
                let content = &template.content;
                let mut render = |source: &str, part: Part| {
                    render_template_part(&mut check, template, source, &data, part, &data_field)
                };
                let Some(subject) = render(&content.subject, Part::Subject) else {
                    continue;
                };
                let own_text = match &content.text {
                    Some(source) => render(source, Part::Text),
                    None => text.clone(),
                };
                let own_html = match &content.html {
                    Some(source) => render(source, Part::Html),
                    None => html.clone(),
                };
                (subject, own_text, own_html)
            }
            None => {
                let Some(subject) = own_subject.or_else(|| subject.clone()) else {
                    check.fail(
                        format!("{field}.subject"),
                        "a subject is required (here or at the top level)",
                    );
                    continue;
                };
                (
                    substitute(&subject, &substitutions),
                    text.as_deref().map(|t| substitute(t, &substitutions)),
                    html.as_deref().map(|t| substitute(t, &substitutions)),
                )
            }
        };
        let message = Message {
            from,
            to,
            cc,
            bcc,
            reply_to: reply_to.clone(),
            subject,
            text,
            html,
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
        && template.is_none()
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
        Ok(Request {
            messages,
            sandbox,
            template: template.map(|t| (t.template_id.clone(), t.version)),
        })
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
        let request = parse(body.as_bytes(), &Templates::new()).expect("valid");
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
        let fields: Vec<String> = parse(body.as_bytes(), &Templates::new())
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
        let errors = parse(no_from.as_bytes(), &Templates::new()).expect_err("refused");
        assert_eq!(errors[0].field.as_deref(), Some("from"));
    }

    #[test]
    fn sandbox_mode_is_read() {
        let body = r#"{"personalizations":[{"to":[{"email":"b@x.test"}]}],"from":{"email":"a@acme.test"},
            "subject":"s","content":[{"type":"text/plain","value":"x"}],
            "mail_settings":{"sandbox_mode":{"enable":true}}}"#;
        assert!(
            parse(body.as_bytes(), &Templates::new())
                .expect("valid")
                .sandbox
        );
    }

    /// A dynamic template gives subject and bodies, rendered per personalization; content
    /// the template has too is refused, and an unknown template is named.
    #[test]
    fn dynamic_templates_render_per_personalization() {
        let mut templates = Templates::new();
        templates.insert(
            "d-00ff".into(),
            Resolved {
                template_id: "tp_00ff".into(),
                version: 2,
                dialect: store::Dialect::Handlebars,
                content: store::VersionContent {
                    subject: "Order {{order.id}}".into(),
                    html: Some("<p>{{#each items}}{{this}};{{/each}}</p>".into()),
                    text: None,
                    test_data: "{}".into(),
                },
            },
        );
        let body = r#"{"personalizations":[
            {"to":[{"email":"ann@x.test"}],"dynamic_template_data":{"order":{"id":7},"items":["a<b","c"]}},
            {"to":[{"email":"bob@x.test"}],"dynamic_template_data":{"order":{"id":8},"items":[]}}],
            "from":{"email":"shop@acme.test"},"template_id":"d-00ff"}"#;
        let request = parse(body.as_bytes(), &templates).expect("valid");
        assert_eq!(request.template, Some(("tp_00ff".into(), 2)));
        assert_eq!(request.messages[0].subject, "Order 7");
        assert_eq!(
            request.messages[0].html.as_deref(),
            Some("<p>a&lt;b;c;</p>")
        );
        assert_eq!(request.messages[1].subject, "Order 8");
        let with_html = body.replace(
            r#""template_id""#,
            r#""content":[{"type":"text/html","value":"x"}],"template_id""#,
        );
        let errors = parse(with_html.as_bytes(), &templates).expect_err("refused");
        assert!(
            errors
                .iter()
                .any(|e| e.message.contains("given by the template"))
        );
        let unknown = body.replace("d-00ff", "d-0abc");
        let errors = parse(unknown.as_bytes(), &templates).expect_err("refused");
        assert_eq!(errors[0].field.as_deref(), Some("template_id"));
    }
}
