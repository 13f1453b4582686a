//! Property values against the tenant's declarations: from JSON (the APIs), from text (CSV
//! imports), and back for showing. Stored encodings: text and choice as strings, numbers as
//! numbers, date-times as Unix milliseconds, booleans as `true`/`false`; `null` clears.

use serde_json::{Map, Number, Value};
use store::{PropertyDef, PropertyKind};

/// Longest text value kept.
pub const TEXT_MAX: usize = 1000;

/// Why a property value is refused; each names the property.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{name}: no such property (declared: {declared})")]
    Unknown { name: String, declared: String },
    #[error("{name}: expected {expected}, got {got}")]
    Type {
        name: String,
        expected: &'static str,
        got: String,
    },
    #[error("{name}: {value:?} is not one of {allowed}")]
    Choice {
        name: String,
        value: String,
        allowed: String,
    },
}

impl ValueError {
    /// The property the error is about.
    pub fn property(&self) -> &str {
        match self {
            ValueError::Unknown { name, .. }
            | ValueError::Type { name, .. }
            | ValueError::Choice { name, .. } => name,
        }
    }
}

fn type_error(
    def: &PropertyDef,
    expected: &'static str,
    got: impl std::fmt::Display,
) -> ValueError {
    ValueError::Type {
        name: def.name.clone(),
        expected,
        got: got.to_string(),
    }
}

/// A date-time as Unix milliseconds: RFC 3339 (`2026-12-03T09:00:00+09:00`), a plain date
/// (`2026-12-03`, midnight UTC), or `YYYY-MM-DD HH:MM[:SS]` (UTC), as spreadsheets write it.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Some(ts.as_millisecond());
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return date
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp().as_millisecond());
    }
    let civil = text.replace('/', "-");
    civil
        .parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp().as_millisecond())
}

fn boolean(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "on" => Some(true),
        "false" | "0" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

/// One value given as JSON, in its stored encoding (`null` stays `null`: clear it).
pub fn from_json(def: &PropertyDef, value: &Value) -> Result<Value, ValueError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match (&def.kind, value) {
        (PropertyKind::Text, Value::String(s)) if s.chars().count() <= TEXT_MAX => {
            Ok(Value::String(s.clone()))
        }
        (PropertyKind::Text, Value::String(_)) => Err(type_error(
            def,
            "text of at most 1000 characters",
            "longer text",
        )),
        (PropertyKind::Number, Value::Number(n)) => Ok(Value::Number(n.clone())),
        (PropertyKind::Boolean, Value::Bool(b)) => Ok(Value::Bool(*b)),
        (PropertyKind::DateTime, Value::Number(n)) if n.is_i64() => Ok(Value::Number(n.clone())),
        (
            PropertyKind::DateTime
            | PropertyKind::Number
            | PropertyKind::Boolean
            | PropertyKind::Choice(_),
            Value::String(s),
        ) => from_text(def, s).map(|v| v.unwrap_or(Value::Null)),
        (PropertyKind::Choice(_), other) => Err(type_error(def, "one of the choices", other)),
        (kind, other) => Err(type_error(def, expected(kind), other)),
    }
}

fn expected(kind: &PropertyKind) -> &'static str {
    match kind {
        PropertyKind::Text => "text",
        PropertyKind::Number => "a number",
        PropertyKind::DateTime => "a date-time (RFC 3339 or YYYY-MM-DD)",
        PropertyKind::Boolean => "true or false",
        PropertyKind::Choice(_) => "one of the choices",
    }
}

/// One value given as text (a CSV cell), in its stored encoding; `None` for an empty
/// cell (nothing given).
pub fn from_text(def: &PropertyDef, text: &str) -> Result<Option<Value>, ValueError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let value = match &def.kind {
        PropertyKind::Text => {
            if text.chars().count() > TEXT_MAX {
                return Err(type_error(
                    def,
                    "text of at most 1000 characters",
                    "longer text",
                ));
            }
            Value::String(text.to_string())
        }
        PropertyKind::Number => {
            let number = trimmed
                .replace(',', "")
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| type_error(def, "a number", format!("{trimmed:?}")))?;
            if number.fract() == 0.0 && number.abs() < 9.0e15 {
                Value::Number(Number::from(number as i64))
            } else {
                Number::from_f64(number).map_or(Value::Null, Value::Number)
            }
        }
        PropertyKind::DateTime => {
            Value::Number(Number::from(parse_time(trimmed).ok_or_else(|| {
                type_error(def, expected(&def.kind), format!("{trimmed:?}"))
            })?))
        }
        PropertyKind::Boolean => Value::Bool(
            boolean(trimmed)
                .ok_or_else(|| type_error(def, "true or false", format!("{trimmed:?}")))?,
        ),
        PropertyKind::Choice(choices) => {
            let found = choices
                .iter()
                .find(|c| c.eq_ignore_ascii_case(trimmed))
                .ok_or_else(|| ValueError::Choice {
                    name: def.name.clone(),
                    value: trimmed.to_string(),
                    allowed: choices.join(", "),
                })?;
            Value::String(found.clone())
        }
    };
    Ok(Some(value))
}

