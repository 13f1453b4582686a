//! A/B tests: a campaign's variants (subject, sender name, content, send time), the share
//! of its audience that tests them, the metric that picks the winner and how long to wait.
//!
//! The test group is a random sample (the audience is shuffled when it is fixed): its
//! first recipients, dealt to the variants in turn. Once the test group is spooled and the
//! waiting time is over, [`crate::winner`] decides and the rest of the audience gets the
//! winning variant.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::documents::{Content, DocumentError, Schedule};

/// Variants a test may have.
pub const VARIANTS_MAX: usize = 10;
/// Longest wait before the winner is decided (a week, in minutes).
const WAIT_MINUTES_MAX: f64 = 7.0 * 24.0 * 60.0;

/// What decides the winner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Unique human opens over delivered messages.
    Opens,
    /// Unique human clicks over delivered messages.
    Clicks,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Opens => "opens",
            Metric::Clicks => "clicks",
        }
    }
}

/// What is sent when no variant is significantly better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The variant with the best rate all the same (ties: the earlier variant).
    Leader,
    /// The first variant (the control).
    First,
}

impl Fallback {
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::Leader => "leader",
            Fallback::First => "first",
        }
    }
}

/// One variant: its name and the content fields it changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub name: String,
    /// Content fields over the campaign's (`subject`, `from_name`, `html`, `text`,
    /// `template_id`, `template_version`).
    pub changes: Map<String, Value>,
    /// Its own send time for the test group (the campaign's otherwise).
    pub schedule: Option<Schedule>,
}

/// An A/B test as a campaign's `ab` document says.
#[derive(Debug, Clone, PartialEq)]
pub struct AbTest {
    pub variants: Vec<Variant>,
    /// Percent of the audience in the test group (1 to 100; at 100 nobody is left for the
    /// winner, which is still decided and reported).
    pub test_percent: u32,
    pub metric: Metric,
    /// From the test group's last message spooled (or its latest send time) to the decision.
    pub wait: Duration,
    pub fallback: Fallback,
    /// Confidence the winner must reach (0.8 to 0.999).
    pub confidence: f64,
}

fn error(field: impl Into<String>, message: impl Into<String>) -> DocumentError {
    DocumentError {
        field: field.into(),
        message: message.into(),
    }
}

const VARIANT_FIELDS: &[&str] = &[
    "name",
    "subject",
    "from_name",
    "html",
    "text",
    "template_id",
    "template_version",
    "schedule",
];

