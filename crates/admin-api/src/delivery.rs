//! Delivery controls: pause/resume a site or domain, retry now, bounce or delete by filter.
//! All need the delivery engine; without it (delivery disabled) they answer 409.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use delivery::Engine;
use delivery::queue::Filter;
use serde::Deserialize;
use spool::MessageId;

use crate::{AdminState, error};

/// A refusal, boxed: a `Response` is large and this is the rare path.
type Refusal = Box<Response>;

fn engine(state: &AdminState) -> Result<&Engine, Refusal> {
    state.delivery.as_ref().ok_or_else(|| {
        Box::new(error(
            StatusCode::CONFLICT,
            "delivery is disabled on this server",
        ))
    })
}

/// A filter as JSON: every field optional, all given fields must match.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilterBody {
    id: Option<String>,
    domain: Option<String>,
    sender: Option<String>,
    site: Option<String>,
    /// For bounce: the text put into the DSN.
    reason: Option<String>,
}

impl FilterBody {
    fn filter(&self) -> Result<Filter, Refusal> {
        let id =
            match self.id.as_deref() {
                None => None,
                Some(text) => Some(MessageId::parse(text).ok_or_else(|| {
                    Box::new(error(StatusCode::BAD_REQUEST, "id: not a message id"))
                })?),
            };
        Ok(Filter {
            id,
            domain: self.domain.clone(),
            sender: self.sender.clone(),
            site: self.site.clone(),
        })
    }
}

async fn pause(state: &AdminState, kind: &str, name: &str, paused: bool) -> Response {
    let engine = match engine(state) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    match kind {
        "sites" => {
            if !engine.set_site_paused(name, paused) {
                return error(StatusCode::NOT_FOUND, "no such site (see queue summary)");
            }
        }
        _ => engine.set_domain_paused(name, paused),
    }
    Json(serde_json::json!({ "paused": paused, kind.trim_end_matches('s'): name })).into_response()
}

pub(crate) async fn pause_site(State(s): State<AdminState>, Path(name): Path<String>) -> Response {
    pause(&s, "sites", &name, true).await
}
pub(crate) async fn resume_site(State(s): State<AdminState>, Path(name): Path<String>) -> Response {
    pause(&s, "sites", &name, false).await
}
pub(crate) async fn pause_domain(
    State(s): State<AdminState>,
    Path(name): Path<String>,
) -> Response {
    pause(&s, "domains", &name, true).await
}
pub(crate) async fn resume_domain(
    State(s): State<AdminState>,
    Path(name): Path<String>,
) -> Response {
    pause(&s, "domains", &name, false).await
}

/// Turns a handler's result into its response (a refusal is already a response).
fn respond(result: Result<Response, Refusal>) -> Response {
    result.unwrap_or_else(|refusal| *refusal)
}

fn counted(recipients: u64) -> Response {
    Json(serde_json::json!({ "recipients": recipients })).into_response()
}

pub(crate) async fn retry(
    State(state): State<AdminState>,
    body: Option<Json<FilterBody>>,
) -> Response {
    respond((|| {
        let engine = engine(&state)?;
        let filter = body.map(|Json(b)| b).unwrap_or_default().filter()?;
        Ok(counted(engine.retry_now(&filter)))
    })())
}

/// Bounce and delete refuse an empty filter: emptying the whole queue takes an explicit
/// domain, sender, site or id.
fn non_empty(body: &FilterBody) -> Result<Filter, Refusal> {
    let filter = body.filter()?;
    if filter.is_empty() {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "filter: give at least one of id, domain, sender, site",
        )));
    }
    Ok(filter)
}

pub(crate) async fn bounce(
    State(state): State<AdminState>,
    Json(body): Json<FilterBody>,
) -> Response {
    respond((|| {
        let engine = engine(&state)?;
        let filter = non_empty(&body)?;
        let reason = body.reason.as_deref().unwrap_or("no reason given");
        if reason.chars().any(|c| c.is_control()) {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "reason: control characters are not allowed",
            )));
        }
        Ok(counted(engine.bounce(&filter, reason)))
    })())
}

pub(crate) async fn delete(
    State(state): State<AdminState>,
    Json(body): Json<FilterBody>,
) -> Response {
    respond((|| {
        let engine = engine(&state)?;
        let filter = non_empty(&body)?;
        Ok(counted(engine.delete(&filter)))
    })())
}
