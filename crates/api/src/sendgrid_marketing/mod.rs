//! A compatible subset of SendGrid's v3 Marketing and Templates APIs, so that customer code
//! written against SendGrid (its official clients included) manages contacts, lists,
//! custom fields and dynamic templates here unchanged:
//!
//! - [`contacts`]: `PUT /v3/marketing/contacts` (an upsert job, done before the answer and
//!   kept for `GET /v3/marketing/contacts/imports/{id}`), contact count and search by email;
//! - [`lists`]: `/v3/marketing/lists` and a list's contact count and removals;
//! - [`fields`]: `/v3/marketing/field_definitions` (custom fields are the tenant's declared
//!   properties; a field's id is its name);
//! - [`templates`]: `/v3/templates` with versions (dynamic templates, in the Handlebars
//!   subset; `d-` ids name them in `/v3/mail/send`).
//!
//! Authentication is SendGrid's Bearer key; errors are SendGrid's
//! `{"errors": [{"field", "message"}]}`. Another tenant's objects are 404 like unknown ones.

pub mod contacts;
pub mod fields;
pub mod lists;
pub mod templates;

use std::sync::Arc;

use axum::routing::{get, post};

use crate::ApiState;
use crate::stored_templates::TemplatesStore;

/// SendGrid's times: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn time(ms: i64) -> String {
    jiff::Timestamp::from_second(ms.div_euclid(1000))
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The SendGrid routes.
pub fn routes<S: TemplatesStore>() -> axum::Router<Arc<ApiState<S>>> {
    axum::Router::new()
        .route(
            "/v3/marketing/contacts",
            axum::routing::put(contacts::upsert::<S>),
        )
        .route("/v3/marketing/contacts/count", get(contacts::count::<S>))
        .route(
            "/v3/marketing/contacts/search/emails",
            post(contacts::search_emails::<S>),
        )
        .route(
            "/v3/marketing/contacts/imports/{id}",
            get(contacts::job::<S>),
        )
        .route(
            "/v3/marketing/lists",
            get(lists::all::<S>).post(lists::add::<S>),
        )
        .route(
            "/v3/marketing/lists/{id}",
            get(lists::get::<S>)
                .patch(lists::rename::<S>)
                .delete(lists::remove::<S>),
        )
        .route(
            "/v3/marketing/lists/{id}/contacts/count",
            get(lists::count::<S>),
        )
        .route(
            "/v3/marketing/lists/{id}/contacts",
            axum::routing::delete(lists::remove_contacts::<S>),
        )
        .route(
            "/v3/marketing/field_definitions",
            get(fields::all::<S>).post(fields::add::<S>),
        )
        .route(
            "/v3/marketing/field_definitions/{id}",
            axum::routing::delete(fields::remove::<S>),
        )
        .route(
            "/v3/templates",
            get(templates::all::<S>).post(templates::add::<S>),
        )
        .route(
            "/v3/templates/{id}",
            get(templates::get::<S>).delete(templates::remove::<S>),
        )
        .route(
            "/v3/templates/{id}/versions",
            post(templates::add_version::<S>),
        )
        .route(
            "/v3/templates/{id}/versions/{version}",
            get(templates::get_version::<S>).patch(templates::update_version::<S>),
        )
        .route(
            "/v3/templates/{id}/versions/{version}/activate",
            post(templates::activate::<S>),
        )
}
