//! Effective shaping: the limits each mailbox provider's sites get (the shipped file with
//! the operator's overlay applied), the response rules that suspend or throttle a site,
//! and which sites are under each provider now, with their live holds and throttles.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use delivery::shaping::{Action, Limits, Rate, ResponseRule};

use crate::auth::OperatorViewer;
use crate::{ConsoleState, Store};

fn rate(rate: Option<&Rate>) -> String {
    match rate {
        None => "—".into(),
        Some(r) if r.per_second >= 1.0 => format!("{:.0}/s", r.per_second),
        Some(r) if r.per_second * 60.0 >= 1.0 => format!("{:.0}/min", r.per_second * 60.0),
        Some(r) => format!("{:.0}/h", r.per_second * 3600.0),
    }
}

fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{} ms", d.as_millis()),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn limits_view(limits: &Limits) -> minijinja::Value {
    minijinja::context! {
        connections_max => limits.connections_max,
        connection_rate => rate(limits.connection_rate.as_ref()),
        message_rate => rate(limits.message_rate.as_ref()),
        messages_per_connection => limits.messages_per_connection,
        idle_timeout => duration(limits.idle_timeout),
        connect_failures_max => limits.connect_failures_max,
        backoff => format!("{} – {}", duration(limits.backoff), duration(limits.backoff_max)),
    }
}

fn rule_view(rule: &ResponseRule) -> minijinja::Value {
    let (action, detail) = match &rule.action {
        Action::Suspend(d) => ("suspend", duration(*d)),
        Action::Throttle {
            rate: r,
            duration: d,
        } => ("throttle", format!("{} ({})", rate(Some(r)), duration(*d))),
    };
    minijinja::context! {
        name => rule.name.clone(),
        code => rule.code_prefix.clone(),
        pattern => rule.pattern.as_str(),
        action => action,
        detail => detail,
    }
}

/// `GET /ops/shaping`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
) -> Response {
    let Some(engine) = state.delivery.as_ref() else {
        let base = who.viewer.context("shaping", None);
        return state.views.page(
            StatusCode::OK,
            "ops_shaping.html",
            minijinja::context! { disabled => true, ..base },
        );
    };
    let shaping = engine.shaping();
    let sites = engine.summary().sites;
    let live = |provider: Option<&str>| -> Vec<minijinja::Value> {
        sites
            .iter()
            .filter(|s| s.provider.as_deref() == provider)
            .map(|s| {
                minijinja::context! {
                    site => s.site.clone(),
                    connections => s.connections,
                    hold => s.hold,
                    hold_reason => s.hold_reason.clone(),
                    hold_until_ms => s.hold_until_ms,
                    throttle => s.throttle.clone(),
                }
            })
            .collect()
    };
    let providers: Vec<minijinja::Value> = shaping
        .providers
        .iter()
        .map(|p| {
            minijinja::context! {
                name => p.name.clone(),
                suffixes => p.mx_suffixes.join(" "),
                total => p.connections_max_total,
                limits => limits_view(&p.limits),
                rules => p.rules.iter().map(rule_view).collect::<Vec<_>>(),
                sites => live(Some(&p.name)),
            }
        })
        .collect();
    let base = who.viewer.context("shaping", None);
    state.views.page(
        StatusCode::OK,
        "ops_shaping.html",
        minijinja::context! {
            disabled => false,
            default => limits_view(&shaping.default),
            default_sites => live(None),
            rules => shaping.rules.iter().map(rule_view).collect::<Vec<_>>(),
            providers => providers,
            ..base
        },
    )
}
