//! A contact's own fields: the address (the key), its IANA time zone, BCP 47 locale and
//! ISO 3166-1 country, normalised so that the same person is one contact.

/// Why a field is refused; the message names what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

fn refuse(field: &'static str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field,
        reason: reason.into(),
    }
}

/// The address as stored: trimmed and lower-cased (mailbox providers treat local parts
/// case-blind, and the suppression list does too). One `@`, a dotted domain, no spaces or
/// angle brackets, at most 254 characters.
pub fn address(text: &str) -> Result<String, FieldError> {
    let address = text.trim().to_lowercase();
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(refuse("address", "not an e-mail address"));
    };
    let bad_char = |c: char| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(c);
    if local.is_empty()
        || local.len() > 64
        || domain.len() < 3
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || address.len() > 254
        || address.chars().any(bad_char)
        || local.contains('@')
    {
        return Err(refuse(
            "address",
            format!("{text:?} is not an e-mail address"),
        ));
    }
    Ok(address)
}

/// An IANA time zone name this machine's zone database knows (`Asia/Tokyo`).
pub fn timezone(text: &str) -> Result<String, FieldError> {
    let name = text.trim();
    match jiff::tz::TimeZone::get(name) {
        Ok(_) if !name.is_empty() => Ok(name.to_string()),
        _ => Err(refuse(
            "timezone",
            format!("{name:?} is not an IANA time zone such as Asia/Tokyo"),
        )),
    }
}

/// A BCP 47 language tag in its usual case (`ja`, `en-US`, `zh-Hant-TW`).
pub fn locale(text: &str) -> Result<String, FieldError> {
    let tag = text.trim().replace('_', "-");
    let parts: Vec<&str> = tag.split('-').collect();
    let language_ok = parts[0].len() >= 2
        && parts[0].len() <= 3
        && parts[0].chars().all(|c| c.is_ascii_alphabetic());
    let rest_ok = parts[1..]
        .iter()
        .all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if !language_ok || !rest_ok {
        return Err(refuse(
            "locale",
            format!("{text:?} is not a language tag such as ja or en-US"),
        ));
    }
    let shaped: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| match (i, p.len()) {
            (0, _) => p.to_ascii_lowercase(),
            (_, 2) => p.to_ascii_uppercase(),
            (_, 4) => {
                let lower = p.to_ascii_lowercase();
                lower[..1].to_ascii_uppercase() + &lower[1..]
            }
            _ => p.to_ascii_lowercase(),
        })
        .collect();
    Ok(shaped.join("-"))
}

/// An ISO 3166-1 alpha-2 code, upper case (`JP`).
pub fn country(text: &str) -> Result<String, FieldError> {
    let code = text.trim().to_ascii_uppercase();
    if code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(refuse(
            "country",
            format!("{text:?} is not a two-letter country code such as JP"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_and_checked() {
        assert_eq!(
            address("  Ann.Lee@Example.COM ").unwrap(),
            "ann.lee@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.test",
            "ann@x",
            "a b@x.test",
            "<a@x.test>",
            "a@@x.test",
        ] {
            assert!(address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn zones_locales_and_countries() {
        assert_eq!(timezone("Asia/Tokyo").unwrap(), "Asia/Tokyo");
        assert_eq!(timezone("Asia/Kathmandu").unwrap(), "Asia/Kathmandu");
        assert!(timezone("Mars/Olympus").is_err());
        assert!(timezone("").is_err());
        assert_eq!(locale("en_us").unwrap(), "en-US");
        assert_eq!(locale("zh-hant-tw").unwrap(), "zh-Hant-TW");
        assert_eq!(locale("JA").unwrap(), "ja");
        assert!(locale("english!").is_err());
        assert_eq!(country(" jp").unwrap(), "JP");
        assert!(country("JPN").is_err());
    }
}
