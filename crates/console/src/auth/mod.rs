//! Who is asking: sign-in and sign-out ([`login`]), sessions ([`sessions`]), passwords,
//! the second factor, the sign-in throttle, and the extractors that put a signed-in
//! [`Viewer`] in front of every page: [`TenantViewer`] for a tenant's pages,
//! [`OperatorViewer`] for the platform's.

pub mod login;
pub mod passwords;
pub mod sessions;
pub mod throttle;
pub mod totp;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::Value;
use store::{Login, Role, Session, Tenant};
use subtle::ConstantTimeEq;

use crate::i18n::Lang;
use crate::{ConsoleState, Store};

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub login: Login,
    pub session: Session,
    pub lang: Lang,
    pub address: IpAddr,
}

/// What a tenant's role may change. Reading is open to every role of the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    /// Domains, keys, webhooks: developers and owners.
    Integrate,
    /// Suppressions: marketers, developers and owners.
    Audience,
    /// Logins and the audit log: owners.
    Administer,
}

impl Viewer {
    /// Refuses a state-changing request whose form token is not this session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), Response> {
        let ok: bool = token.as_bytes().ct_eq(self.session.csrf.as_bytes()).into();
        if ok && !token.is_empty() {
            Ok(())
        } else {
            Err(csrf_refused())
        }
    }

    /// The context every page gets: language, CSRF token, who is signed in.
    pub fn context(&self, page: &str, tenant: Option<&Tenant>) -> Value {
        minijinja::context! {
            lang => self.lang.code(),
            csrf => self.session.csrf.clone(),
            me => minijinja::context! {
                email => self.login.email.clone(),
                name => self.login.display_name.clone(),
                role => self.login.role.as_str(),
                totp => self.login.totp_secret.is_some(),
            },
            operator => self.login.role == Role::Operator,
            tenant_name => tenant.map(|t| t.name.clone()),
            page => page,
            // Pages that have none leave these out; the layout asks for them.
            notice => None::<&str>,
            error => None::<String>,
        }
    }

    pub fn may(&self, power: Power) -> bool {
        match (self.login.role, power) {
            (Role::Owner, _) => true,
            (Role::Developer, Power::Integrate | Power::Audience) => true,
            (Role::Marketer, Power::Audience) => true,
            _ => false,
        }
    }
}

fn csrf_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><html lang=\"en\"><title>Refused</title><main><h1>Refused</h1><p>This form has expired or did not come from this console. Go back, reload the page and try again.</p></main></html>",
    )
        .into_response()
}

/// The client's address (connect info; the peer of the TCP connection).
pub fn client_address(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

/// The language for a request: the login's setting, else the browser's.
pub fn language(parts: &Parts, login: Option<&Login>) -> Lang {
    login
        .and_then(|l| l.locale.as_deref())
        .and_then(Lang::parse)
        .unwrap_or_else(|| {
            Lang::negotiate(
                parts
                    .headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok()),
            )
        })
}

/// Where an unauthenticated request goes: the sign-in page, which comes back here after.
fn to_login(parts: &Parts, expired: bool) -> Response {
    let here = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let mut target = String::from("/login?next=");
    target.push_str(&crate::pages::url_escape(&here));
    if expired {
        target.push_str("&expired=1");
    }
    Redirect::to(&target).into_response()
}

/// The signed-in viewer, or the answer that sends the browser to sign in.
pub async fn viewer<S: Store>(parts: &Parts, state: &ConsoleState<S>) -> Result<Viewer, Response> {
    let Some(value) = sessions::cookie_value(&state.config, &parts.headers) else {
        return Err(to_login(parts, false));
    };
    let session = match sessions::find(state, &value).await {
        Ok(session) if !session.pending_second_factor => session,
        Ok(_) | Err(sessions::NoSession::Absent) => return Err(to_login(parts, false)),
        Err(sessions::NoSession::Expired) => return Err(to_login(parts, true)),
    };
    let login = match state.store().login(&session.login_id).await {
        Ok(Some(login)) => login,
        _ => return Err(to_login(parts, false)),
    };
    Ok(Viewer {
        lang: language(parts, Some(&login)),
        login,
        session,
        address: client_address(parts),
    })
}

/// A tenant's person and their tenant. Operators are sent to their own pages.
pub struct TenantViewer {
    pub viewer: Viewer,
    pub tenant: Tenant,
}

impl<S: Store> FromRequestParts<Arc<ConsoleState<S>>> for TenantViewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ConsoleState<S>>,
    ) -> Result<Self, Response> {
        let viewer = viewer(parts, state).await?;
        let Some(tenant_id) = viewer.login.tenant_id.clone() else {
            return Err(Redirect::to("/ops").into_response());
        };
        match state.store().tenant(&tenant_id).await {
            Ok(Some(tenant)) => Ok(TenantViewer { viewer, tenant }),
            _ => Err(state.views.error(viewer.lang, StatusCode::NOT_FOUND)),
        }
    }
}

/// One of the platform's operators; a tenant's login gets 403.
pub struct OperatorViewer {
    pub viewer: Viewer,
}

impl<S: Store> FromRequestParts<Arc<ConsoleState<S>>> for OperatorViewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ConsoleState<S>>,
    ) -> Result<Self, Response> {
        let viewer = viewer(parts, state).await?;
        if viewer.login.role != Role::Operator {
            return Err(state.views.error(viewer.lang, StatusCode::FORBIDDEN));
        }
        Ok(OperatorViewer { viewer })
    }
}

/// Appends to the audit log; a failure is logged, never shown (the action is done).
pub async fn audit<S: Store>(
    state: &ConsoleState<S>,
    viewer: &Viewer,
    tenant_id: Option<&str>,
    action: &str,
    target: &str,
) {
    if let Err(err) = state
        .store()
        .audit(
            tenant_id,
            &viewer.login.email,
            action,
            target,
            &viewer.address.to_string(),
        )
        .await
    {
        tracing::error!(error = %err, action, "audit log write failed");
    }
}
