//! The audience's checks and small helpers, the same for both stores: names, ids, page
//! sizes, and folding repeated addresses in an upsert.

use std::borrow::Cow;
use std::collections::HashMap;

use rand::RngCore;

use crate::StoreError;
use crate::audience::ContactInput;

/// Most contacts or members one page returns.
pub const CONTACTS_PAGE_MAX: u32 = 1000;

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A fresh id: `prefix` and 64 random bits in hex.
pub(crate) fn new_id(prefix: &str) -> String {
    let mut raw = [0u8; 8];
    rand::rng().fill_bytes(&mut raw);
    std::iter::once(prefix.to_string())
        .chain(raw.iter().map(|b| format!("{b:02x}")))
        .collect()
}

pub(crate) fn check_property_name(name: &str) -> Result<(), StoreError> {
    let mut chars = name.chars();
    let starts = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !(starts && rest && name.len() <= 64) {
        return Err(invalid(
            "name",
            "a letter, then lower-case letters, digits or _ (at most 64)",
        ));
    }
    if matches!(
        name,
        "id" | "address" | "email" | "timezone" | "locale" | "country" | "created" | "updated"
    ) {
        return Err(invalid("name", format!("{name} is a contact's own field")));
    }
    Ok(())
}

pub(crate) fn list_name_taken(name: &str) -> StoreError {
    invalid("name", format!("a list named {name:?} exists already"))
}

/// A list's name, trimmed: 1 to 100 characters on one line.
pub(crate) fn list_name(name: &str) -> Result<&str, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(invalid("name", "1 to 100 characters on one line"));
    }
    Ok(name)
}

/// Folds repeated addresses into one, at the first one's position: later fields and
/// properties override earlier ones, as successive updates would. Returns the addresses in
/// order and each one's contact, borrowed unless folded (most batches repeat no address,
/// and copying every contact's properties showed in the import's profile).
#[allow(clippy::type_complexity)]
pub(crate) fn fold(contacts: &[ContactInput]) -> (Vec<&str>, HashMap<&str, Cow<'_, ContactInput>>) {
    let mut order: Vec<&str> = Vec::with_capacity(contacts.len());
    let mut latest: HashMap<&str, Cow<'_, ContactInput>> = HashMap::with_capacity(contacts.len());
    for contact in contacts {
        match latest.get_mut(contact.address.as_str()) {
            Some(folded) => {
                let folded = folded.to_mut();
                folded.timezone = contact.timezone.clone().or(folded.timezone.take());
                folded.locale = contact.locale.clone().or(folded.locale.take());
                folded.country = contact.country.clone().or(folded.country.take());
                folded.properties.extend(
                    contact
                        .properties
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
            }
            None => {
                latest.insert(contact.address.as_str(), Cow::Borrowed(contact));
                order.push(contact.address.as_str());
            }
        }
    }
    (order, latest)
}
