//! CSV rows into contacts: which column is what (from the header, or as the tenant says),
//! and each row checked into a [`ContactInput`] or a reason it is refused. No I/O: the
//! `imports` crate reads files and writes batches.

use serde_json::{Map, Value};
use store::{ContactInput, PropertyDef};

use crate::fields;
use crate::values;

/// What a column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Address,
    Timezone,
    Locale,
    Country,
    Property(String),
}

impl Target {
    /// As stored in a job's mapping: `address`, `timezone`, `locale`, `country`,
    /// `property:<name>`.
    pub fn as_text(&self) -> String {
        match self {
            Target::Address => "address".into(),
            Target::Timezone => "timezone".into(),
            Target::Locale => "locale".into(),
            Target::Country => "country".into(),
            Target::Property(name) => format!("property:{name}"),
        }
    }

    pub fn parse(text: &str) -> Option<Target> {
        match text {
            "address" => Some(Target::Address),
            "timezone" => Some(Target::Timezone),
            "locale" => Some(Target::Locale),
            "country" => Some(Target::Country),
            other => other
                .strip_prefix("property:")
                .map(|name| Target::Property(name.to_string())),
        }
    }
}

/// Why a file cannot be imported as mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error(
        "no column holds the address (name one email, e-mail, address or メールアドレス, or map it)"
    )]
    NoAddress,
    #[error("column {column:?}: {reason}")]
    Column { column: String, reason: String },
}

/// A target per column (`None`: ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub targets: Vec<Option<Target>>,
}

/// The target a header names by itself (case-blind, common spellings, Japanese ones too).
fn guess(header: &str, declared: &[PropertyDef]) -> Option<Target> {
    let key = header.trim().to_lowercase().replace([' ', '-'], "_");
    match key.as_str() {
        "email" | "e_mail" | "email_address" | "mail" | "address" | "メールアドレス" | "メール" => {
            Some(Target::Address)
        }
        "timezone" | "time_zone" | "tz" | "タイムゾーン" => Some(Target::Timezone),
        "locale" | "language" | "lang" | "言語" => Some(Target::Locale),
        "country" | "country_code" | "国" => Some(Target::Country),
        _ => declared
            .iter()
            .find(|p| p.name == key)
            .map(|p| Target::Property(p.name.clone())),
    }
}

impl Mapping {
    /// Targets from the header, with `given` (column name → target text, or "" to
    /// ignore it) taking precedence; refuses unknown properties and a missing address.
    pub fn new(
        header: &[String],
        declared: &[PropertyDef],
        given: &[(String, String)],
    ) -> Result<Mapping, MappingError> {
        for (column, _) in given {
            if !header.iter().any(|h| h.trim() == column) {
                return Err(MappingError::Column {
                    column: column.clone(),
                    reason: "is not a column of the file".into(),
                });
            }
        }
        let mut targets = Vec::with_capacity(header.len());
        for column in header {
            let target = match given.iter().find(|(c, _)| c == column.trim()) {
                Some((_, t)) if t.is_empty() => None,
                Some((_, t)) => {
                    let target = Target::parse(t)
                        .or_else(|| guess(t, declared))
                        .ok_or_else(|| MappingError::Column {
                            column: column.clone(),
                            reason: format!("{t:?} is not address, timezone, locale, country or a declared property"),
                        })?;
                    if let Target::Property(name) = &target
                        && !declared.iter().any(|p| &p.name == name)
                    {
                        return Err(MappingError::Column {
                            column: column.clone(),
                            reason: format!("{name} is not a declared property"),
                        });
                    }
                    Some(target)
                }
                None => guess(column, declared),
            };
            targets.push(target);
        }
        if !targets.contains(&Some(Target::Address)) {
            return Err(MappingError::NoAddress);
        }
        Ok(Mapping { targets })
    }

    /// As stored in a job: a JSON array of target texts or nulls.
    pub fn to_json(&self) -> String {
        Value::Array(
            self.targets
                .iter()
                .map(|t| {
                    t.as_ref()
                        .map_or(Value::Null, |t| Value::String(t.as_text()))
                })
                .collect(),
        )
        .to_string()
    }

    pub fn from_json(text: &str) -> Option<Mapping> {
        let Value::Array(items) = serde_json::from_str(text).ok()? else {
            return None;
        };
        let targets = items
            .iter()
            .map(|v| v.as_str().and_then(Target::parse))
            .collect();
        Some(Mapping { targets })
    }

    /// One record into a contact, or why not. Empty cells give nothing (they never clear a
    /// stored value).
    pub fn row(&self, record: &[&str], declared: &[PropertyDef]) -> Result<ContactInput, String> {
        let mut contact = ContactInput::default();
        let mut properties = Map::new();
        let mut address = None;
        for (i, target) in self.targets.iter().enumerate() {
            let Some(target) = target else { continue };
            let cell = record.get(i).copied().unwrap_or("");
            if cell.trim().is_empty() {
                continue;
            }
            match target {
                Target::Address => {
                    address = Some(fields::address(cell).map_err(|e| e.to_string())?)
                }
                Target::Timezone => {
                    contact.timezone = Some(fields::timezone(cell).map_err(|e| e.to_string())?)
                }
                Target::Locale => {
                    contact.locale = Some(fields::locale(cell).map_err(|e| e.to_string())?)
                }
                Target::Country => {
                    contact.country = Some(fields::country(cell).map_err(|e| e.to_string())?)
                }
                Target::Property(name) => {
                    let def = declared
                        .iter()
                        .find(|p| &p.name == name)
                        .ok_or_else(|| format!("{name}: no longer a declared property"))?;
                    if let Some(value) = values::from_text(def, cell).map_err(|e| e.to_string())? {
                        properties.insert(name.clone(), value);
                    }
                }
            }
        }
        contact.address = address.ok_or_else(|| "address: empty".to_string())?;
        contact.properties = properties;
        Ok(contact)
    }
}

