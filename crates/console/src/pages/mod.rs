//! A tenant's pages. Every lookup goes through the viewer's tenant, so another tenant's
//! domain, key, message or webhook id is a 404 exactly like one that does not exist.
//! State changes use POST with the session's CSRF token and answer with a redirect back to
//! the page (a notice named in the query, chosen from [`NOTICES`]), so reloading never
//! repeats an action.

pub mod account;
pub mod activity;
pub mod audit;
pub mod campaigns;
pub mod contact_imports;
pub mod contacts;
pub mod dashboard;
pub mod dns_check;
pub mod domains;
pub mod imports;
pub mod keys;
pub mod lists;
pub mod segments;
pub mod suppressions;
pub mod team;
pub mod templates;
pub mod webhooks;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::auth::{Power, Viewer};
use crate::{ConsoleState, Store};

/// Notices a redirect may ask a page to show (`?notice=`); anything else is ignored.
pub const NOTICES: &[&str] = &[
    "notice.domain_added",
    "notice.domain_removed",
    "notice.key_revoked",
    "notice.suppression_added",
    "notice.suppression_removed",
    "notice.password_changed",
    "notice.language_changed",
    "notice.totp_on",
    "notice.totp_off",
    "notice.site_paused",
    "notice.site_resumed",
    "notice.retried",
    "notice.bounced",
    "notice.tenant_added",
    "notice.tenant_changed",
    "notice.webhook_tested",
    "notice.webhook_removed",
    "notice.login_added",
    "notice.login_changed",
    "notice.login_removed",
    "notice.name_changed",
    "notice.list_added",
    "notice.segment_saved",
    "notice.template_added",
    "notice.template_saved",
    "notice.template_activated",
    "notice.campaign_added",
    "notice.campaign_saved",
    "notice.campaign_scheduled",
    "notice.campaign_sending",
    "notice.campaign_tested",
    "notice.campaign_paused",
    "notice.campaign_resumed",
    "notice.campaign_cancelled",
    "notice.campaign_unscheduled",
    "notice.campaign_decided",
    "notice.alert_acknowledged",
    "notice.alert_resolved",
    "notice.alert_noted",
    "notice.alert_silenced",
    "notice.silence_ended",
    "notice.report_made",
];

/// Catalogue keys used from Rust rather than from templates, besides [`NOTICES`] (both
/// checked by the catalogue test).
pub const RUST_KEYS: &[&str] = &[
    "error.not_found",
    "error.forbidden",
    "error.bad_request",
    "error.internal",
    "login.expired",
    "login.throttled",
    "login.wrong",
    "login.wrong_code",
    "webhooks.bad_url",
    "team.not_yourself",
    "role.owner",
    "role.developer",
    "role.marketer",
    "role.viewer",
    "member.subscribed",
    "member.unconfirmed",
    "member.unsubscribed",
    "imports.queued",
    "imports.running",
    "imports.done",
    "imports.failed",
];

/// The notice a query names, if it is one of ours.
pub fn notice(requested: Option<&str>) -> Option<&'static str> {
    let requested = requested?;
    NOTICES.iter().copied().find(|n| *n == requested)
}

/// Back to `path` with a notice.
pub fn done(path: &str, notice: &str) -> Response {
    let separator = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{separator}notice={notice}")).into_response()
}

/// Percent-encodes everything but unreserved characters (for query values we build).
pub fn url_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// 403 unless the viewer's role has `power`.
pub fn require<S: Store>(
    state: &ConsoleState<S>,
    viewer: &Viewer,
    power: Power,
) -> Result<(), Response> {
    if viewer.may(power) {
        Ok(())
    } else {
        Err(state.views.error(viewer.lang, StatusCode::FORBIDDEN))
    }
}

/// A state change by the viewer: the form's CSRF token first, then the role's power.
pub fn permitted<S: Store>(
    state: &ConsoleState<S>,
    viewer: &Viewer,
    csrf: &str,
    power: Power,
) -> Result<(), Response> {
    viewer.check_csrf(csrf)?;
    require(state, viewer, power)
}

/// The store failed: logged, and a 500 page in the viewer's language.
pub fn store_failed<S: Store>(
    state: &ConsoleState<S>,
    viewer: &Viewer,
    err: store::StoreError,
) -> Response {
    tracing::error!(error = %err, "console: control plane call failed");
    state
        .views
        .error(viewer.lang, StatusCode::INTERNAL_SERVER_ERROR)
}

/// Today, as days since the Unix epoch (the quota's day).
pub fn today() -> i64 {
    crate::auth::sessions::now_ms().div_euclid(86_400_000)
}
