//! A compatible subset of Mailjet's v3 REST API for the audience and templates, so that
//! customer code written against Mailjet (its official clients included) manages contacts,
//! lists, properties, segments and templates here unchanged:
//!
//! - [`contacts`]: `contact`, `contactdata`, `contactmetadata`;
//! - [`lists`]: `contactslist`, `listrecipient`, `contactslist/{id}/managemanycontacts`
//!   and `contact/managemanycontacts`;
//! - [`csv`]: `DATA/contactslist/{id}/CSVData/text:plain`, `csvimport`, and the error file;
//! - [`filters`]: `contactfilter` (Mailjet's segment expressions, translated);
//! - [`templates`]: `template` and `template/{id}/detailcontent`;
//! - [`campaigns`]: `campaigndraft` (with `detailcontent`, `test`, `send`, `schedule`) and
//!   `statcounters` for campaigns.
//!
//! Answers have Mailjet's envelope (`{"Count", "Data", "Total"}`) and errors its shape
//! (`{"ErrorInfo", "ErrorMessage", "StatusCode"}`). Mailjet names objects by integer: lists,
//! templates, properties, segments and jobs get a number on first use
//! ([`store::CompatStore`]); contacts use their own. Authentication is Mailjet's Basic
//! scheme, as for `/v3.1/send`. Another tenant's objects are 404 like unknown ones.

pub mod campaigns;
pub mod contacts;
pub mod csv;
pub mod filters;
pub mod lists;
pub mod templates;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use store::{ApiKey, CompatKind};

use crate::ApiState;
use crate::auth::Needs;
use crate::campaigns::CampaignsStore;
use crate::error::ApiError;

/// Everything the Mailjet handlers need.
pub trait MjStore: CampaignsStore {}
impl<T: CampaignsStore> MjStore for T {}

/// An error in Mailjet's shape.
#[derive(Debug)]
pub struct MjError {
    pub status: StatusCode,
    pub message: String,
}

impl MjError {
    pub fn bad(message: impl Into<String>) -> MjError {
        MjError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// Mailjet's duplicate error (MJ18) for a `resource` whose `field` has `value` already.
    pub fn exists(resource: &str, value: impl std::fmt::Display, field: &str) -> MjError {
        MjError::bad(format!(
            "MJ18 A {resource} resource with value \"{value}\" for {field} already exists."
        ))
    }

    /// A store refusal of a name already taken as Mailjet's MJ18; other errors as usual.
    pub fn name_taken(resource: &str, name: &str) -> impl FnOnce(store::StoreError) -> MjError {
        let (resource, name) = (resource.to_string(), name.to_string());
        move |err| match err {
            store::StoreError::Invalid { reason, .. } if reason.contains("exists") => {
                MjError::exists(&resource, &name, "Name")
            }
            err => err.into(),
        }
    }

    pub fn not_found() -> MjError {
        MjError {
            status: StatusCode::NOT_FOUND,
            message: "Object not found".into(),
        }
    }
}

impl IntoResponse for MjError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({
                "ErrorInfo": "",
                "ErrorMessage": self.message,
                "StatusCode": self.status.as_u16(),
            })),
        )
            .into_response()
    }
}