/// The encoding of a CSV file from its first bytes: UTF-8 (with or without BOM) when they
/// are valid UTF-8, else Shift_JIS (as Windows-31J, which Japanese spreadsheet software
/// writes).
pub fn detect_encoding(head: &[u8]) -> &'static encoding_rs::Encoding {
    if head.starts_with(b"\xEF\xBB\xBF") {
        return encoding_rs::UTF_8;
    }
    match std::str::from_utf8(head) {
        Ok(_) => encoding_rs::UTF_8,
        // A character cut by the end of the sample is not a reason to doubt the rest.
        Err(e) if e.error_len().is_none() && head.len() - e.valid_up_to() < 4 => encoding_rs::UTF_8,
        Err(_) => encoding_rs::SHIFT_JIS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::PropertyKind;

    fn declared() -> Vec<PropertyDef> {
        vec![
            PropertyDef {
                name: "plan".into(),
                kind: PropertyKind::Choice(vec!["free".into(), "pro".into()]),
                created_ms: 0,
            },
            PropertyDef {
                name: "score".into(),
                kind: PropertyKind::Number,
                created_ms: 0,
            },
        ]
    }

    fn header(columns: &[&str]) -> Vec<String> {
        columns.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn headers_map_themselves_and_the_tenant_can_say_otherwise() {
        let m = Mapping::new(
            &header(&["E-mail", "Plan", "Notes", "国"]),
            &declared(),
            &[],
        )
        .unwrap();
        assert_eq!(
            m.targets,
            [
                Some(Target::Address),
                Some(Target::Property("plan".into())),
                None,
                Some(Target::Country)
            ]
        );
        let m = Mapping::new(
            &header(&["who", "points", "Plan"]),
            &declared(),
            &[
                ("who".into(), "address".into()),
                ("points".into(), "score".into()),
                ("Plan".into(), "".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            m.targets,
            [
                Some(Target::Address),
                Some(Target::Property("score".into())),
                None
            ]
        );
        assert_eq!(Mapping::from_json(&m.to_json()), Some(m));
        assert_eq!(
            Mapping::new(&header(&["name"]), &declared(), &[]),
            Err(MappingError::NoAddress)
        );
        assert!(matches!(
            Mapping::new(
                &header(&["email", "x"]),
                &declared(),
                &[("x".into(), "property:nope".into())]
            ),
            Err(MappingError::Column { .. })
        ));
    }

    #[test]
    fn rows_become_contacts_or_reasons() {
        let m = Mapping::new(
            &header(&["email", "plan", "score", "country"]),
            &declared(),
            &[],
        )
        .unwrap();
        let ann = m
            .row(&["Ann@X.test", "PRO", "3", "jp"], &declared())
            .unwrap();
        assert_eq!(ann.address, "ann@x.test");
        assert_eq!(ann.country.as_deref(), Some("JP"));
        assert_eq!(ann.properties["plan"], "pro");
        let sparse = m.row(&["bob@x.test", "", ""], &declared()).unwrap();
        assert!(sparse.properties.is_empty(), "empty cells give nothing");
        assert!(
            m.row(&["nope", "pro"], &declared())
                .unwrap_err()
                .starts_with("address")
        );
        assert!(
            m.row(&["c@x.test", "gold"], &declared())
                .unwrap_err()
                .contains("plan")
        );
        assert_eq!(
            m.row(&["", "pro"], &declared()).unwrap_err(),
            "address: empty"
        );
    }

    #[test]
    fn encodings_are_told_apart() {
        assert_eq!(detect_encoding(b"\xEF\xBB\xBFemail\n"), encoding_rs::UTF_8);
        assert_eq!(detect_encoding("メール\n".as_bytes()), encoding_rs::UTF_8);
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("メールアドレス,名前\n");
        assert_eq!(detect_encoding(&sjis), encoding_rs::SHIFT_JIS);
        let cut = &"メール".as_bytes()[..4];
        assert_eq!(detect_encoding(cut), encoding_rs::UTF_8);
    }
}

/// Contacts as CSV, the columns an import maps back by name: `email`, `timezone`,
/// `locale`, `country`, every declared property (date-times in RFC 3339), `suppressed`.
pub mod export {
    use serde_json::Value;
    use store::{Contact, PropertyDef};

    fn field(text: &str) -> String {
        if text.contains([',', '"', '\r', '\n']) || text.starts_with(' ') || text.ends_with(' ') {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_string()
        }
    }

    pub fn header(declared: &[PropertyDef]) -> String {
        let mut out = String::from("email,timezone,locale,country");
        for p in declared {
            out.push(',');
            out.push_str(&field(&p.name));
        }
        out.push_str(",suppressed\r\n");
        out
    }

    /// One contact's line.
    pub fn row(contact: &Contact, declared: &[PropertyDef], suppressed: bool) -> String {
        let shown = crate::values::shown(declared, &contact.properties);
        let mut out = field(&contact.address);
        for own in [&contact.timezone, &contact.locale, &contact.country] {
            out.push(',');
            out.push_str(&field(own.as_deref().unwrap_or("")));
        }
        for p in declared {
            out.push(',');
            let text = match shown.get(&p.name) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            out.push_str(&field(&text));
        }
        out.push_str(if suppressed { ",yes\r\n" } else { ",\r\n" });
        out
    }
}
