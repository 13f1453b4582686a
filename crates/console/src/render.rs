//! Pages from templates: the minijinja environment (templates embedded in the binary,
//! HTML auto-escaping on, undefined values an error), the `t()` catalogue lookup, value
//! filters, the security headers every console answer carries, and HTML error pages.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use minijinja::value::Kwargs;
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior, Value};

use crate::i18n::{self, Lang};

/// Every template, embedded.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("login.html", include_str!("../templates/login.html")),
    (
        "login_code.html",
        include_str!("../templates/login_code.html"),
    ),
    (
        "dashboard.html",
        include_str!("../templates/dashboard.html"),
    ),
    ("activity.html", include_str!("../templates/activity.html")),
    ("message.html", include_str!("../templates/message.html")),
    ("domains.html", include_str!("../templates/domains.html")),
    ("domain.html", include_str!("../templates/domain.html")),
    ("keys.html", include_str!("../templates/keys.html")),
    (
        "suppressions.html",
        include_str!("../templates/suppressions.html"),
    ),
    ("import.html", include_str!("../templates/import.html")),
    ("account.html", include_str!("../templates/account.html")),
    ("audit.html", include_str!("../templates/audit.html")),
    ("webhooks.html", include_str!("../templates/webhooks.html")),
    ("team.html", include_str!("../templates/team.html")),
    ("contacts.html", include_str!("../templates/contacts.html")),
    ("contact.html", include_str!("../templates/contact.html")),
    ("lists.html", include_str!("../templates/lists.html")),
    ("segments.html", include_str!("../templates/segments.html")),
    (
        "templates.html",
        include_str!("../templates/templates.html"),
    ),
    ("template.html", include_str!("../templates/template.html")),
    (
        "campaigns.html",
        include_str!("../templates/campaigns.html"),
    ),
    ("campaign.html", include_str!("../templates/campaign.html")),
    (
        "contact_imports.html",
        include_str!("../templates/contact_imports.html"),
    ),
    (
        "contact_import.html",
        include_str!("../templates/contact_import.html"),
    ),
    (
        "ops_alerts.html",
        include_str!("../templates/ops_alerts.html"),
    ),
    (
        "ops_alert.html",
        include_str!("../templates/ops_alert.html"),
    ),
    ("ops_slo.html", include_str!("../templates/ops_slo.html")),
    (
        "ops_oncall.html",
        include_str!("../templates/ops_oncall.html"),
    ),
    (
        "ops_reports.html",
        include_str!("../templates/ops_reports.html"),
    ),
    (
        "ops_forecast.html",
        include_str!("../templates/ops_forecast.html"),
    ),
    (
        "ops_shaping.html",
        include_str!("../templates/ops_shaping.html"),
    ),
    (
        "ops_cluster.html",
        include_str!("../templates/ops_cluster.html"),
    ),
    (
        "ops_audit.html",
        include_str!("../templates/ops_audit.html"),
    ),
    ("webhook.html", include_str!("../templates/webhook.html")),
    (
        "ops_overview.html",
        include_str!("../templates/ops_overview.html"),
    ),
    (
        "ops_queues.html",
        include_str!("../templates/ops_queues.html"),
    ),
    (
        "ops_messages.html",
        include_str!("../templates/ops_messages.html"),
    ),
    (
        "ops_tenants.html",
        include_str!("../templates/ops_tenants.html"),
    ),
];

/// The template environment, built once.
pub struct Views {
    env: Environment<'static>,
}

impl Default for Views {
    fn default() -> Self {
        Views::new()
    }
}

/// `t("key", name=value)`: the catalogue text for the page's language, `{name}` replaced.
fn translate(state: &State, key: &str, args: Kwargs) -> Result<String, Error> {
    let lang = state
        .lookup("lang")
        .and_then(|v| v.as_str().and_then(Lang::parse))
        .unwrap_or(Lang::En);
    let Some(text) = i18n::text(lang, key) else {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            format!("catalogue {} has no key {key:?}", lang.code()),
        ));
    };
    let mut out = text.to_string();
    for name in args.args() {
        let value: Value = args.get(name)?;
        out = out.replace(&format!("{{{name}}}"), &value.to_string());
    }
    args.assert_all_used()?;
    Ok(out)
}

/// Unix milliseconds as `2026-12-03 09:15:02` (UTC); pages turn it into the viewer's zone.
pub fn utc_text(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn iso(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// 1234567 as `1,234,567`.
pub fn grouped(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Views {
    pub fn new() -> Views {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        for (name, source) in TEMPLATES {
            // Templates are part of the build; the tests render every one of them.
            if let Err(err) = env.add_template(name, source) {
                tracing::error!(template = name, error = %err, "console template does not parse");
            }
        }
        env.add_function("t", translate);
        env.add_filter("utc", |ms: i64| utc_text(ms));
        env.add_filter("iso", |ms: i64| iso(ms));
        env.add_filter("num", |n: i64| grouped(n));
        Views { env }
    }

    /// Renders a template to a string.
    pub fn render(&self, name: &str, context: Value) -> Result<String, Error> {
        self.env.get_template(name)?.render(context)
    }

    /// Renders a page; a template error is logged and answered with a plain 500 page.
    pub fn page(&self, status: StatusCode, name: &str, context: Value) -> Response {
        match self.render(name, context) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(err) => {
                tracing::error!(template = name, error = %format!("{err:#}"), "console page failed to render");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Html("<!doctype html><title>Error</title><p>The page could not be shown.</p>"),
                )
                    .into_response()
            }
        }
    }

    /// An error page in the viewer's language.
    pub fn error(&self, lang: Lang, status: StatusCode) -> Response {
        let key = match status {
            StatusCode::NOT_FOUND => "error.not_found",
            StatusCode::FORBIDDEN => "error.forbidden",
            StatusCode::BAD_REQUEST => "error.bad_request",
            _ => "error.internal",
        };
        self.page(
            status,
            "error.html",
            minijinja::context! { lang => lang.code(), status => status.as_u16(), message_key => key },
        )
    }
}

/// Content-Security-Policy of every console answer: scripts and styles only from our own
/// files (no inline script, no inline style), no framing but our own frames (the template
/// preview, which sets its own stricter policy), forms post only to us.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Middleware: the security headers, and no caching of pages (they hold account data).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // A page that sets its own policy (the template preview frame) keeps it.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::X_FRAME_OPTIONS) {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(-1234567), "-1,234,567");
    }

    #[test]
    fn every_template_parses() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }

    /// Every `t("...")` in a template names a key of every catalogue.
    #[test]
    fn every_key_used_exists_in_every_language() {
        let pattern = "t(\"";
        let mut missing = Vec::new();
        let sources = TEMPLATES.iter().map(|(n, s)| (*n, *s)).chain(
            crate::pages::RUST_KEYS
                .iter()
                .chain(crate::pages::NOTICES)
                .map(|k| ("rust", *k)),
        );
        for (name, source) in sources {
            let keys: Vec<&str> = if name == "rust" {
                vec![source]
            } else {
                source
                    .match_indices(pattern)
                    .filter_map(|(at, _)| {
                        let rest = &source[at + pattern.len()..];
                        rest.find('"').map(|end| &rest[..end])
                    })
                    .collect()
            };
            // `t("kind." ~ k)`: a prefix; the page tests render every value it takes.
            for key in keys.into_iter().filter(|k| !k.ends_with(['.', '_'])) {
                for lang in Lang::ALL {
                    if i18n::text(lang, key).is_none() {
                        missing.push(format!("{name}: {key} ({})", lang.code()));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "missing catalogue keys:\n{}",
            missing.join("\n")
        );
    }
}
