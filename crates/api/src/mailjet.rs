//! Mailjet Send API v3.1 compatible `POST /v3.1/send`. Each entry of `Messages` is checked
//! on its own: the valid ones are sent, the others get Mailjet's per-message errors
//! (`send-00xx` / `mj-00xx` codes, the properties they relate to), and the HTTP status is
//! 400 when any message failed, as Mailjet answers a partly failed batch. `Globals` apply to
//! every message unless it sets the property itself; `SandboxMode` checks without sending
//! and answers with `MessageID` 0 and an empty `MessageUUID`. Authentication is Mailjet's
//! Basic scheme: the API key is `tsb_<id>`, the secret key the rest of the tsubame key.

use serde_json::{Map, Value};

use crate::attachments::Names;
use crate::error::FieldError;
use crate::native::{Check, Message};
use crate::stored_templates::{Resolved, Templates};
use crate::template::Part;

/// Messages per request.
pub const MESSAGES_MAX: usize = 50;

/// Properties of a message tsubame cannot honour yet: refused by name.
const UNSUPPORTED: &[&str] = &[];
/// Accepted and, for now, without effect (tracking and campaign statistics come later; a
/// template error always stops the message, as Mailjet's default `TemplateErrorDeliver`).
const IGNORED: &[&str] = &[
    "Sender",
    "TemplateErrorReporting",
    "TemplateErrorDeliver",
    "DeduplicateCampaign",
    "TrackOpens",
    "TrackClicks",
    "Priority",
    "MonitoringCategory",
    "URLTags",
];
const KNOWN: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Bcc",
    "ReplyTo",
    "Subject",
    "TextPart",
    "HTMLPart",
    "Headers",
    "CustomID",
    "EventPayload",
    "CustomCampaign",
    "Attachments",
    "InlinedAttachments",
    "TemplateLanguage",
    "Variables",
    "TemplateID",
];

/// Mailjet's attachment fields; inline ones carry a `ContentID`.
const ATTACHMENT_NAMES: Names = Names {
    filename: "Filename",
    content_type: "ContentType",
    content: "Base64Content",
    content_id: "ContentID",
    disposition: None,
};

/// One entry of `Messages`: checked, or refused with Mailjet errors.
#[derive(Debug)]
pub enum Entry {
    Valid(Box<Message>),
    Invalid(Vec<FieldError>),
}

/// A checked request.
#[derive(Debug)]
pub struct Request {
    pub entries: Vec<Entry>,
    /// Per entry, the stored template version it was made from.
    pub templates: Vec<Option<(String, i64)>>,
    pub sandbox: bool,
}

/// The `TemplateID`s a request names (in `Globals` and its messages), as text, for the
/// caller to look up before [`parse`].
pub fn template_ids(body: &[u8]) -> Vec<String> {
    if !crate::stored_templates::mentions(body, "\"TemplateID\"") {
        return Vec::new();
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = std::iter::once(value.get("Globals"))
        .chain(
            value
                .get("Messages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(Some),
        )
        .flatten()
        .filter_map(|m| template_key(m.get("TemplateID")?))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// A `TemplateID` as a number's text: Mailjet clients send a number, some a string of digits.
fn template_key(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        Value::String(s)
            if !s.is_empty() && s.len() < 19 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(s.clone())
        }
        _ => None,
    }
}

/// Mailjet's error code for one of our checks, from the check's (fixed) wording.
pub fn error_code(error: &FieldError) -> &'static str {
    let m = error.message.as_str();
    if m.contains("text or html body") {
        "send-0003"
    } else if m.contains("is given by the template") {
        "send-0004"
    } else if m.contains("not a template of this account") {
        "send-0010"
    } else if m.contains("sending domain") {
        "send-0008"
    } else if m.contains("is required") {
        "mj-0003"
    } else if m.starts_with("must be") && !m.contains("between") {
        "mj-0004"
    } else if m.contains("valid email") {
        "mj-0013"
    } else if m.contains("longer than") {
        "mj-0006"
    } else if m.contains("recipients; at most") || m.contains("at least one recipient") {
        "send-0015"
    } else if m.contains("is set by tsubame") || m.contains("receiving servers") {
        "send-0011"
    } else {
        "mj-0005"
    }
}

