//! The OpenAPI description of contacts, lists and segments (merged into the API document
//! by [`crate::openapi`]); wire format only, the handlers check requests themselves.

use serde::Serialize;
use utoipa::ToSchema;

use crate::openapi::{Errors, ManageFailures, ReadFailures};

#[derive(Serialize, ToSchema)]
pub struct Property {
    pub name: String,
    /// text, number, datetime, boolean or choice.
    #[serde(rename = "type")]
    pub kind: String,
    pub choices: Option<Vec<String>>,
    pub created_ms: i64,
}

#[derive(Serialize, ToSchema)]
pub struct PropertyList {
    pub properties: Vec<Property>,
}

/// A property to declare: a lower-case name (letters, digits, `_`) and its type.
#[derive(Serialize, ToSchema)]
pub struct NewProperty {
    #[schema(example = "signed_up")]
    pub name: String,
    #[serde(rename = "type")]
    #[schema(example = "datetime")]
    pub kind: String,
    /// The allowed values of a choice.
    pub choices: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct Contact {
    pub id: i64,
    pub address: String,
    pub timezone: Option<String>,
    pub locale: Option<String>,
    pub country: Option<String>,
    /// Declared properties; date-times in RFC 3339.
    pub properties: serde_json::Value,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ContactPage {
    pub contacts: Vec<Contact>,
    /// Pass as `after` for the next page; null on the last.
    pub next: Option<i64>,
}

/// A contact to add or update: `null` properties are cleared, absent ones kept.
#[derive(Serialize, ToSchema)]
pub struct ContactInput {
    #[schema(format = Email, example = "ann@example.com")]
    pub address: String,
    #[schema(example = "Asia/Tokyo")]
    pub timezone: Option<String>,
    #[schema(example = "ja")]
    pub locale: Option<String>,
    #[schema(example = "JP")]
    pub country: Option<String>,
    pub properties: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct ContactUpserts {
    /// 1 to 10,000.
    pub contacts: Vec<ContactInput>,
    /// `update` (default) or `keep` existing contacts.
    pub existing: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Upserted {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// One per distinct address, in the order given.
    pub ids: Vec<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Consent {
    pub source: String,
    pub time_ms: i64,
    pub address: Option<String>,
    pub confirmed_ms: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ContactMembership {
    pub list_id: String,
    pub status: String,
    pub consent: Consent,
    pub updated_ms: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ContactSuppression {
    pub reason: String,
    pub created_ms: i64,
}

/// A contact with its lists and whether (and why) it is suppressed.
#[derive(Serialize, ToSchema)]
pub struct ContactDetail {
    pub id: i64,
    pub address: String,
    pub timezone: Option<String>,
    pub locale: Option<String>,
    pub country: Option<String>,
    pub properties: serde_json::Value,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub lists: Vec<ContactMembership>,
    pub suppressed: Option<ContactSuppression>,
}

#[derive(Serialize, ToSchema)]
pub struct ContactList {
    pub id: String,
    pub name: String,
    pub double_opt_in: bool,
    pub subscribed: i64,
    pub unconfirmed: i64,
    pub unsubscribed: i64,
    pub created_ms: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Lists {
    pub lists: Vec<ContactList>,
}

#[derive(Serialize, ToSchema)]
pub struct NewList {
    #[schema(example = "Newsletter")]
    pub name: String,
    pub double_opt_in: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct Member {
    pub contact: Contact,
    pub status: String,
    pub consent: Consent,
}

#[derive(Serialize, ToSchema)]
pub struct MemberPage {
    pub members: Vec<Member>,
    pub next: Option<i64>,
}

/// A contact id, or an address (made a contact if it is not one yet).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ContactRef {
    Id(i64),
    Address(String),
}

#[derive(Serialize, ToSchema)]
pub struct NewMembers {
    /// 1 to 10,000.
    pub contacts: Vec<ContactRef>,
    /// subscribed (default), unconfirmed (default on a double opt-in list) or unsubscribed.
    pub status: Option<String>,
    /// The subscriber's IP address when consent was given; the caller's otherwise.
    pub consent_address: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct GoneMembers {
    pub contacts: Vec<ContactRef>,
}

/// A segment's query, for example
/// `country = "JP" and signed_up > now() - 30d and opened(within: 90d)`.
#[derive(Serialize, ToSchema)]
pub struct SegmentQuery {
    #[schema(example = "country = \"JP\"")]
    pub query: String,
}

#[derive(Serialize, ToSchema)]
pub struct SegmentResult {
    pub count: i64,
    /// Up to 10 contacts it selects.
    pub sample: Vec<Contact>,
    pub elapsed_ms: u64,
}

#[derive(Serialize, ToSchema)]
pub struct NewSegment {
    #[schema(example = "Japan")]
    pub name: String,
    #[schema(example = "country = \"JP\"")]
    pub query: String,
}

#[derive(Serialize, ToSchema)]
pub struct Segment {
    pub id: String,
    pub name: String,
    pub query: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A saved segment with its count and sample now (or why it no longer checks).
#[derive(Serialize, ToSchema)]
pub struct SegmentDetail {
    pub id: String,
    pub name: String,
    pub query: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub count: Option<i64>,
    pub sample: Option<Vec<Contact>>,
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Segments {
    pub segments: Vec<Segment>,
}

#[utoipa::path(get, path = "/v1/contacts/properties", tag = "contacts",
    responses((status = 200, description = "Declared properties, by name", body = PropertyList), ReadFailures))]
#[allow(dead_code)]
pub(crate) fn list_properties() {}

#[utoipa::path(post, path = "/v1/contacts/properties", tag = "contacts", request_body = NewProperty,
    responses(
        (status = 201, description = "Declared", body = Property),
        (status = 400, description = "Invalid, or the name is taken", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn add_property() {}

#[utoipa::path(delete, path = "/v1/contacts/properties/{name}", tag = "contacts",
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "Removed, with every contact's value"),
        (status = 404, description = "Not declared", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn remove_property() {}

#[utoipa::path(get, path = "/v1/contacts", tag = "contacts",
    params(
        ("prefix" = Option<String>, Query, description = "Addresses starting with"),
        ("after" = Option<i64>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
    ),
    responses(
        (status = 200, description = "Contacts by id", body = ContactPage),
        (status = 400, description = "Invalid parameter", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn list_contacts() {}

#[utoipa::path(post, path = "/v1/contacts", tag = "contacts", request_body = ContactUpserts,
    responses(
        (status = 200, description = "Added and updated (all or none)", body = Upserted),
        (status = 400, description = "Invalid contacts, each error naming its field", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn upsert_contacts() {}

#[utoipa::path(get, path = "/v1/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "A contact id or address")),
    responses(
        (status = 200, description = "The contact, its lists and its suppression", body = ContactDetail),
        (status = 404, description = "Not a contact of this account", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn get_contact() {}

#[utoipa::path(delete, path = "/v1/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "A contact id or address")),
    responses(
        (status = 204, description = "Removed with its memberships"),
        (status = 404, description = "Not a contact of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn remove_contact() {}

#[utoipa::path(get, path = "/v1/lists", tag = "contacts",
    responses((status = 200, description = "Lists with their counts", body = Lists), ReadFailures))]
#[allow(dead_code)]
pub(crate) fn list_lists() {}

#[utoipa::path(post, path = "/v1/lists", tag = "contacts", request_body = NewList,
    responses(
        (status = 201, description = "Made", body = ContactList),
        (status = 400, description = "Invalid, or the name is taken", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn add_list() {}

#[utoipa::path(get, path = "/v1/lists/{id}", tag = "contacts",
    params(("id" = String, Path, description = "A list id or name")),
    responses(
        (status = 200, description = "The list", body = ContactList),
        (status = 404, description = "Not a list of this account", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn get_list() {}

#[utoipa::path(delete, path = "/v1/lists/{id}", tag = "contacts",
    params(("id" = String, Path, description = "A list id or name")),
    responses(
        (status = 204, description = "Removed (its contacts stay)"),
        (status = 404, description = "Not a list of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn remove_list() {}

#[utoipa::path(get, path = "/v1/lists/{id}/members", tag = "contacts",
    params(
        ("id" = String, Path, description = "A list id or name"),
        ("status" = Option<String>, Query, description = "subscribed, unconfirmed or unsubscribed"),
        ("after" = Option<i64>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
    ),
    responses(
        (status = 200, description = "Members by contact id", body = MemberPage),
        (status = 400, description = "Invalid parameter", body = Errors),
        (status = 404, description = "Not a list of this account", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn list_members() {}

#[utoipa::path(post, path = "/v1/lists/{id}/members", tag = "contacts", request_body = NewMembers,
    params(("id" = String, Path, description = "A list id or name")),
    responses(
        (status = 200, description = "Set; the list with its new counts", body = ContactList),
        (status = 400, description = "Invalid request", body = Errors),
        (status = 404, description = "Not a list of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn add_members() {}

#[utoipa::path(post, path = "/v1/lists/{id}/members/remove", tag = "contacts", request_body = GoneMembers,
    params(("id" = String, Path, description = "A list id or name")),
    responses(
        (status = 200, description = "Removed; the list with its new counts", body = ContactList),
        (status = 400, description = "Invalid request", body = Errors),
        (status = 404, description = "Not a list of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn remove_members() {}

#[utoipa::path(post, path = "/v1/segments/preview", tag = "contacts", request_body = SegmentQuery,
    responses(
        (status = 200, description = "How many contacts it selects, and some of them", body = SegmentResult),
        (status = 400, description = "The query does not check: `query` error with the column", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn preview_segment() {}

#[utoipa::path(get, path = "/v1/segments", tag = "contacts",
    responses((status = 200, description = "Saved segments, by name", body = Segments), ReadFailures))]
#[allow(dead_code)]
pub(crate) fn list_segments() {}

#[utoipa::path(post, path = "/v1/segments", tag = "contacts", request_body = NewSegment,
    responses(
        (status = 201, description = "Saved (a name in use has its query replaced)", body = Segment),
        (status = 400, description = "Invalid, or the query does not check", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn save_segment() {}

#[utoipa::path(get, path = "/v1/segments/{id}", tag = "contacts",
    params(("id" = String, Path, description = "A segment id or name")),
    responses(
        (status = 200, description = "The segment with its count now", body = SegmentDetail),
        (status = 404, description = "Not a segment of this account", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn get_segment() {}

#[utoipa::path(delete, path = "/v1/segments/{id}", tag = "contacts",
    params(("id" = String, Path, description = "A segment id or name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "Not a segment of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn remove_segment() {}

/// An import job and where it stands.
#[derive(Serialize, ToSchema)]
pub struct ImportJob {
    pub id: String,
    pub name: String,
    /// queued, running, done or failed.
    pub state: String,
    /// utf-8 or shift_jis, told from the file.
    pub encoding: String,
    pub existing: String,
    pub list_id: Option<String>,
    pub total_bytes: i64,
    pub done_bytes: i64,
    pub percent: i64,
    /// Records read so far (after the header).
    pub rows: i64,
    pub added: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub refused: i64,
    /// Imported addresses that are on the suppression list (kept, never mailed).
    pub suppressed: i64,
    pub failure: Option<String>,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ImportJobs {
    pub imports: Vec<ImportJob>,
}

#[utoipa::path(post, path = "/v1/imports", tag = "contacts",
    request_body(content = String, content_type = "text/csv", description = "The CSV file (RFC 4180; UTF-8 with or without BOM, or Shift_JIS). The header names the columns: email, timezone, locale, country and declared properties are mapped by name."),
    params(
        ("name" = Option<String>, Query, description = "What to call the file"),
        ("existing" = Option<String>, Query, description = "update (default) or keep existing contacts"),
        ("list" = Option<String>, Query, description = "A list (id or name) to put every imported contact on"),
    ),
    responses(
        (status = 202, description = "Stored and queued; follow it with GET /v1/imports/{id}", body = ImportJob),
        (status = 400, description = "No address column, an unknown property or list, an empty file", body = Errors),
        (status = 413, description = "Larger than the imports' limit", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn upload_import() {}

#[utoipa::path(get, path = "/v1/imports", tag = "contacts",
    responses((status = 200, description = "The newest 100 imports", body = ImportJobs), ReadFailures))]
#[allow(dead_code)]
pub(crate) fn list_imports() {}

#[utoipa::path(get, path = "/v1/imports/{id}", tag = "contacts",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The job and its progress", body = ImportJob),
        (status = 404, description = "Not an import of this account", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn get_import() {}

#[utoipa::path(get, path = "/v1/imports/{id}/errors", tag = "contacts",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The refused rows: `line,reason` per row (CSV)", content_type = "text/csv", body = String),
        (status = 404, description = "Not an import of this account", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn import_errors() {}

#[utoipa::path(get, path = "/v1/contacts/export", tag = "contacts",
    params(("segment" = Option<String>, Query, description = "A segment's query; none: every contact")),
    responses(
        (status = 200, description = "CSV: email, timezone, locale, country, every declared property, suppressed (yes or empty); streamed", content_type = "text/csv", body = String),
        (status = 400, description = "The segment does not check", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn export_contacts() {}

/// A double opt-in list's confirmation mail; the text carries `{{ confirm_url }}`.
#[derive(Serialize, ToSchema)]
pub struct ListConfirmation {
    /// An address on one of the account's sending domains.
    #[schema(example = "news@example.com")]
    pub from: String,
    #[schema(example = "Please confirm your subscription")]
    pub subject: String,
    #[schema(example = "Confirm here: {{ confirm_url }}")]
    pub text: String,
    /// Where the subscription form sends people after they send it.
    pub redirect: Option<String>,
}

/// The subscription form's fields.
#[derive(Serialize, ToSchema)]
pub struct FormFields {
    pub email: String,
    /// The honeypot: leave it out or empty (bots fill it; such posts are dropped).
    pub website: Option<String>,
}

#[utoipa::path(post, path = "/v1/lists/{id}/confirmation", tag = "contacts", request_body = ListConfirmation,
    params(("id" = String, Path, description = "A list id or name")),
    responses(
        (status = 200, description = "Set; the list", body = ContactList),
        (status = 400, description = "Invalid, or `from` is not on a sending domain of the account", body = Errors),
        (status = 404, description = "Not a list of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn set_list_confirmation() {}

#[utoipa::path(delete, path = "/v1/lists/{id}/confirmation", tag = "contacts",
    params(("id" = String, Path, description = "A list id or name")),
    responses(
        (status = 204, description = "Cleared"),
        (status = 404, description = "Not a list of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn clear_list_confirmation() {}

#[utoipa::path(post, path = "/v1/forms/{id}", tag = "contacts", security(()),
    request_body(content = FormFields, content_type = "application/x-www-form-urlencoded"),
    params(("id" = String, Path, description = "The list's id (public)")),
    responses(
        (status = 200, description = "Taken (a confirmation mail is sent on a double opt-in list)", content_type = "text/html", body = String),
        (status = 303, description = "Taken; to the list's redirect page"),
        (status = 404, description = "Not a list", content_type = "text/html", body = String),
        (status = 415, description = "Not a form post", body = Errors),
        (status = 422, description = "Not an e-mail address", content_type = "text/html", body = String),
        (status = 429, description = "Too many posts from this address (5 a minute)", content_type = "text/html", body = String),
        (status = 503, description = "The list has no confirmation mail yet, or try again", content_type = "text/html", body = String),
    ))]
#[allow(dead_code)]
pub(crate) fn subscribe_form() {}

#[utoipa::path(get, path = "/v1/confirm/{token}", tag = "contacts", security(()),
    params(("token" = String, Path, description = "From a confirmation mail")),
    responses(
        (status = 200, description = "A page with the confirm button", content_type = "text/html", body = String),
        (status = 404, description = "Not a valid or unexpired link", content_type = "text/html", body = String),
    ))]
#[allow(dead_code)]
pub(crate) fn confirm_page() {}

#[utoipa::path(post, path = "/v1/confirm/{token}", tag = "contacts", security(()),
    params(("token" = String, Path, description = "From a confirmation mail")),
    responses(
        (status = 200, description = "Confirmed: the member is subscribed", content_type = "text/html", body = String),
        (status = 404, description = "Not a valid or unexpired link", content_type = "text/html", body = String),
        (status = 503, description = "Could not be recorded; try again", content_type = "text/html", body = String),
    ))]
#[allow(dead_code)]
pub(crate) fn confirm_subscription() {}

#[derive(Serialize, ToSchema)]
pub struct StoredTemplate {
    pub id: String,
    pub name: String,
    /// native, mailjet or handlebars.
    pub dialect: String,
    pub active_version: Option<i64>,
    pub created_ms: i64,
    /// The number Mailjet's API (`TemplateID`) knows it by.
    pub mailjet_id: i64,
    /// The id SendGrid's API (`template_id`) knows it by.
    #[schema(example = "d-0123456789abcdef")]
    pub sendgrid_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct StoredTemplates {
    pub templates: Vec<StoredTemplate>,
}

#[derive(Serialize, ToSchema)]
pub struct NewTemplate {
    #[schema(example = "Welcome")]
    pub name: String,
    /// native (default), mailjet or handlebars.
    pub dialect: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NewTemplateVersion {
    #[schema(example = "Welcome, {{name}}")]
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
    /// Data previews use, and that the version must render with.
    pub test_data: Option<serde_json::Value>,
    /// Make it the active version (the first version always is).
    pub active: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct StoredTemplateVersion {
    pub version: i64,
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
    pub test_data: serde_json::Value,
    pub created_ms: i64,
    /// When a message first used it (from then on it cannot change).
    pub used_ms: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct TemplateDetail {
    pub id: String,
    pub name: String,
    pub dialect: String,
    pub active_version: Option<i64>,
    pub created_ms: i64,
    pub mailjet_id: i64,
    pub sendgrid_id: String,
    pub versions: Vec<StoredTemplateVersion>,
}

#[derive(Serialize, ToSchema)]
pub struct PreviewRequest {
    /// Default: the version's test data.
    pub data: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct Rendered {
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
}

#[utoipa::path(get, path = "/v1/templates", tag = "templates",
    responses((status = 200, description = "Stored templates, by name", body = StoredTemplates), ReadFailures))]
#[allow(dead_code)]
pub(crate) fn list_templates() {}

#[utoipa::path(post, path = "/v1/templates", tag = "templates", request_body = NewTemplate,
    responses(
        (status = 201, description = "Made", body = StoredTemplate),
        (status = 400, description = "Invalid, or the name is taken", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn add_template() {}

#[utoipa::path(get, path = "/v1/templates/{id}", tag = "templates",
    params(("id" = String, Path, description = "A template id or name")),
    responses(
        (status = 200, description = "The template with its versions", body = TemplateDetail),
        (status = 404, description = "Not a template of this account", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn get_template() {}

#[utoipa::path(delete, path = "/v1/templates/{id}", tag = "templates",
    params(("id" = String, Path, description = "A template id or name")),
    responses(
        (status = 204, description = "Removed with its versions"),
        (status = 404, description = "Not a template of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn remove_template() {}

#[utoipa::path(post, path = "/v1/templates/{id}/versions", tag = "templates", request_body = NewTemplateVersion,
    params(("id" = String, Path, description = "A template id or name")),
    responses(
        (status = 201, description = "Added", body = StoredTemplateVersion),
        (status = 400, description = "Invalid, or it does not render with its test data (the error names the part)", body = Errors),
        (status = 404, description = "Not a template of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn add_template_version() {}

#[utoipa::path(post, path = "/v1/templates/{id}/versions/{version}/activate", tag = "templates",
    params(("id" = String, Path, description = "A template id or name"), ("version" = i64, Path)),
    responses(
        (status = 200, description = "Active", body = StoredTemplate),
        (status = 400, description = "Not a version number", body = Errors),
        (status = 404, description = "No such template or version", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn activate_template_version() {}

/// A version's new content.
#[derive(Serialize, ToSchema)]
pub struct ChangedTemplateVersion {
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
    pub test_data: Option<serde_json::Value>,
}

#[utoipa::path(put, path = "/v1/templates/{id}/versions/{version}", tag = "templates", request_body = ChangedTemplateVersion,
    params(("id" = String, Path, description = "A template id or name"), ("version" = i64, Path)),
    responses(
        (status = 200, description = "Changed", body = StoredTemplateVersion),
        (status = 400, description = "Invalid, or it does not render with its test data", body = Errors),
        (status = 404, description = "No such template or version", body = Errors),
        (status = 409, description = "A message used this version: add a new one", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn update_template_version() {}

#[utoipa::path(post, path = "/v1/templates/{id}/versions/{version}/preview", tag = "templates", request_body = PreviewRequest,
    params(("id" = String, Path, description = "A template id or name"), ("version" = i64, Path)),
    responses(
        (status = 200, description = "Rendered as a message would carry it", body = Rendered),
        (status = 400, description = "Invalid data, or a part does not render (the error names it)", body = Errors),
        (status = 404, description = "No such template or version", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn preview_template_version() {}