impl From<ApiError> for MjError {
    fn from(err: ApiError) -> MjError {
        let message = err
            .errors
            .iter()
            .map(|e| match &e.field {
                Some(field) => format!("\"{field}\" {}", e.message),
                None => e.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        MjError {
            status: err.status,
            message,
        }
    }
}

impl From<store::StoreError> for MjError {
    fn from(err: store::StoreError) -> MjError {
        crate::contacts::refused(err).into()
    }
}

/// The caller's key (Mailjet's Basic scheme), checked for `N`'s scope.
pub struct MjKey<N> {
    pub key: ApiKey,
    _scope: std::marker::PhantomData<N>,
}

impl<S, N> axum::extract::FromRequestParts<Arc<ApiState<S>>> for MjKey<N>
where
    S: store::ControlStore + store::EventStore + 'static,
    N: Needs,
{
    type Rejection = MjError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<ApiState<S>>,
    ) -> Result<Self, MjError> {
        let key =
            crate::auth::authorize_mailjet(&state.tenancy.store, &parts.headers, N::SCOPE).await?;
        Ok(MjKey {
            key,
            _scope: std::marker::PhantomData,
        })
    }
}

/// Mailjet's envelope around objects.
pub fn data(items: Vec<Value>, total: usize) -> Response {
    Json(json!({ "Count": items.len(), "Data": items, "Total": total })).into_response()
}

/// The envelope of an object just made (201).
pub fn created(item: Value) -> Response {
    (
        StatusCode::CREATED,
        Json(json!({ "Count": 1, "Data": [item], "Total": 1 })),
    )
        .into_response()
}

/// Mailjet's times: RFC 3339 in UTC to the second; "" for none.
pub fn time(ms: Option<i64>) -> String {
    ms.and_then(|ms| jiff::Timestamp::from_second(ms.div_euclid(1000)).ok())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// `Limit` (default 10; 0 or more than 1000 mean 1000) and `Offset` of a listing.
pub struct Page {
    pub limit: usize,
    pub offset: usize,
}

impl Page {
    pub fn from(query: &HashMap<String, String>) -> Result<Page, MjError> {
        let number = |name: &str, default: usize| -> Result<usize, MjError> {
            match query.get(name) {
                None => Ok(default),
                Some(text) => text
                    .parse::<usize>()
                    .map_err(|_| MjError::bad(format!("\"{name}\" must be a whole number"))),
            }
        };
        let limit = match number("Limit", 10)? {
            0 => 1000,
            n => n.min(1000),
        };
        Ok(Page {
            limit,
            offset: number("Offset", 0)?,
        })
    }

    /// This page's share of the next batch of a walk in order: `offset` items skipped in
    /// all, then up to `limit` kept. True once the page is full (the walk can stop).
    pub fn take<T>(&self, skipped: &mut usize, out: &mut Vec<T>, batch: Vec<T>) -> bool {
        for item in batch {
            if *skipped < self.offset {
                *skipped += 1;
            } else if out.len() < self.limit {
                out.push(item);
            } else {
                return true;
            }
        }
        out.len() >= self.limit
    }

    pub fn apply<T>(&self, items: Vec<T>) -> (Vec<T>, usize) {
        let total = items.len();
        let page = items
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .collect();
        (page, total)
    }
}

/// A JSON object body.
pub fn body(bytes: &[u8]) -> Result<Map<String, Value>, MjError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(MjError::bad(
            "Malformed JSON, please review the syntax and properties types.",
        )),
    }
}

/// A string property of a body.
pub fn text<'a>(map: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, MjError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(MjError::bad(format!("\"{name}\" must be a string"))),
    }
}

/// An integer given as a number or as digits.
pub fn integer(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Numbers for objects of one kind.
pub async fn numbers<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    kind: CompatKind,
    ids: &[String],
) -> Result<Vec<i64>, MjError> {
    Ok(state.tenancy.store.numbers(tenant_id, kind, ids).await?)
}

pub async fn number<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    kind: CompatKind,
    id: &str,
) -> Result<i64, MjError> {
    let found = numbers(state, tenant_id, kind, &[id.to_string()]).await?;
    found.first().copied().ok_or_else(MjError::not_found)
}

/// The object a number in a path names, or 404.
pub async fn object<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    kind: CompatKind,
    number: &str,
) -> Result<String, MjError> {
    let Ok(number) = number.parse::<i64>() else {
        return Err(MjError::not_found());
    };
    state
        .tenancy
        .store
        .object(tenant_id, kind, number)
        .await?
        .ok_or_else(MjError::not_found)
}