/// Merges `Globals` under a message: the message's own properties win; `Headers` merge.
fn with_globals(
    message: &Map<String, Value>,
    globals: Option<&Map<String, Value>>,
) -> Map<String, Value> {
    let mut merged = globals.cloned().unwrap_or_default();
    for (key, value) in message {
        match (key.as_str(), merged.get_mut(key), value) {
            ("Headers", Some(Value::Object(base)), Value::Object(own)) => {
                for (k, v) in own {
                    base.insert(k.clone(), v.clone());
                }
            }
            _ => {
                merged.insert(key.clone(), value.clone());
            }
        }
    }
    merged
}

fn entry(value: &Map<String, Value>, templates: &Templates) -> (Entry, Option<(String, i64)>) {
    let mut check = Check { errors: Vec::new() };
    for key in value.keys() {
        if UNSUPPORTED.contains(&key.as_str()) {
            check.fail(key.clone(), "is not supported by this server yet");
        } else if !KNOWN.contains(&key.as_str()) && !IGNORED.contains(&key.as_str()) {
            check.fail(key.clone(), "is not a known property");
        }
    }
    let from = match value.get("From") {
        Some(v) => check.mailbox("From", v),
        None => {
            check.fail("From".into(), "is required");
            None
        }
    };
    let to = check.mailboxes("To", value.get("To"));
    let cc = check.mailboxes("Cc", value.get("Cc"));
    let bcc = check.mailboxes("Bcc", value.get("Bcc"));
    for (name, list) in [("To", &to), ("Cc", &cc), ("Bcc", &bcc)] {
        if list.len() > 50 {
            check.fail(
                name.into(),
                format!("{} recipients; at most 50", list.len()),
            );
        }
    }
    let reply_to = match value.get("ReplyTo") {
        None | Some(Value::Null) => None,
        Some(v) => check.mailbox("ReplyTo", v),
    };
    let subject = match value.get("Subject") {
        None | Some(Value::Null) => String::new(),
        Some(v) => check.line("Subject", v).unwrap_or_default(),
    };
    if subject.chars().count() > 255 {
        check.fail("Subject".into(), "longer than 255 characters");
    }
    let mut text = check.body("TextPart", value.get("TextPart"));
    let mut html = check.body("HTMLPart", value.get("HTMLPart"));
    let mut subject = subject;
    let headers = check.headers("Headers", value.get("Headers"));
    let custom_id = match value.get("CustomID") {
        None | Some(Value::Null) => None,
        Some(v) => check.line("CustomID", v),
    };
    let event_payload = match value.get("EventPayload") {
        None | Some(Value::Null) => None,
        Some(Value::String(payload)) if payload.len() <= 4096 => Some(payload.clone()),
        Some(Value::String(_)) => {
            check.fail("EventPayload".into(), "longer than 4096 bytes");
            None
        }
        Some(_) => {
            check.fail("EventPayload".into(), "must be a string");
            None
        }
    };
    let tags = check.tags("CustomCampaign", value.get("CustomCampaign"));
    let mut attachments = check.attachments(
        "Attachments",
        value.get("Attachments"),
        &ATTACHMENT_NAMES,
        false,
    );
    attachments.extend(check.attachments(
        "InlinedAttachments",
        value.get("InlinedAttachments"),
        &ATTACHMENT_NAMES,
        true,
    ));
    let templated = match value.get("TemplateLanguage") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(on)) => *on,
        Some(_) => {
            check.fail("TemplateLanguage".into(), "must be a boolean");
            false
        }
    };
    let variables = match value.get("Variables") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            check.fail("Variables".into(), "must be an object");
            Value::Object(Map::new())
        }
    };
    if templated {
        // Mailjet's `{{var:name}}` reads Variables.name.
        let context = serde_json::json!({ "var": variables });
        subject = crate::template::from_mailjet(&subject);
        text = text.map(|t| crate::template::from_mailjet(&t));
        html = html.map(|t| crate::template::from_mailjet(&t));
        let fields = ["Subject", "TextPart", "HTMLPart"].map(String::from);
        check.render_parts(&fields, &context, &mut subject, &mut text, &mut html);
    }
    let mut used = None;
    match value.get("TemplateID") {
        None | Some(Value::Null) => {}
        Some(id) => match template_key(id).and_then(|key| templates.get(&key)) {
            None if template_key(id).is_none() => {
                check.fail("TemplateID".into(), "must be a number")
            }
            None => check.fail("TemplateID".into(), "is not a template of this account"),
            Some(stored) => {
                let parts = fill_from_template(
                    &mut check,
                    stored,
                    templated.then_some(&variables),
                    (&mut subject, &mut text, &mut html),
                );
                if parts.is_some() {
                    used = Some((stored.template_id.clone(), stored.version));
                }
            }
        },
    }
    if !check.errors.is_empty() {
        return (Entry::Invalid(check.errors), None);
    }
    let Some(from) = from else {
        return (Entry::Invalid(check.errors), None);
    };
    let message = Message {
        from,
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
        metadata: Vec::new(),
        tags,
        event_payload,
        send_at_ms: None,
    };
    // Mailjet sends no text part of its own for HTML-only mail; tsubame adds one (native
    // behaviour), which only improves how the message is received.
    match check.limits("To", "TextPart", "Attachments", &message) {
        Some(()) => (Entry::Valid(Box::new(message)), used),
        None => (Entry::Invalid(check.errors), None),
    }
}