/// One value as loosely typed clients send it (Mailjet's, SendGrid's): text is read as a
/// CSV cell would be (numbers, dates and booleans as text), empty text clears, other JSON
/// is read as JSON.
pub fn from_loose(def: &PropertyDef, value: &Value) -> Result<Value, ValueError> {
    match value {
        Value::String(s) if s.is_empty() => Ok(Value::Null),
        Value::String(s) => from_text(def, s).map(|v| v.unwrap_or(Value::Null)),
        other => from_json(def, other),
    }
}

/// Checks every property of a contact against the declarations.
pub fn check_properties(
    declared: &[PropertyDef],
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, ValueError> {
    let mut out = Map::with_capacity(given.len());
    for (name, value) in given {
        let def = declared
            .iter()
            .find(|d| &d.name == name)
            .ok_or_else(|| ValueError::Unknown {
                name: name.clone(),
                declared: declared
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        out.insert(name.clone(), from_json(def, value)?);
    }
    Ok(out)
}

/// Stored properties as the APIs show them (date-times in RFC 3339, UTC).
pub fn shown(declared: &[PropertyDef], stored: &Map<String, Value>) -> Map<String, Value> {
    stored
        .iter()
        .map(|(name, value)| {
            let is_time = declared
                .iter()
                .any(|d| &d.name == name && d.kind == PropertyKind::DateTime);
            let value = match (is_time, value.as_i64()) {
                (true, Some(ms)) => jiff::Timestamp::from_millisecond(ms)
                    .map_or(value.clone(), |ts| Value::String(ts.to_string())),
                _ => value.clone(),
            };
            (name.clone(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(name: &str, kind: PropertyKind) -> PropertyDef {
        PropertyDef {
            name: name.into(),
            kind,
            created_ms: 0,
        }
    }

    #[test]
    fn json_values_take_their_declared_type() {
        let declared = vec![
            def(
                "plan",
                PropertyKind::Choice(vec!["free".into(), "pro".into()]),
            ),
            def("score", PropertyKind::Number),
            def("signed_up", PropertyKind::DateTime),
            def("vip", PropertyKind::Boolean),
            def("city", PropertyKind::Text),
        ];
        let given = json!({"plan": "PRO", "score": "1,250", "signed_up": "2026-12-03",
            "vip": "yes", "city": "Kyoto"});
        let stored = check_properties(&declared, given.as_object().unwrap()).unwrap();
        assert_eq!(
            Value::Object(stored.clone()),
            json!({"plan": "pro", "score": 1250, "signed_up": 1_796_256_000_000_i64,
                "vip": true, "city": "Kyoto"})
        );
        assert_eq!(
            shown(&declared, &stored)["signed_up"],
            json!("2026-12-03T00:00:00Z")
        );
        let bad = |v: Value| check_properties(&declared, v.as_object().unwrap()).unwrap_err();
        assert_eq!(bad(json!({"nope": 1})).property(), "nope");
        assert!(matches!(
            bad(json!({"plan": "gold"})),
            ValueError::Choice { .. }
        ));
        assert!(matches!(
            bad(json!({"score": true})),
            ValueError::Type { .. }
        ));
        assert!(matches!(
            bad(json!({"signed_up": "yesterday"})),
            ValueError::Type { .. }
        ));
        assert_eq!(
            check_properties(&declared, json!({"city": null}).as_object().unwrap()).unwrap()["city"],
            Value::Null
        );
    }

    #[test]
    fn text_cells_parse_like_spreadsheets_write_them() {
        let t = def("t", PropertyKind::DateTime);
        assert_eq!(from_text(&t, "").unwrap(), None);
        assert_eq!(
            from_text(&t, "2026/12/03 09:30").unwrap(),
            Some(json!(1_796_290_200_000_i64))
        );
        assert_eq!(
            from_text(&t, "2026-12-03T09:30:00+09:00").unwrap(),
            Some(json!(1_796_257_800_000_i64))
        );
        let n = def("n", PropertyKind::Number);
        assert_eq!(from_text(&n, " 2.5 ").unwrap(), Some(json!(2.5)));
        assert!(from_text(&n, "two").is_err());
    }
}