/// The Mailjet routes.
pub fn routes<S: MjStore>() -> axum::Router<Arc<ApiState<S>>> {
    axum::Router::new()
        .route(
            "/v3/REST/contactslist",
            get(lists::all::<S>).post(lists::add::<S>),
        )
        .route(
            "/v3/REST/contactslist/{id}",
            get(lists::get::<S>)
                .put(lists::rename::<S>)
                .delete(lists::remove::<S>),
        )
        .route(
            "/v3/REST/contactslist/{id}/managemanycontacts",
            post(lists::manage_many::<S>),
        )
        .route(
            "/v3/REST/contactslist/{id}/managemanycontacts/{job}",
            get(lists::many_job::<S>),
        )
        .route(
            "/v3/REST/contact/managemanycontacts",
            post(lists::manage_many_lists::<S>),
        )
        .route(
            "/v3/REST/contact/managemanycontacts/{job}",
            get(lists::many_lists_job::<S>),
        )
        .route(
            "/v3/REST/listrecipient",
            get(lists::recipients::<S>).post(lists::add_recipient::<S>),
        )
        .route(
            "/v3/REST/listrecipient/{id}",
            get(lists::recipient::<S>)
                .put(lists::update_recipient::<S>)
                .delete(lists::remove_recipient::<S>),
        )
        .route(
            "/v3/REST/contact",
            get(contacts::all::<S>).post(contacts::add::<S>),
        )
        .route(
            "/v3/REST/contact/{id}",
            get(contacts::get::<S>).put(contacts::update::<S>),
        )
        .route(
            "/v3/REST/contact/{id}/getcontactslists",
            get(contacts::contact_lists::<S>),
        )
        .route(
            "/v3/REST/contactdata/{id}",
            get(contacts::contact_data::<S>).put(contacts::set_data::<S>),
        )
        .route(
            "/v3/REST/contactmetadata",
            get(contacts::metadata::<S>).post(contacts::add_metadata::<S>),
        )
        .route(
            "/v3/REST/contactmetadata/{id}",
            get(contacts::one_metadata::<S>).delete(contacts::remove_metadata::<S>),
        )
        .route(
            "/v3/DATA/contactslist/{id}/CSVData/{kind}",
            post(csv::upload::<S>).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/v3/REST/csvimport", post(csv::start::<S>))
        .route("/v3/REST/csvimport/{id}", get(csv::status::<S>))
        .route(
            "/v3/DATA/BatchJob/{id}/CSVError/{kind}",
            get(csv::errors::<S>),
        )
        .route(
            "/v3/DATA/batchjob/{id}/CSVError/{kind}",
            get(csv::errors::<S>),
        )
        .route(
            "/v3/REST/contactfilter",
            get(filters::all::<S>).post(filters::add::<S>),
        )
        .route(
            "/v3/REST/contactfilter/{id}",
            get(filters::get::<S>).delete(filters::remove::<S>),
        )
        .route(
            "/v3/REST/template",
            get(templates::all::<S>).post(templates::add::<S>),
        )
        .route(
            "/v3/REST/template/{id}",
            get(templates::get::<S>).delete(templates::remove::<S>),
        )
        .route(
            "/v3/REST/template/{id}/detailcontent",
            get(templates::content::<S>)
                .post(templates::set_content::<S>)
                .put(templates::set_content::<S>),
        )
        .route(
            "/v3/REST/campaigndraft",
            get(campaigns::all::<S>).post(campaigns::add::<S>),
        )
        .route(
            "/v3/REST/campaigndraft/{id}",
            get(campaigns::get::<S>).put(campaigns::update::<S>),
        )
        .route(
            "/v3/REST/campaigndraft/{id}/detailcontent",
            get(campaigns::content::<S>)
                .post(campaigns::post_content::<S>)
                .put(campaigns::put_content::<S>),
        )
        .route(
            "/v3/REST/campaigndraft/{id}/test",
            post(campaigns::test::<S>),
        )
        .route(
            "/v3/REST/campaigndraft/{id}/send",
            post(campaigns::send::<S>),
        )
        .route(
            "/v3/REST/campaigndraft/{id}/schedule",
            get(campaigns::scheduled::<S>)
                .post(campaigns::schedule::<S>)
                .delete(campaigns::unschedule::<S>),
        )
        .route("/v3/REST/statcounters", get(campaigns::statcounters::<S>))
}

#[cfg(test)]
mod tests {
    use super::Page;

    /// A walk in batches yields exactly the page Offset and Limit name.
    #[test]
    fn pages_are_taken_across_batches() {
        let page = Page {
            limit: 3,
            offset: 4,
        };
        let (mut skipped, mut out) = (0, Vec::new());
        assert!(!page.take(&mut skipped, &mut out, vec![1, 2, 3]));
        assert!(!page.take(&mut skipped, &mut out, vec![4, 5]));
        assert!(page.take(&mut skipped, &mut out, vec![6, 7, 8, 9]));
        assert_eq!(out, [5, 6, 7]);
    }
}