/// A message's parts from a stored template: the message's own Subject wins (as Mailjet's
/// does); an HTML or text part both in the message and in the template is refused
/// (send-0004). With `variables` (TemplateLanguage on) the template's parts are rendered
/// in its dialect; without, they are sent as they are.
fn fill_from_template(
    check: &mut Check,
    stored: &Resolved,
    variables: Option<&Value>,
    (subject, text, html): (&mut String, &mut Option<String>, &mut Option<String>),
) -> Option<()> {
    let content = &stored.content;
    if html.is_some() && content.html.is_some() {
        check.fail("HTMLPart".into(), "is given by the template");
    }
    if text.is_some() && content.text.is_some() {
        check.fail("TextPart".into(), "is given by the template");
    }
    let mut failed = false;
    let mut render = |source: &str, part: Part, field: &str| -> Option<String> {
        let Some(data) = variables else {
            return Some(source.to_string());
        };
        match templates::render(stored.dialect, source, data, part) {
            Ok(out) => Some(out),
            Err(err) => {
                check.fail(field.into(), format!("the template does not render: {err}"));
                failed = true;
                None
            }
        }
    };
    if subject.is_empty() {
        *subject = render(&content.subject, Part::Subject, "Subject").unwrap_or_default();
    }
    if text.is_none() {
        *text = content
            .text
            .as_deref()
            .and_then(|t| render(t, Part::Text, "TextPart"));
    }
    if html.is_none() {
        *html = content
            .html
            .as_deref()
            .and_then(|t| render(t, Part::Html, "HTMLPart"));
    }
    (!failed).then_some(())
}

/// Checks a Mailjet request; `templates` holds the stored templates its `TemplateID`s name
/// (see [`template_ids`]). `Err` is a global error: nothing in it can be processed.
pub fn parse(body: &[u8], templates: &Templates) -> Result<Request, FieldError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        FieldError::general("Malformed JSON, please review the syntax and properties types.")
    })?;
    let Some(root) = value.as_object() else {
        return Err(FieldError::general(
            "the request body must be a JSON object",
        ));
    };
    let sandbox = match root.get("SandboxMode") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(on)) => *on,
        Some(_) => return Err(FieldError::at("SandboxMode", "must be a boolean")),
    };
    let globals = match root.get("Globals") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => return Err(FieldError::at("Globals", "must be an object")),
    };
    let messages = match root.get("Messages") {
        None | Some(Value::Null) => return Err(FieldError::at("Messages", "is required")),
        Some(Value::Array(messages)) => messages,
        Some(_) => return Err(FieldError::at("Messages", "must be an array")),
    };
    if messages.is_empty() || messages.len() > MESSAGES_MAX {
        return Err(FieldError::at(
            "Messages",
            format!("must hold 1 to {MESSAGES_MAX} messages"),
        ));
    }
    let (entries, templates) = messages
        .iter()
        .map(|m| match m.as_object() {
            Some(map) => entry(&with_globals(map, globals), templates),
            None => (
                Entry::Invalid(vec![FieldError::at("Messages", "must be an object")]),
                None,
            ),
        })
        .unzip();
    Ok(Request {
        entries,
        templates,
        sandbox,
    })
}

/// A Mailjet-style 63-bit message number for a recipient of a spooled message: its
/// milliseconds since 2020, low bits of its counter, the recipient's position. It names the
/// recipient in responses; the queue's own id is `MessageUUID`.
pub fn message_number(id: spool::MessageId, recipient: usize) -> u64 {
    const EPOCH_2020_MS: u64 = 1_577_836_800_000;
    let ms = id.timestamp_ms().saturating_sub(EPOCH_2020_MS) & ((1 << 41) - 1);
    let counter = (id.0 & 0xFFFF) as u64;
    (ms << 22) | (counter << 6) | (recipient as u64 & 0x3F)
}

