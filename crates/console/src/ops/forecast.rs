//! Capacity forecast: recipients per domain of a planned campaign (one `domain count` per
//! line), its message size and pace; the answer per site with what limits it, the spool it
//! needs, and whether the delivery latency objective holds.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::auth::OperatorViewer;
use crate::{ConsoleState, Store};

#[derive(Deserialize, Default)]
pub struct ForecastForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    recipients: String,
    #[serde(default)]
    message_kb: String,
    #[serde(default)]
    rate: String,
}

async fn render<S: Store>(
    state: &ConsoleState<S>,
    who: &OperatorViewer,
    status: StatusCode,
    form: &ForecastForm,
    error: Option<String>,
    answer: Option<::ops::runner::ForecastAnswer>,
) -> Response {
    let base = who.viewer.context("forecast", None);
    let result = answer.map(|a| {
        let f = &a.forecast;
        minijinja::context! {
            seconds => format!("{:.0}", f.seconds),
            minutes => format!("{:.1}", f.seconds / 60.0),
            recipients => f.recipients,
            starts_at => a.starts_at.clone(),
            ends_at => a.ends_at.clone(),
            spool_mib => format!("{:.1}", f.spool_bytes as f64 / 1_048_576.0),
            disk_free_mib => f.disk_free.map(|d| format!("{:.0}", d as f64 / 1_048_576.0)),
            fits_disk => f.fits_disk,
            latency_holds => f.latency_holds,
            threshold => f.latency_threshold_s,
            worst_wait => format!("{:.0}", f.worst_wait_s),
            node_rate => format!("{:.0}", f.node_rate),
            node_rate_source => a.node_rate_source.clone(),
            unroutable => a.unroutable.clone(),
            lanes => f.lanes.iter().map(|l| minijinja::context! {
                site => l.site.clone(), provider => l.provider.clone(), recipients => l.recipients,
                rate => format!("{:.1}", l.rate), seconds => format!("{:.0}", l.seconds), bound => l.bound,
                wait => format!("{:.0}", l.worst_wait_s),
            }).collect::<Vec<_>>(),
        }
    });
    state.views.page(
        status,
        "ops_forecast.html",
        minijinja::context! {
            recipients => form.recipients.clone(),
            message_kb => if form.message_kb.is_empty() { "50".to_string() } else { form.message_kb.clone() },
            rate => form.rate.clone(),
            error => error,
            result => result,
            ..base
        },
    )
}

/// `GET /ops/forecast`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
) -> Response {
    if super::alerts::runner(&state).is_none() {
        return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND);
    }
    render(
        &state,
        &who,
        StatusCode::OK,
        &ForecastForm::default(),
        None,
        None,
    )
    .await
}

/// Reads the form: `(recipients per domain, bytes, rate)` or the field at fault.
fn read(form: &ForecastForm) -> Result<(BTreeMap<String, u64>, u64, Option<f64>), String> {
    let mut recipients = BTreeMap::new();
    for (i, line) in form.recipients.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line
            .split(|c: char| c.is_whitespace() || c == '=' || c == ',')
            .filter(|p| !p.is_empty());
        let (Some(domain), Some(count), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "recipients: line {} is not \"domain count\"",
                i + 1
            ));
        };
        let count: u64 = count
            .replace('_', "")
            .parse()
            .map_err(|_| format!("recipients: line {}: {count:?} is not a count", i + 1))?;
        if !domain.contains('.') {
            return Err(format!(
                "recipients: line {}: {domain:?} is not a domain",
                i + 1
            ));
        }
        *recipients.entry(domain.to_ascii_lowercase()).or_insert(0) += count;
    }
    if recipients.is_empty() {
        return Err("recipients: name at least one domain and its count".into());
    }
    let kb: f64 = if form.message_kb.trim().is_empty() {
        50.0
    } else {
        form.message_kb
            .trim()
            .parse()
            .ok()
            .filter(|k: &f64| *k > 0.0 && *k <= 100_000.0)
            .ok_or("message_kb: a size in KB between 0 and 100,000")?
    };
    let rate = match form.rate.trim() {
        "" => None,
        r => Some(
            r.parse::<f64>()
                .ok()
                .filter(|r| *r > 0.0)
                .ok_or("rate: recipients per second, above 0")?,
        ),
    };
    Ok((recipients, (kb * 1024.0) as u64, rate))
}

/// `POST /ops/forecast`
pub async fn run<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
    Form(form): Form<ForecastForm>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&form.csrf) {
        return refused;
    }
    let Some(ops) = super::alerts::runner(&state) else {
        return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND);
    };
    let (recipients, message_bytes, rate_per_sec) = match read(&form) {
        Ok(r) => r,
        Err(e) => {
            return render(
                &state,
                &who,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                Some(e),
                None,
            )
            .await;
        }
    };
    let request = ::ops::runner::ForecastRequest {
        recipients,
        message_bytes,
        start_ms: None,
        rate_per_sec,
        node_rate: None,
    };
    match ops.forecast(&request).await {
        Ok(answer) => render(&state, &who, StatusCode::OK, &form, None, Some(answer)).await,
        Err(::ops::runner::OpsFailure::Store(e)) => {
            crate::pages::store_failed(&state, &who.viewer, e)
        }
        Err(e) => {
            render(
                &state,
                &who,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                Some(e.to_string()),
                None,
            )
            .await
        }
    }
}
