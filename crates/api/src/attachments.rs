//! Attachments and inline images, sent as base64 in the request. Each API names the fields
//! its own way; the checks are the same: a file name, a media type, base64 content within
//! the size limits, and for inline parts a Content-ID that the HTML refers to as `cid:`.

use base64::Engine as _;
use serde_json::Value;

use crate::native::Check;

/// Attachments (inline ones included) per message.
pub const ATTACHMENTS_MAX: usize = 50;
/// Decoded attachment bytes per message, all attachments together.
pub const ATTACHMENT_BYTES_MAX: usize = 15 << 20;

/// A file to send with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    /// `type/subtype`, without parameters.
    pub content_type: String,
    pub content: Vec<u8>,
    /// Set for inline parts (images the HTML shows), without angle brackets.
    pub content_id: Option<String>,
}

/// How one API names an attachment's fields.
pub(crate) struct Names {
    pub filename: &'static str,
    pub content_type: &'static str,
    pub content: &'static str,
    pub content_id: &'static str,
    /// SendGrid's `disposition` ("attachment" or "inline"); other APIs have none.
    pub disposition: Option<&'static str>,
}

pub(crate) const NATIVE: Names = Names {
    filename: "filename",
    content_type: "content_type",
    content: "content",
    content_id: "content_id",
    disposition: None,
};

fn media_type_ok(text: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.len() <= 127
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    text.split_once('/')
        .is_some_and(|(kind, sub)| token(kind) && token(sub))
}

impl Check {
    /// Every attachment of a list; `inline`: the list is of inline parts (Mailjet keeps
    /// them apart), which must have a Content-ID.
    pub(crate) fn attachments(
        &mut self,
        field: &str,
        value: Option<&Value>,
        names: &Names,
        inline: bool,
    ) -> Vec<Attachment> {
        let items = match value {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.fail(field.to_string(), "must be an array of attachments");
                return Vec::new();
            }
        };
        if items.len() > ATTACHMENTS_MAX {
            self.fail(
                field.to_string(),
                format!("{} attachments; at most {ATTACHMENTS_MAX}", items.len()),
            );
            return Vec::new();
        }
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.attachment(&format!("{field}[{i}]"), item, names, inline))
            .collect()
    }

    fn attachment(
        &mut self,
        field: &str,
        value: &Value,
        names: &Names,
        inline: bool,
    ) -> Option<Attachment> {
        let Some(map) = value.as_object() else {
            self.fail(field.to_string(), "must be an object");
            return None;
        };
        let before = self.errors.len();
        let filename = match map.get(names.filename) {
            None | Some(Value::Null) => {
                self.fail(format!("{field}.{}", names.filename), "is required");
                None
            }
            Some(v) => self.line(&format!("{field}.{}", names.filename), v),
        };
        let content_type = match map.get(names.content_type) {
            None | Some(Value::Null) => Some("application/octet-stream".to_string()),
            Some(v) => {
                let path = format!("{field}.{}", names.content_type);
                let text = self.line(&path, v);
                match text {
                    Some(t) if media_type_ok(&t) => Some(t.to_ascii_lowercase()),
                    Some(_) => {
                        self.fail(path, "must be a media type such as image/png");
                        None
                    }
                    None => None,
                }
            }
        };
        let content = match map.get(names.content) {
            Some(Value::String(encoded)) => {
                // Line-wrapped base64 is common; the wrapping carries nothing.
                let compact: String = encoded
                    .chars()
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect();
                match base64::engine::general_purpose::STANDARD.decode(compact) {
                    Ok(bytes) => Some(bytes),
                    Err(_) => {
                        self.fail(format!("{field}.{}", names.content), "is not valid base64");
                        None
                    }
                }
            }
            None | Some(Value::Null) => {
                self.fail(format!("{field}.{}", names.content), "is required");
                None
            }
            Some(_) => {
                self.fail(
                    format!("{field}.{}", names.content),
                    "must be a base64 string",
                );
                None
            }
        };
        let disposition_inline = match names.disposition.map(|d| (d, map.get(d))) {
            None | Some((_, None | Some(Value::Null))) => false,
            Some((_, Some(Value::String(d)))) if d == "inline" => true,
            Some((_, Some(Value::String(d)))) if d == "attachment" => false,
            Some((name, Some(_))) => {
                self.fail(
                    format!("{field}.{name}"),
                    "must be \"attachment\" or \"inline\"",
                );
                false
            }
        };
        let content_id = match map.get(names.content_id) {
            None | Some(Value::Null) => None,
            Some(v) => {
                let path = format!("{field}.{}", names.content_id);
                match self.line(&path, v) {
                    Some(id)
                        if !id.is_empty()
                            && id.len() <= 255
                            && !id.contains(['<', '>', ' ', '"']) =>
                    {
                        Some(id)
                    }
                    Some(_) => {
                        self.fail(
                            path,
                            "must be 1-255 characters without <, >, quotes or spaces",
                        );
                        None
                    }
                    None => None,
                }
            }
        };
        if (inline || disposition_inline) && content_id.is_none() {
            self.fail(
                format!("{field}.{}", names.content_id),
                "is required for an inline attachment",
            );
        }
        if self.errors.len() > before {
            return None;
        }
        Some(Attachment {
            filename: filename?,
            content_type: content_type?,
            content: content?,
            // A Content-ID on a plain attachment is kept only for inline parts.
            content_id: content_id
                .filter(|_| inline || disposition_inline || names.disposition.is_none()),
        })
    }

    /// The size limit over a message's attachments, all lists together.
    pub(crate) fn attachment_size(&mut self, field: &str, attachments: &[Attachment]) {
        let total: usize = attachments.iter().map(|a| a.content.len()).sum();
        if total > ATTACHMENT_BYTES_MAX {
            self.fail(
                field.to_string(),
                format!("{total} bytes of attachments; at most {ATTACHMENT_BYTES_MAX} per message"),
            );
        }
        if attachments.len() > ATTACHMENTS_MAX {
            self.fail(
                field.to_string(),
                format!(
                    "{} attachments; at most {ATTACHMENTS_MAX}",
                    attachments.len()
                ),
            );
        }
    }
}
