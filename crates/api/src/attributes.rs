//! What a sender attaches to a message for its own bookkeeping: a custom id, metadata
//! (string keys and values), tags, and Mailjet's event payload. None of it is sent to the
//! recipient; it is kept with the message and reported back with its events.

use serde_json::{Map, Value};

use crate::native::{Check, Message};

/// Metadata keys per message.
pub const METADATA_KEYS_MAX: usize = 50;
/// Metadata bytes per message, keys and values together.
pub const METADATA_BYTES_MAX: usize = 10_000;
/// Tags per message.
pub const TAGS_MAX: usize = 10;
/// Longest tag, in characters.
pub const TAG_CHARS_MAX: usize = 255;

impl Check {
    /// An object of string values.
    pub(crate) fn metadata(&mut self, field: &str, value: Option<&Value>) -> Vec<(String, String)> {
        let map = match value {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Object(map)) => map,
            Some(_) => {
                self.fail(field.to_string(), "must be an object of strings");
                return Vec::new();
            }
        };
        if map.len() > METADATA_KEYS_MAX {
            self.fail(
                field.to_string(),
                format!("{} keys; at most {METADATA_KEYS_MAX}", map.len()),
            );
            return Vec::new();
        }
        let mut out = Vec::with_capacity(map.len());
        let mut bytes = 0;
        for (key, value) in map {
            let path = format!("{field}.{key}");
            if key.is_empty() || key.len() > 100 || key.chars().any(char::is_control) {
                self.fail(
                    path,
                    "keys must be 1-100 characters without control characters",
                );
                continue;
            }
            let Some(text) = value.as_str() else {
                self.fail(path, "must be a string");
                continue;
            };
            bytes += key.len() + text.len();
            out.push((key.clone(), text.to_string()));
        }
        if bytes > METADATA_BYTES_MAX {
            self.fail(
                field.to_string(),
                format!("{bytes} bytes; at most {METADATA_BYTES_MAX}"),
            );
        }
        out
    }

    /// An array of short strings (a single string is one tag).
    pub(crate) fn tags(&mut self, field: &str, value: Option<&Value>) -> Vec<String> {
        let items: Vec<&Value> = match value {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Array(items)) => items.iter().collect(),
            Some(single @ Value::String(_)) => vec![single],
            Some(_) => {
                self.fail(field.to_string(), "must be an array of strings");
                return Vec::new();
            }
        };
        if items.len() > TAGS_MAX {
            self.fail(
                field.to_string(),
                format!("{} tags; at most {TAGS_MAX}", items.len()),
            );
            return Vec::new();
        }
        let mut tags = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("{field}[{i}]");
            match item.as_str() {
                Some(tag)
                    if !tag.is_empty()
                        && tag.chars().count() <= TAG_CHARS_MAX
                        && !tag.chars().any(char::is_control) =>
                {
                    if !tags.iter().any(|t| t == tag) {
                        tags.push(tag.to_string());
                    }
                }
                Some(_) => self.fail(
                    path,
                    format!("tags are 1-{TAG_CHARS_MAX} characters without control characters"),
                ),
                None => self.fail(path, "must be a string"),
            }
        }
        tags
    }
}

/// The message's attributes as stored with it (JSON), or `None` when it has none.
pub fn stored(message: &Message) -> Option<String> {
    let mut out = Map::new();
    if let Some(id) = &message.custom_id {
        out.insert("custom_id".into(), Value::from(id.as_str()));
    }
    if !message.metadata.is_empty() {
        let metadata: Map<String, Value> = message
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        out.insert("metadata".into(), Value::Object(metadata));
    }
    if !message.tags.is_empty() {
        out.insert("tags".into(), Value::from(message.tags.clone()));
    }
    if let Some(payload) = &message.event_payload {
        out.insert("event_payload".into(), Value::from(payload.as_str()));
    }
    (!out.is_empty()).then(|| Value::Object(out).to_string())
}
