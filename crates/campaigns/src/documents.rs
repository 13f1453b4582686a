//! A campaign's documents as the API takes them (JSON) and the store keeps them, read into
//! types and checked here; every error names its field (`audience.lists[0]`,
//! `schedule.local.time`). Whether the lists, segments, template and sending domain exist
//! is the caller's check against the tenant's records.

use jiff::Timestamp;
use jiff::civil::{Date, Time, Weekday};
use serde_json::{Map, Value};

use crate::local_time::{LocalSchedule, Passed};
use crate::window::SendWindow;

/// A document that does not check: the field at fault and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct DocumentError {
    pub field: String,
    pub message: String,
}

fn error(field: impl Into<String>, message: impl Into<String>) -> DocumentError {
    DocumentError {
        field: field.into(),
        message: message.into(),
    }
}

fn object<'a>(value: &'a Value, field: &str) -> Result<&'a Map<String, Value>, DocumentError> {
    value
        .as_object()
        .ok_or_else(|| error(field, "must be an object"))
}

fn known_only(map: &Map<String, Value>, field: &str, known: &[&str]) -> Result<(), DocumentError> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(error(format!("{field}.{unknown}"), "is not a known field")),
        None => Ok(()),
    }
}

fn names(map: &Map<String, Value>, field: &str, name: &str) -> Result<Vec<String>, DocumentError> {
    let at = format!("{field}.{name}");
    match map.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item.as_str().map(str::trim) {
                Some(text) if !text.is_empty() => Ok(text.to_string()),
                _ => Err(error(
                    format!("{at}[{i}]"),
                    "must be a list or segment id or name",
                )),
            })
            .collect(),
        Some(_) => Err(error(at, "must be an array of ids or names")),
    }
}

/// Who a campaign goes to: lists and segments, narrowed to the filter segments when any,
/// minus exclusions (suppressions are always applied on top).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audience {
    pub lists: Vec<String>,
    pub segments: Vec<String>,
    pub exclude_lists: Vec<String>,
    pub exclude_segments: Vec<String>,
    /// Only contacts also in one of these segments (a list "filtered by" a segment).
    pub filter_segments: Vec<String>,
}

impl Audience {
    pub fn read(value: &Value) -> Result<Audience, DocumentError> {
        let field = "audience";
        let map = object(value, field)?;
        known_only(
            map,
            field,
            &[
                "lists",
                "segments",
                "exclude_lists",
                "exclude_segments",
                "filter_segments",
            ],
        )?;
        let audience = Audience {
            lists: names(map, field, "lists")?,
            segments: names(map, field, "segments")?,
            exclude_lists: names(map, field, "exclude_lists")?,
            exclude_segments: names(map, field, "exclude_segments")?,
            filter_segments: names(map, field, "filter_segments")?,
        };
        if audience.lists.is_empty() && audience.segments.is_empty() {
            return Err(error(field, "name at least one list or segment"));
        }
        Ok(audience)
    }
}

/// When a campaign goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// One instant for everyone.
    At(Timestamp),
    /// A local date and time in each recipient's zone.
    Local(LocalSchedule),
}

fn text<'a>(
    map: &'a Map<String, Value>,
    field: &str,
    name: &str,
) -> Result<&'a str, DocumentError> {
    map.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| error(format!("{field}.{name}"), "is required (text)"))
}

fn clock(text: &str, field: &str) -> Result<Time, DocumentError> {
    let parsed = match text.len() {
        5 => format!("{text}:00").parse::<Time>(),
        _ => text.parse::<Time>(),
    };
    parsed.map_err(|_| error(field, "must be a time of day, HH:MM"))
}

impl Schedule {
    pub fn read(value: &Value) -> Result<Schedule, DocumentError> {
        let field = "schedule";
        let map = object(value, field)?;
        known_only(map, field, &["at", "local"])?;
        match (map.get("at"), map.get("local")) {
            (Some(at), None) => {
                let instant = match at {
                    Value::Number(n) => n
                        .as_i64()
                        .and_then(|ms| Timestamp::from_millisecond(ms).ok()),
                    Value::String(s) => s.parse::<Timestamp>().ok(),
                    _ => None,
                };
                instant.map(Schedule::At).ok_or_else(|| {
                    error(
                        "schedule.at",
                        "must be an RFC 3339 time or Unix milliseconds",
                    )
                })
            }
            (None, Some(local)) => {
                let field = "schedule.local";
                let map = object(local, field)?;
                known_only(map, field, &["date", "time", "passed"])?;
                let date = text(map, field, "date")?
                    .parse::<Date>()
                    .map_err(|_| error("schedule.local.date", "must be a date, YYYY-MM-DD"))?;
                let time = clock(text(map, field, "time")?, "schedule.local.time")?;
                let passed = match map.get("passed").and_then(Value::as_str) {
                    None | Some("next_day") => Passed::NextDay,
                    Some("at_once") => Passed::AtOnce,
                    Some(_) => {
                        return Err(error(
                            "schedule.local.passed",
                            "must be at_once or next_day",
                        ));
                    }
                };
                Ok(Schedule::Local(LocalSchedule { date, time, passed }))
            }
            _ => Err(error(field, "give either \"at\" or \"local\"")),
        }
    }
}

