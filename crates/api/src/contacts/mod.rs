//! Contacts, lists and segments over HTTP (native API): property declarations, contacts, lists and their
//! members, segments (preview, save). Reads need the `read` scope, changes `manage`. Every
//! lookup goes through the calling key's tenant: another tenant's contact, list or segment
//! is a 404 like an unknown one.

pub mod contact;
pub mod imports;
pub mod lists;
pub mod openapi;
pub mod optin;
pub mod properties;
pub mod segments;

use serde_json::{Value, json};
use store::{AudienceStore, Contact, PropertyDef, StoreError};

use crate::error::ApiError;
use crate::records::invalid;

/// Every store the audience handlers need.
pub trait Store:
    store::ControlStore + store::EventStore + AudienceStore + store::ImportStore + Clone + 'static
{
}
impl<T> Store for T where
    T: store::ControlStore
        + store::EventStore
        + AudienceStore
        + store::ImportStore
        + Clone
        + 'static
{
}

/// A contact as the API shows it (date-time properties in RFC 3339).
pub(crate) fn contact_json(contact: &Contact, declared: &[PropertyDef]) -> Value {
    json!({
        "id": contact.id,
        "address": contact.address,
        "timezone": contact.timezone,
        "locale": contact.locale,
        "country": contact.country,
        "properties": ::audience::values::shown(declared, &contact.properties),
        "created_ms": contact.created_ms,
        "updated_ms": contact.updated_ms,
    })
}

/// Properties given by name as the compatible APIs' clients send them (see
/// [`audience::values::from_loose`]), checked against the declarations; an unknown one
/// names the API's own way to declare it (`hint`).
pub(crate) fn loose_properties(
    declared: &[PropertyDef],
    given: impl IntoIterator<Item = (String, Value)>,
    hint: &str,
) -> Result<serde_json::Map<String, Value>, String> {
    let mut out = serde_json::Map::new();
    for (name, value) in given {
        let def = declared.iter().find(|p| p.name == name).ok_or_else(|| {
            format!("\"{name}\" is not a contact property of this account (add it with {hint})")
        })?;
        let value = ::audience::values::from_loose(def, &value)
            .map_err(|e| format!("\"{}\" {e}", def.name))?;
        out.insert(name, value);
    }
    Ok(out)
}

/// Store refusals as field errors (`Invalid` names its field); the rest as usual.
pub(crate) fn refused(err: StoreError) -> ApiError {
    match err {
        StoreError::Invalid { field, reason } => invalid(field, reason),
        err => err.into(),
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