impl AbTest {
    /// Reads and checks the document; each variant's content is checked over `content`
    /// (the campaign's), when given.
    pub fn read(value: &Value, content: Option<&Value>) -> Result<AbTest, DocumentError> {
        let map = value
            .as_object()
            .ok_or_else(|| error("ab", "must be an object"))?;
        if let Some(unknown) = map.keys().find(|k| {
            ![
                "variants",
                "test_percent",
                "metric",
                "wait_minutes",
                "fallback",
                "confidence",
            ]
            .contains(&k.as_str())
        }) {
            return Err(error(format!("ab.{unknown}"), "is not a known field"));
        }
        let items = match map.get("variants") {
            Some(Value::Array(items)) if (2..=VARIANTS_MAX).contains(&items.len()) => items,
            _ => {
                return Err(error(
                    "ab.variants",
                    format!("must be 2 to {VARIANTS_MAX} variants"),
                ));
            }
        };
        let mut variants = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = format!("ab.variants[{i}]");
            let fields = item
                .as_object()
                .ok_or_else(|| error(&at, "must be an object"))?;
            if let Some(unknown) = fields
                .keys()
                .find(|k| !VARIANT_FIELDS.contains(&k.as_str()))
            {
                return Err(error(format!("{at}.{unknown}"), "is not a known field"));
            }
            let name = match fields.get("name") {
                None | Some(Value::Null) => ((b'A' + i as u8) as char).to_string(),
                Some(Value::String(n))
                    if !n.trim().is_empty()
                        && n.chars().count() <= 100
                        && !n.chars().any(char::is_control) =>
                {
                    n.trim().to_string()
                }
                Some(_) => return Err(error(format!("{at}.name"), "1 to 100 characters")),
            };
            let schedule = match fields.get("schedule") {
                None | Some(Value::Null) => None,
                Some(s) => Some(Schedule::read(s).map_err(|e| DocumentError {
                    field: format!("{at}.{}", e.field),
                    message: e.message,
                })?),
            };
            let mut changes = fields.clone();
            changes.remove("name");
            changes.remove("schedule");
            variants.push(Variant {
                name,
                changes,
                schedule,
            });
        }
        if let Some(dup) = variants
            .iter()
            .enumerate()
            .find(|(i, v)| variants[..*i].iter().any(|w| w.name == v.name))
        {
            return Err(error(
                format!("ab.variants[{}].name", dup.0),
                "two variants have this name",
            ));
        }
        let test_percent = match map.get("test_percent") {
            None => 20,
            Some(v) => match v.as_u64() {
                Some(p @ 1..=100) => p as u32,
                _ => return Err(error("ab.test_percent", "must be a whole number, 1 to 100")),
            },
        };
        let metric = match map.get("metric").and_then(Value::as_str) {
            None if !map.contains_key("metric") => Metric::Opens,
            Some("opens") => Metric::Opens,
            Some("clicks") => Metric::Clicks,
            _ => return Err(error("ab.metric", "must be opens or clicks")),
        };
        let wait_minutes = match map.get("wait_minutes") {
            None => 240.0,
            Some(v) => match v.as_f64() {
                Some(m) if (0.0..=WAIT_MINUTES_MAX).contains(&m) => m,
                _ => {
                    return Err(error(
                        "ab.wait_minutes",
                        "must be 0 to 10080 minutes (a week)",
                    ));
                }
            },
        };
        let fallback = match map.get("fallback").and_then(Value::as_str) {
            None if !map.contains_key("fallback") => Fallback::Leader,
            Some("leader") => Fallback::Leader,
            Some("first") => Fallback::First,
            _ => return Err(error("ab.fallback", "must be leader or first")),
        };
        let confidence = match map.get("confidence") {
            None => 0.95,
            Some(v) => match v.as_f64() {
                Some(c) if (0.8..=0.999).contains(&c) => c,
                _ => return Err(error("ab.confidence", "must be 0.8 to 0.999")),
            },
        };
        let test = AbTest {
            variants,
            test_percent,
            metric,
            wait: Duration::from_secs_f64(wait_minutes * 60.0),
            fallback,
            confidence,
        };
        if let Some(content) = content {
            for i in 0..test.variants.len() {
                test.content(content, i)?;
            }
        }
        Ok(test)
    }

    /// Variant `n`'s content document: the campaign's with the variant's changes. A variant
    /// naming a template drops the campaign's bodies; one giving bodies drops its template.
    pub fn content_document(&self, base: &Value, n: usize) -> Value {
        let mut merged = base.as_object().cloned().unwrap_or_default();
        let Some(variant) = self.variants.get(n) else {
            return Value::Object(merged);
        };
        let changes = &variant.changes;
        if changes.contains_key("template_id") {
            for field in ["html", "text", "template_version"] {
                merged.remove(field);
            }
            if !changes.contains_key("subject") {
                merged.remove("subject");
            }
        }
        if changes.contains_key("html") || changes.contains_key("text") {
            for field in ["template_id", "template_version", "html", "text"] {
                merged.remove(field);
            }
        }
        merged.extend(changes.clone());
        Value::Object(merged)
    }

    /// Variant `n`'s content, checked; errors name the variant's field.
    pub fn content(&self, base: &Value, n: usize) -> Result<Content, DocumentError> {
        Content::read(&self.content_document(base, n)).map_err(|e| DocumentError {
            field: e
                .field
                .strip_prefix("content.")
                .map_or(e.field.clone(), |f| format!("ab.variants[{n}].{f}")),
            message: e.message,
        })
    }

    /// Recipients in the test group of an audience of `recipients` (at least one per
    /// variant when the audience allows).
    pub fn test_group(&self, recipients: i64) -> i64 {
        let share = (recipients * i64::from(self.test_percent) + 99) / 100;
        share.max(self.variants.len() as i64).min(recipients)
    }
}