fn weekday(text: &str) -> Option<Weekday> {
    Some(match text.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        "sun" | "sunday" => Weekday::Sunday,
        _ => return None,
    })
}

/// `{"days": ["mon", ...], "from": "09:00", "to": "20:00"}` (days default to Monday to
/// Friday).
pub fn read_window(value: &Value) -> Result<SendWindow, DocumentError> {
    let field = "window";
    let map = object(value, field)?;
    known_only(map, field, &["days", "from", "to"])?;
    let from = clock(text(map, field, "from")?, "window.from")?;
    let to = clock(text(map, field, "to")?, "window.to")?;
    if from >= to {
        return Err(error(
            "window.to",
            "must be later than window.from (the same day)",
        ));
    }
    let mut window = SendWindow::weekdays(from, to);
    match map.get("days") {
        None | Some(Value::Null) => {}
        Some(Value::Array(days)) if !days.is_empty() => {
            window.days = days
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    d.as_str().and_then(weekday).ok_or_else(|| {
                        error(format!("window.days[{i}]"), "must be a day: mon ... sun")
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        Some(_) => return Err(error("window.days", "must be a non-empty array of days")),
    }
    Ok(window)
}

/// What a campaign says: a stored template's version, or its own subject and bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Template {
        id: String,
        /// The active version when the send starts, if none is named.
        version: Option<i64>,
        /// A subject instead of the template's (an A/B variant's, say).
        subject: Option<String>,
    },
    Inline {
        subject: String,
        html: Option<String>,
        text: Option<String>,
        /// The template language the parts are written in (native unless said).
        dialect: store::Dialect,
    },
}

/// The sender and the body of a campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub from: String,
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    pub body: Body,
}

fn optional_text(
    map: &Map<String, Value>,
    field: &str,
    name: &str,
) -> Result<Option<String>, DocumentError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(error(format!("{field}.{name}"), "must be text")),
    }
}

/// One line of header text: no line breaks (they would start a new header).
fn one_line(value: Option<String>, field: &str) -> Result<Option<String>, DocumentError> {
    match value {
        Some(v) if v.contains(['\r', '\n', '\0']) => {
            Err(error(field, "must be one line (no line breaks)"))
        }
        other => Ok(other),
    }
}

impl Content {
    pub fn read(value: &Value) -> Result<Content, DocumentError> {
        let field = "content";
        let map = object(value, field)?;
        known_only(
            map,
            field,
            &[
                "from",
                "from_name",
                "reply_to",
                "template_id",
                "template_version",
                "subject",
                "html",
                "text",
                "dialect",
            ],
        )?;
        let from = optional_text(map, field, "from")?
            .ok_or_else(|| error("content.from", "is required"))?;
        let address = |text: &str, name: &str| -> Result<(), DocumentError> {
            match text.rsplit_once('@') {
                Some((local, domain))
                    if !local.is_empty()
                        && domain.contains('.')
                        && !text.contains(char::is_whitespace) =>
                {
                    Ok(())
                }
                _ => Err(error(
                    format!("content.{name}"),
                    "must be an e-mail address",
                )),
            }
        };
        address(&from, "from")?;
        let reply_to = optional_text(map, field, "reply_to")?;
        if let Some(reply_to) = &reply_to {
            address(reply_to, "reply_to")?;
        }
        let from_name = one_line(optional_text(map, field, "from_name")?, "content.from_name")?;
        let subject = one_line(optional_text(map, field, "subject")?, "content.subject")?;
        let html = optional_text(map, field, "html")?;
        let text = optional_text(map, field, "text")?;
        let body = match optional_text(map, field, "template_id")? {
            Some(id) => {
                let dialect = optional_text(map, field, "dialect")?;
                if let Some(part) = [("html", &html), ("text", &text), ("dialect", &dialect)]
                    .iter()
                    .find(|(_, v)| v.is_some())
                    .map(|(name, _)| *name)
                {
                    return Err(error(format!("content.{part}"), "is given by the template"));
                }
                let version = match map.get("template_version") {
                    None | Some(Value::Null) => None,
                    Some(Value::Number(n)) if n.as_i64().is_some_and(|v| v > 0) => n.as_i64(),
                    Some(_) => {
                        return Err(error(
                            "content.template_version",
                            "must be a version number",
                        ));
                    }
                };
                Body::Template {
                    id,
                    version,
                    subject,
                }
            }
            None => {
                let subject = subject.ok_or_else(|| {
                    error("content.subject", "is required (or name a template_id)")
                })?;
                if html.is_none() && text.is_none() {
                    return Err(error(
                        "content.html",
                        "html or text is required (or name a template_id)",
                    ));
                }
                let dialect = match optional_text(map, field, "dialect")? {
                    None => store::Dialect::Native,
                    Some(name) => store::Dialect::parse(&name).ok_or_else(|| {
                        error("content.dialect", "must be native, mailjet or handlebars")
                    })?,
                };
                Body::Inline {
                    subject,
                    html,
                    text,
                    dialect,
                }
            }
        };
        Ok(Content {
            from,
            from_name,
            reply_to,
            body,
        })
    }
}
