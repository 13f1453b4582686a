//! API errors: a status and a JSON body that names the offending field, so a client can
//! point at what to fix. Native shape: `{"errors":[{"message":..., "field":...}]}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One problem with a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub message: String,
    /// JSON path of the field (`messages[0].to[1].email`), when one is at fault.
    pub field: Option<String>,
    /// Where to read more; SendGrid's error shape has it, so every shape carries it.
    pub help: Option<String>,
}

impl FieldError {
    pub fn at(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            message: message.into(),
            field: Some(field.into()),
            help: None,
        }
    }

    pub fn general(message: impl Into<String>) -> FieldError {
        FieldError {
            message: message.into(),
            field: None,
            help: None,
        }
    }
}

/// A refused request.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<FieldError>,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
    /// The spool refused the messages (counted by the spool itself; see [`ServerFault`]).
    pub spool_refused: bool,
}

/// Marks a response refused by this server's fault before the spool (control plane down,
/// composing failed): the acceptance objectives count it. The spool's own refusals are
/// counted by the spool.
#[derive(Debug, Clone, Copy)]
pub struct ServerFault;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            errors: vec![FieldError::general(message)],
            retry_after: None,
            spool_refused: false,
        }
    }

    pub fn invalid(errors: Vec<FieldError>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            errors,
            retry_after: None,
            spool_refused: false,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({ "errors": self.errors })),
        )
            .into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if self.status.is_server_error() && !self.spool_refused {
            response.extensions_mut().insert(ServerFault);
        }
        response
    }
}

impl From<tenancy::Refusal> for ApiError {
    fn from(refusal: tenancy::Refusal) -> ApiError {
        match refusal {
            tenancy::Refusal::Limited {
                message,
                retry_after_secs,
            } => {
                let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message);
                error.retry_after = Some(retry_after_secs);
                error
            }
            tenancy::Refusal::Suspended(reason) => ApiError::new(
                StatusCode::FORBIDDEN,
                format!("this account is suspended: {reason}"),
            ),
            tenancy::Refusal::UnknownTenant => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unknown tenant")
            }
            tenancy::Refusal::Unavailable => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "control plane unavailable")
            }
        }
    }
}

/// Control-plane failures as the management API answers them: a field-named 400 for what
/// the store refuses, 409 for a taken domain, 404 for what the tenant does not have, 503
/// for a database that does not answer.
impl From<store::StoreError> for ApiError {
    fn from(err: store::StoreError) -> ApiError {
        use store::StoreError;
        match err {
            StoreError::Invalid { field, reason } => {
                ApiError::invalid(vec![FieldError::at(field, reason)])
            }
            StoreError::DuplicateDomain(domain) => ApiError {
                status: StatusCode::CONFLICT,
                errors: vec![FieldError::at(
                    "domain",
                    format!("{domain} is already a sending domain of this account"),
                )],
                retry_after: None,
                spool_refused: false,
            },
            StoreError::DomainTaken(domain) => ApiError {
                status: StatusCode::CONFLICT,
                errors: vec![FieldError::at(
                    "domain",
                    format!("{domain} is not available"),
                )],
                retry_after: None,
                spool_refused: false,
            },
            StoreError::Key(err) => {
                ApiError::invalid(vec![FieldError::at("scopes", err.to_string())])
            }
            StoreError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not found"),
            other => {
                tracing::error!(error = %other, "control plane unavailable");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "control plane unavailable")
            }
        }
    }
}

#[cfg(test)]
mod fault_tests {
    use super::*;

    #[test]
    fn server_faults_are_marked_for_the_acceptance_objectives_except_the_spools() {
        let down = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "control plane unavailable");
        assert!(
            down.into_response()
                .extensions()
                .get::<ServerFault>()
                .is_some()
        );
        let mut spool = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the spool refused");
        spool.spool_refused = true;
        assert!(
            spool
                .into_response()
                .extensions()
                .get::<ServerFault>()
                .is_none()
        );
        let theirs = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad field");
        assert!(
            theirs
                .into_response()
                .extensions()
                .get::<ServerFault>()
                .is_none()
        );
    }
}
