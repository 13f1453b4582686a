//! The service level objectives: each one's budget left and burn rates over the standard
//! windows, drawn as SVG bars against the policy's page and ticket lines, with the alert
//! the policy calls for and the exhaustion forecast.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::auth::OperatorViewer;
use crate::{ConsoleState, Store};

/// Burn rate bars, on a log scale so 1× and 14.4× both show, with the policy's lines.
fn burn_chart(name: &str, rates: &[(String, Option<f64>)]) -> String {
    let (w, h, pad) = (360.0, 140.0, 28.0);
    let top = 100.0f64.log10() + 0.2;
    let y = |v: f64| h - pad - (v.max(0.1).log10() + 1.0) / (top + 1.0) * (h - 2.0 * pad);
    let bw = (w - 2.0 * pad) / rates.len().max(1) as f64;
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"Burn rates of {name}\" viewBox=\"0 0 {w} {h}\"><title>Burn rates of {name}</title>"
    );
    for (factor, class) in [(14.4, "page"), (6.0, "page"), (1.0, "ticket")] {
        svg.push_str(&format!(
            "<line x1=\"{pad}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"policy {class}\"/><text x=\"{}\" y=\"{:.1}\" class=\"axis\">{factor}×</text>",
            w - pad,
            w - pad + 2.0,
            y(factor) + 4.0,
            y = y(factor)
        ));
    }
    for (i, (window, rate)) in rates.iter().enumerate() {
        let x = pad + i as f64 * bw;
        if let Some(r) = rate {
            let top_y = y(*r);
            svg.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{top_y:.1}\" width=\"{:.1}\" height=\"{:.1}\" class=\"bar\"><title>{window}: {r:.2}×</title></rect>",
                x + 4.0,
                bw - 8.0,
                (h - pad - top_y).max(0.0)
            ));
        }
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"middle\">{window}</text>",
            x + bw / 2.0,
            h - 8.0
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// `GET /ops/slo`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
) -> Response {
    let Some(ops) = super::alerts::runner(&state) else {
        return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND);
    };
    let slos: Vec<minijinja::Value> = ops
        .slo_status()
        .iter()
        .map(|s| {
            let left = (s.budget_left * 100.0).clamp(-999.0, 100.0);
            minijinja::context! {
                name => s.name.clone(),
                kind => s.kind,
                tenant => s.tenant.clone(),
                objective => s.objective,
                period => s.period.clone(),
                good => s.good,
                total => s.total,
                budget_left => format!("{left:.1}"),
                budget_width => left.clamp(0.0, 100.0),
                rates => s.burn_rates.iter().map(|(w, r)| minijinja::context! {
                    window => w.clone(), rate => r.map(|r| format!("{r:.2}×")),
                }).collect::<Vec<_>>(),
                chart => minijinja::Value::from_safe_string(burn_chart(&s.name, &s.burn_rates)),
                alert => s.alert.map(|(severity, factor)| format!("{severity} ({factor}×)")),
                exhausted_in_hours => s.exhausted_in_hours.map(|h| format!("{h:.1}")),
            }
        })
        .collect();
    let base = who.viewer.context("slo", None);
    state.views.page(
        StatusCode::OK,
        "ops_slo.html",
        minijinja::context! { slos => slos, ..base },
    )
}