/// The 128-bit id in UUID form.
pub fn uuid(id: spool::MessageId) -> String {
    let h = format!("{:032x}", id.0);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A random identifier for an error, as Mailjet gives every error one.
pub fn error_identifier() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    uuid(spool::MessageId(u128::from_be_bytes(bytes)))
}

/// The answer for a request nothing of which could be processed.
pub fn global_error(status: u16, code: &str, message: &str) -> Value {
    serde_json::json!({
        "ErrorIdentifier": error_identifier(),
        "ErrorCode": code,
        "ErrorMessage": message,
        "StatusCode": status,
    })
}

/// The answer for a request refused as a whole because of one property: the message names
/// it, as the per-message errors do, and `ErrorRelatedTo` lists it.
pub fn global_field_error(status: u16, code: &str, error: &FieldError) -> Value {
    let mut value = global_error(status, code, &error.message);
    if let Some(field) = &error.field {
        value["ErrorMessage"] = format!("\"{field}\" {}", error.message).into();
        value["ErrorRelatedTo"] = serde_json::json!([field]);
    }
    value
}

/// The response entry of a refused message.
pub fn error_entry(errors: &[FieldError]) -> Value {
    let errors: Vec<Value> = errors
        .iter()
        .map(|e| {
            serde_json::json!({
                "ErrorIdentifier": error_identifier(),
                "ErrorCode": error_code(e),
                "StatusCode": if error_code(e) == "send-0008" { 403 } else { 400 },
                "ErrorMessage": match &e.field {
                    Some(field) => format!("\"{field}\" {}", e.message),
                    None => e.message.clone(),
                },
                "ErrorRelatedTo": e.field.iter().collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({ "Errors": errors, "Status": "error" })
}

/// The response entry of a message sent (`id`) or checked in sandbox mode (`None`).
pub fn success_entry(message: &Message, id: Option<spool::MessageId>, href_base: &str) -> Value {
    let recipients: Vec<String> = message
        .recipients()
        .iter()
        .map(|r| r.to_ascii_lowercase())
        .collect();
    let list = |mailboxes: &[crate::native::Mailbox]| -> Vec<Value> {
        mailboxes
            .iter()
            .map(|m| {
                let index = recipients
                    .iter()
                    .position(|r| *r == m.email.to_ascii_lowercase())
                    .unwrap_or(0);
                let (uuid_text, number) = match id {
                    Some(id) => (uuid(id), message_number(id, index)),
                    None => (String::new(), 0),
                };
                serde_json::json!({
                    "Email": m.email,
                    "MessageUUID": uuid_text,
                    "MessageID": number,
                    "MessageHref": format!("{href_base}/v3/REST/message/{number}"),
                })
            })
            .collect()
    };
    serde_json::json!({
        "Status": "success",
        "CustomID": message.custom_id.clone().unwrap_or_default(),
        "To": list(&message.to),
        "Cc": list(&message.cc),
        "Bcc": list(&message.bcc),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_is_judged_alone_and_globals_fill_in() {
        let body = r#"{"Globals":{"From":{"Email":"news@acme.test","Name":"Acme"},"Headers":{"X-A":"g"}},
            "Messages":[
              {"To":[{"Email":"ann@x.test","Name":"Ann"}],"Subject":"Hi","TextPart":"t","Headers":{"X-B":"m"},"CustomID":"c1"},
              {"To":[{"Email":"bob@x.test"}],"Subject":"Hi"},
              {"To":[{"Email":"broken"}],"TextPart":"t","TemplateID":5}]}"#;
        let request = parse(body.as_bytes(), &Templates::new()).expect("parsed");
        let Entry::Valid(ann) = &request.entries[0] else {
            panic!("first is valid")
        };
        assert_eq!(ann.from.email, "news@acme.test");
        assert_eq!(ann.headers.len(), 2);
        assert_eq!(ann.custom_id.as_deref(), Some("c1"));
        let Entry::Invalid(errors) = &request.entries[1] else {
            panic!("no body")
        };
        assert_eq!(error_code(&errors[0]), "send-0003");
        assert_eq!(errors[0].field.as_deref(), Some("TextPart"));
        let Entry::Invalid(errors) = &request.entries[2] else {
            panic!("broken")
        };
        let codes: Vec<_> = errors.iter().map(error_code).collect();
        assert!(
            codes.contains(&"mj-0013") && codes.contains(&"send-0010"),
            "{codes:?}"
        );
    }

    #[test]
    fn malformed_json_is_a_global_error() {
        assert!(parse(b"{", &Templates::new()).is_err());
        assert!(parse(br#"{"Messages":[]}"#, &Templates::new()).is_err());
    }

    /// A top-level property of the wrong type is named with what it must be, not reported
    /// as missing, and the whole-request answer carries the name.
    #[test]
    fn wrong_types_at_the_top_level_name_the_property() {
        for (body, field, message) in [
            (r#"{"Messages":{"To":[]}}"#, "Messages", "must be an array"),
            (r#"{"Messages":"x"}"#, "Messages", "must be an array"),
            (r#"{}"#, "Messages", "is required"),
            (
                r#"{"Messages":[{}],"Globals":[]}"#,
                "Globals",
                "must be an object",
            ),
            (
                r#"{"Messages":[{}],"SandboxMode":"yes"}"#,
                "SandboxMode",
                "must be a boolean",
            ),
        ] {
            let error = parse(body.as_bytes(), &Templates::new()).expect_err(body);
            assert_eq!(error.field.as_deref(), Some(field), "{body}");
            assert_eq!(error.message, message, "{body}");
            let answer = global_field_error(400, "mj-0003", &error);
            assert_eq!(answer["ErrorMessage"], format!("\"{field}\" {message}"));
            assert_eq!(answer["ErrorRelatedTo"][0], field);
        }
    }

    #[test]
    fn numbers_and_uuids_have_their_shapes() {
        let id = spool::IdGenerator::new(None).next();
        assert!(message_number(id, 3) < 1 << 63);
        assert_eq!(message_number(id, 3) & 0x3F, 3);
        let uuid = uuid(id);
        assert_eq!(uuid.len(), 36);
        assert_eq!(uuid.matches('-').count(), 4);
    }

    /// A stored template fills the parts a message leaves out; with TemplateLanguage its
    /// parts are rendered with Variables, without it they go as they are; the message's own
    /// Subject wins; HTMLPart beside a template with HTML is send-0004.
    #[test]
    fn stored_templates_fill_messages() {
        let mut templates = Templates::new();
        templates.insert(
            "12".into(),
            Resolved {
                template_id: "tp_12".into(),
                version: 1,
                dialect: store::Dialect::Mailjet,
                content: store::VersionContent {
                    subject: "Hello {{var:name}}".into(),
                    html: Some("<b>{{var:name}}</b>".into()),
                    text: Some("Hi {{var:name}}".into()),
                    test_data: "{}".into(),
                },
            },
        );
        let body = r#"{"Messages":[
            {"From":{"Email":"a@acme.test"},"To":[{"Email":"b@x.test"}],"TemplateID":12,"TemplateLanguage":true,"Variables":{"name":"Ann"}},
            {"From":{"Email":"a@acme.test"},"To":[{"Email":"b@x.test"}],"TemplateID":"12","Subject":"Own"},
            {"From":{"Email":"a@acme.test"},"To":[{"Email":"b@x.test"}],"TemplateID":12,"HTMLPart":"<p>x</p>"},
            {"From":{"Email":"a@acme.test"},"To":[{"Email":"b@x.test"}],"TemplateID":13}]}"#;
        assert_eq!(template_ids(body.as_bytes()), vec!["12", "13"]);
        let request = parse(body.as_bytes(), &templates).expect("parsed");
        let Entry::Valid(first) = &request.entries[0] else {
            panic!("first is valid: {:?}", request.entries[0])
        };
        assert_eq!(first.subject, "Hello Ann");
        assert_eq!(first.html.as_deref(), Some("<b>Ann</b>"));
        assert_eq!(request.templates[0], Some(("tp_12".into(), 1)));
        let Entry::Valid(second) = &request.entries[1] else {
            panic!("second is valid")
        };
        assert_eq!(second.subject, "Own");
        assert_eq!(second.text.as_deref(), Some("Hi {{var:name}}"));
        let Entry::Invalid(errors) = &request.entries[2] else {
            panic!("third is refused")
        };
        assert_eq!(error_code(&errors[0]), "send-0004");
        let Entry::Invalid(errors) = &request.entries[3] else {
            panic!("fourth is refused")
        };
        assert_eq!(error_code(&errors[0]), "send-0010");
        assert_eq!(request.templates[3], None);
    }
}
