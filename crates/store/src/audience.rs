//! The audience's records: property declarations, contacts, lists and memberships
//! ([`AudienceStore`]). Values reach the store already checked against the declarations (the
//! `audience` crate does that); the store keeps list counts right as memberships change.

use std::future::Future;

use serde_json::{Map, Value};

use crate::StoreError;

/// What a declared property holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyKind {
    Text,
    Number,
    /// Stored as Unix milliseconds; shown as RFC 3339.
    DateTime,
    Boolean,
    /// One of the listed values.
    Choice(Vec<String>),
}

impl PropertyKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            PropertyKind::Text => "text",
            PropertyKind::Number => "number",
            PropertyKind::DateTime => "datetime",
            PropertyKind::Boolean => "boolean",
            PropertyKind::Choice(_) => "choice",
        }
    }
}

/// A property a tenant declared for its contacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyDef {
    /// Lower case letters, digits and `_`, starting with a letter; at most 64.
    pub name: String,
    pub kind: PropertyKind,
    pub created_ms: i64,
}

/// A contact as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: i64,
    pub address: String,
    pub timezone: Option<String>,
    pub locale: Option<String>,
    pub country: Option<String>,
    /// Declared properties with values (see the `contacts` table for their encoding).
    pub properties: Map<String, Value>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A contact to add or update: fields left `None` keep their stored value; a property
/// given as `null` is cleared.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactInput {
    /// Normalised already (trimmed, lower case).
    pub address: String,
    pub timezone: Option<String>,
    pub locale: Option<String>,
    pub country: Option<String>,
    pub properties: Map<String, Value>,
}

/// What an upsert does to contacts that exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Leave them as they are (add new ones only).
    Keep,
    /// Update them with the given fields.
    Update,
}

/// How many contacts an upsert added, updated, or left alone; their ids in input order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Upserted {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub ids: Vec<i64>,
}

/// A list of contacts, with counts kept as members change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactList {
    pub id: String,
    pub name: String,
    /// New members are unconfirmed until they confirm.
    pub double_opt_in: bool,
    pub subscribed: i64,
    pub unconfirmed: i64,
    pub unsubscribed: i64,
    pub created_ms: i64,
    /// The confirmation mail of a double opt-in list, and the form's page after.
    pub confirmation: Option<ListConfirmation>,
}

/// What a double opt-in list sends to a new member, and where its form leads after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListConfirmation {
    /// An address on one of the tenant's sending domains.
    pub from: String,
    pub subject: String,
    /// Plain text; `{{ confirm_url }}` is replaced by the member's link.
    pub text: String,
    /// Where the subscription form sends people after they send it.
    pub redirect: Option<String>,
}

/// A contact's standing on a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    Subscribed,
    Unconfirmed,
    Unsubscribed,
}

impl MemberStatus {
    pub const ALL: [MemberStatus; 3] = [
        MemberStatus::Subscribed,
        MemberStatus::Unconfirmed,
        MemberStatus::Unsubscribed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Subscribed => "subscribed",
            MemberStatus::Unconfirmed => "unconfirmed",
            MemberStatus::Unsubscribed => "unsubscribed",
        }
    }

    pub fn parse(text: &str) -> Option<MemberStatus> {
        MemberStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// How and when a contact came to be on a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// `api`, `import`, `form`, `console`...
    pub source: String,
    pub time_ms: i64,
    /// The network address consent came from, when known.
    pub address: Option<String>,
    /// When a double opt-in was confirmed.
    pub confirmed_ms: Option<i64>,
}

impl Consent {
    /// Consent given now-ish from `source`, from `address` when known; not yet a
    /// confirmation.
    pub fn given(source: &str, time_ms: i64, address: Option<String>) -> Consent {
        Consent {
            source: source.to_string(),
            time_ms,
            address,
            confirmed_ms: None,
        }
    }
}

/// A contact's membership of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub list_id: String,
    pub contact_id: i64,
    pub status: MemberStatus,
    pub consent: Consent,
    pub updated_ms: i64,
}

/// Which contacts to list: by address prefix, after an id (pages), at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactQuery {
    pub prefix: Option<String>,
    pub after_id: Option<i64>,
    pub limit: u32,
}

/// A segment saved by a tenant: its text, checked again whenever it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSegment {
    pub id: String,
    pub name: String,
    pub query: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

pub trait AudienceStore: Send + Sync {
    /// Declares a property. A name taken already is an `Invalid` error naming `name`.
    fn add_property(
        &self,
        tenant_id: &str,
        name: &str,
        kind: &PropertyKind,
    ) -> impl Future<Output = Result<PropertyDef, StoreError>> + Send;
    /// A tenant's declarations, by name.
    fn properties(
        &self,
        tenant_id: &str,
    ) -> impl Future<Output = Result<Vec<PropertyDef>, StoreError>> + Send;
    /// Removes a declaration and its values from every contact. False when there was none.
    fn remove_property(
        &self,
        tenant_id: &str,
        name: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Adds contacts (and updates existing ones when `existing` says so), in one
    /// transaction. Addresses repeated in `contacts` are folded (the last one wins).
    fn upsert_contacts(
        &self,
        tenant_id: &str,
        contacts: &[ContactInput],
        existing: Existing,
    ) -> impl Future<Output = Result<Upserted, StoreError>> + Send;
    /// A contact by id (digits) or address.
    fn contact(
        &self,
        tenant_id: &str,
        id_or_address: &str,
    ) -> impl Future<Output = Result<Option<Contact>, StoreError>> + Send;
    /// Contacts by id.
    fn contacts(
        &self,
        tenant_id: &str,
        query: &ContactQuery,
    ) -> impl Future<Output = Result<Vec<Contact>, StoreError>> + Send;
    /// How many contacts the tenant has.
    fn contact_count(
        &self,
        tenant_id: &str,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// Removes a contact and its memberships (list counts follow). False when none.
    fn remove_contact(
        &self,
        tenant_id: &str,
        id: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Makes a list; names are unique per tenant.
    fn add_list(
        &self,
        tenant_id: &str,
        name: &str,
        double_opt_in: bool,
    ) -> impl Future<Output = Result<ContactList, StoreError>> + Send;
    fn lists(
        &self,
        tenant_id: &str,
    ) -> impl Future<Output = Result<Vec<ContactList>, StoreError>> + Send;
    /// A list by id or name.
    fn list(
        &self,
        tenant_id: &str,
        id_or_name: &str,
    ) -> impl Future<Output = Result<Option<ContactList>, StoreError>> + Send;
    /// A list by id whatever its tenant, with the tenant's id: for the public subscription
    /// form and confirmation links, which carry a list id and no key.
    fn public_list(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<(String, ContactList)>, StoreError>> + Send;
    /// Sets (or clears) a list's confirmation mail and form redirect. False when the tenant
    /// has no such list.
    fn set_list_confirmation(
        &self,
        tenant_id: &str,
        list_id: &str,
        confirmation: Option<&ListConfirmation>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Renames a list (names are unique per tenant). False when the tenant has no such list.
    fn rename_list(
        &self,
        tenant_id: &str,
        id: &str,
        name: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Removes a list and its memberships (not the contacts). False when none.
    fn remove_list(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Sets the status of contacts (by id) on a list, recording consent for new members
    /// and confirmations; the list's counts follow in the same transaction. Ids of other
    /// tenants' contacts are skipped. Returns the list as it stands after.
    fn set_members(
        &self,
        tenant_id: &str,
        list_id: &str,
        members: &[(i64, MemberStatus)],
        consent: &Consent,
    ) -> impl Future<Output = Result<ContactList, StoreError>> + Send;
    /// As [`AudienceStore::set_members`], but a contact that unsubscribed from the list
    /// stays unsubscribed (imports and bulk adds bring no new consent).
    fn add_members(
        &self,
        tenant_id: &str,
        list_id: &str,
        members: &[(i64, MemberStatus)],
        consent: &Consent,
    ) -> impl Future<Output = Result<ContactList, StoreError>> + Send;
    /// Removes contacts from a list (counts follow). Returns the list as it stands after.
    fn remove_members(
        &self,
        tenant_id: &str,
        list_id: &str,
        contact_ids: &[i64],
    ) -> impl Future<Output = Result<ContactList, StoreError>> + Send;
    /// A list's members with their contacts, by contact id after `after_id`, optionally of
    /// one status.
    fn members(
        &self,
        tenant_id: &str,
        list_id: &str,
        status: Option<MemberStatus>,
        after_id: Option<i64>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(Contact, Membership)>, StoreError>> + Send;
    /// How many of the tenant's contacts a checked segment selects.
    fn segment_count(
        &self,
        tenant_id: &str,
        condition: &Condition,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// The contacts a checked segment selects, by id after `after_id`.
    fn segment_contacts(
        &self,
        tenant_id: &str,
        condition: &Condition,
        after_id: Option<i64>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Contact>, StoreError>> + Send;
    /// Saves a segment's text under a name (unique per tenant); replaces the text of an
    /// existing one of that name.
    fn save_segment(
        &self,
        tenant_id: &str,
        name: &str,
        query: &str,
    ) -> impl Future<Output = Result<SavedSegment, StoreError>> + Send;
    fn segments(
        &self,
        tenant_id: &str,
    ) -> impl Future<Output = Result<Vec<SavedSegment>, StoreError>> + Send;
    /// A saved segment by id or name.
    fn segment(
        &self,
        tenant_id: &str,
        id_or_name: &str,
    ) -> impl Future<Output = Result<Option<SavedSegment>, StoreError>> + Send;
    fn remove_segment(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The lists a contact is on.
    fn memberships(
        &self,
        tenant_id: &str,
        contact_id: i64,
    ) -> impl Future<Output = Result<Vec<Membership>, StoreError>> + Send;
}

/// A contact's own field or a declared property, as segments name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Address,
    Country,
    Timezone,
    Locale,
    /// When the contact was added (Unix ms).
    Created,
    Updated,
    /// A declared property (its name checked against the declarations).
    Property(String),
}

/// A comparison of a segment condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// Text contains (case-insensitive).
    Contains,
    /// Text starts with (case-insensitive).
    StartsWith,
    /// Equal to one of a list.
    In,
}

/// A value a segment compares with, already of the field's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Text(String),
    Number(f64),
    Bool(bool),
    /// Unix ms.
    Time(i64),
    /// `now() - <ms>`, evaluated when the segment is run.
    Ago(i64),
    List(Vec<String>),
}

/// A checked segment: what the `audience` crate's parser makes of a tenant's text, with
/// every name resolved; the store turns it into a parameterised query (the text never
/// becomes SQL).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    All,
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Compare {
        field: Field,
        op: Op,
        value: Operand,
    },
    /// The field has a value (`true`) or has none.
    IsSet {
        field: Field,
        set: bool,
    },
    /// On a list (by id) with a status.
    InList {
        list_id: String,
        status: MemberStatus,
    },
    /// Has an event of this kind (`opened`, `clicked`, `delivered`...) within the last
    /// `within_ms`.
    Engaged {
        kind: crate::EventKind,
        within_ms: i64,
    },
    /// On the tenant's suppression list (`true`) or not.
    Suppressed(bool),
}
