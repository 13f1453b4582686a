//! Campaigns: the list; the wizard of a draft (audience with a live count, content with a
//! preview, schedule and sending window, A/B test, test send, send); a sending campaign's
//! live progress with pause, resume, cancel and the A/B decision; the report with charts
//! and its CSV. Every change goes through the API's own campaign calls
//! ([`campaigns::desk`]), so the checks and the fields they name are the API's.

pub mod form;
pub mod report;

use std::sync::Arc;

use axum::Form;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use campaigns::desk::{CampaignDesk, Move, Refusal};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use store::{Campaign, CampaignState};

use super::{done, notice, permitted, store_failed};
use crate::auth::{Power, TenantViewer, audit};
use crate::{ConsoleState, Store};
use form::Fields;

/// The preview frame's policy: no script, no form, nothing fetched but images.
const PREVIEW_POLICY: &str =
    "sandbox; default-src 'none'; img-src https: data:; style-src 'unsafe-inline'";

fn desk<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
) -> Result<Arc<dyn CampaignDesk>, Response> {
    state
        .campaigns
        .get()
        .cloned()
        .ok_or_else(|| state.views.error(who.viewer.lang, StatusCode::NOT_FOUND))
}

async fn tenants<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
    id: &str,
) -> Result<Campaign, Response> {
    match state.store().campaign(&who.tenant.id, id).await {
        Ok(Some(campaign)) => Ok(campaign),
        Ok(None) => Err(state.views.error(who.viewer.lang, StatusCode::NOT_FOUND)),
        Err(err) => Err(store_failed(state, &who.viewer, err)),
    }
}

/// The audience's count; nothing chosen yet counts nobody (the API would refuse it as
/// incomplete).
async fn counted(
    desk: &dyn CampaignDesk,
    tenant_id: &str,
    audience: Value,
) -> Result<i64, Refusal> {
    if audience.as_object().is_none_or(Map::is_empty) {
        return Ok(0);
    }
    desk.count(tenant_id, audience).await
}

fn row(c: &Campaign) -> minijinja::Value {
    minijinja::context! {
        id => c.id.clone(), name => c.draft.name.clone(), state => c.state.as_str(),
        recipients => c.progress.recipients, spooled => c.progress.spooled,
        created_ms => c.created_ms, started_ms => c.started_ms, finished_ms => c.finished_ms,
    }
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    notice: Option<String>,
    /// Preview as this contact (an address).
    preview_as: Option<String>,
}

/// `GET /campaigns`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Query(query): Query<PageQuery>,
) -> Response {
    listing(
        &state,
        &who,
        StatusCode::OK,
        None,
        notice(query.notice.as_deref()),
    )
    .await
}

async fn listing<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
    status: StatusCode,
    error: Option<String>,
    notice_key: Option<&str>,
) -> Response {
    let campaigns = match state.store().campaigns(&who.tenant.id).await {
        Ok(found) => found,
        Err(err) => return store_failed(state, &who.viewer, err),
    };
    let base = who.viewer.context("campaigns", Some(&who.tenant));
    state.views.page(
        status,
        "campaigns.html",
        minijinja::context! {
            campaigns => campaigns.iter().map(row).collect::<Vec<_>>(),
            error => error, notice => notice_key,
            can_change => who.viewer.may(Power::Audience), ..base
        },
    )
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    name: String,
}

/// `POST /campaigns`: a new draft, then its wizard.
pub async fn add<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Form(form): Form<AddForm>,
) -> Response {
    if let Err(refused) = permitted(&state, &who.viewer, &form.csrf, Power::Audience) {
        return refused;
    }
    let desk = match desk(&state, &who) {
        Ok(desk) => desk,
        Err(refused) => return refused,
    };
    let mut fields = Map::new();
    fields.insert("name".into(), Value::from(form.name.trim()));
    match desk.save(&who.tenant.id, None, fields).await {
        Ok(made) => {
            let tenant = Some(who.tenant.id.as_str());
            audit(&state, &who.viewer, tenant, "campaign.add", &made.id).await;
            done(&format!("/campaigns/{}", made.id), "notice.campaign_added")
        }
        Err(refusal) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            listing(&state, &who, status, Some(refusal.to_string()), None).await
        }
    }
}

/// What the wizard and the live view show besides the campaign.
struct Shown {
    status: StatusCode,
    /// The form's values (the stored draft, or what was just refused).
    values: Option<Map<String, Value>>,
    error: Option<Refusal>,
    notice: Option<&'static str>,
    preview_as: Option<String>,
}

async fn show<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
    campaign: &Campaign,
    shown: Shown,
) -> Response {
    let desk = match desk(state, who) {
        Ok(desk) => desk,
        Err(refused) => return refused,
    };
    let tenant = &who.tenant.id;
    let store = state.store();
    let (lists, segments, templates, domains) = match tokio::try_join!(
        store.lists(tenant),
        store.segments(tenant),
        store.templates(tenant),
        store.domains(tenant),
    ) {
        Ok(found) => found,
        Err(err) => return store_failed(state, &who.viewer, err),
    };
    let values = shown.values.unwrap_or_else(|| form::stored(campaign));
    let draft = campaign.state == CampaignState::Draft;
    // The audience's count now, and each content rendered: a draft's refusals are shown,
    // not fatal.
    let audience = values.get("audience").cloned().unwrap_or(json!({}));
    let count = counted(&*desk, tenant, audience).await;
    let previews = if draft {
        desk.preview(tenant, &campaign.id, shown.preview_as.as_deref())
            .await
    } else {
        Ok(Vec::new())
    };
    let report = if draft {
        None
    } else {
        match desk.report(tenant, &campaign.id).await {
            Ok(report) => Some(report),
            Err(refusal) => {
                tracing::warn!(error = %refusal, "console: campaign report failed");
                None
            }
        }
    };
    let charts = report.as_ref().map(report::charts);
    let progress = &campaign.progress;
    let base = who.viewer.context("campaigns", Some(&who.tenant));
    let status = shown.status;
    state.views.page(
        status,
        "campaign.html",
        minijinja::context! {
            campaign => row(campaign),
            draft => draft,
            live => matches!(campaign.state, CampaignState::Scheduled | CampaignState::Sending | CampaignState::Paused),
            form => form::view(&values),
            error => shown.error.map(|e| e.to_string()),
            notice => shown.notice,
            lists => lists.iter().map(|l| minijinja::context! { id => l.id.clone(), name => l.name.clone(), subscribed => l.subscribed }).collect::<Vec<_>>(),
            segments => segments.iter().map(|s| minijinja::context! { id => s.id.clone(), name => s.name.clone() }).collect::<Vec<_>>(),
            templates => templates.iter().map(|t| minijinja::context! { id => t.id.clone(), name => t.name.clone() }).collect::<Vec<_>>(),
            domains => domains.iter().map(|d| d.domain.clone()).collect::<Vec<_>>(),
            count => count.as_ref().ok().copied(),
            count_error => count.err().map(|e| e.to_string()),
            previews => previews.as_ref().map(|ps| ps.iter().enumerate().map(|(n, p)| minijinja::context! {
                n => n, variant => p.variant.clone(), from => p.from.clone(), subject => p.subject.clone(),
                text => p.text.clone(), html => p.html.is_some(),
            }).collect::<Vec<_>>()).unwrap_or_default(),
            preview_error => previews.err().map(|e| e.to_string()),
            preview_as => shown.preview_as,
            progress => minijinja::context! {
                recipients => progress.recipients, spooled => progress.spooled,
                skipped => progress.skipped, cursor => progress.cursor,
                percent => progress.recipients.filter(|r| *r > 0).map(|r| (progress.cursor * 100 / r).min(100)),
            },
            ab => minijinja::context! {
                testing => campaign.testing(),
                test_recipients => campaign.ab.test_end,
                decide_at_ms => campaign.ab.decide_at_ms,
                winner => campaign.ab.winner,
                winner_reason => campaign.ab.winner_reason.clone(),
            },
            report => report.map(|r| minijinja::Value::from(minijinja::value::Serde(r))),
            charts => charts,
            can_change => who.viewer.may(Power::Audience),
            ..base
        },
    )
}

/// `GET /campaigns/{id}`: the wizard of a draft, or the progress and report.
pub async fn detail<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let campaign = match tenants(&state, &who, &id).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let shown = Shown {
        status: StatusCode::OK,
        values: None,
        error: None,
        notice: notice(query.notice.as_deref()),
        preview_as: query.preview_as.filter(|a| !a.trim().is_empty()),
    };
    show(&state, &who, &campaign, shown).await
}

/// `POST /campaigns/{id}`: saves the wizard's form into the draft.
pub async fn save<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(pairs);
    if let Err(refused) = permitted(&state, &who.viewer, fields.csrf(), Power::Audience) {
        return refused;
    }
    let desk = match desk(&state, &who) {
        Ok(desk) => desk,
        Err(refused) => return refused,
    };
    let values = form::to_api(&fields);
    match desk.save(&who.tenant.id, Some(&id), values.clone()).await {
        Ok(saved) => {
            let tenant = Some(who.tenant.id.as_str());
            audit(&state, &who.viewer, tenant, "campaign.save", &saved.id).await;
            done(&format!("/campaigns/{id}"), "notice.campaign_saved")
        }
        Err(refusal) if refusal.missing => {
            state.views.error(who.viewer.lang, StatusCode::NOT_FOUND)
        }
        Err(refusal) => {
            let campaign = match tenants(&state, &who, &id).await {
                Ok(c) => c,
                Err(refused) => return refused,
            };
            let shown = Shown {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                values: Some(values),
                error: Some(refusal),
                notice: None,
                preview_as: None,
            };
            show(&state, &who, &campaign, shown).await
        }
    }
}

/// `POST /campaigns/{id}/{action}`: `send`, `test` (`to`: addresses), `pause`, `resume`,
/// `cancel`, `unschedule`, `winner` (`variant`, or none for the metric's).
pub async fn act<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path((id, action)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(pairs);
    if let Err(refused) = permitted(&state, &who.viewer, fields.csrf(), Power::Audience) {
        return refused;
    }
    let desk = match desk(&state, &who) {
        Ok(desk) => desk,
        Err(refused) => return refused,
    };
    let tenant = who.tenant.id.as_str();
    let moved = |to| desk.change(tenant, &id, to);
    let answer: Result<&'static str, Refusal> = match action.as_str() {
        "send" => desk.send(tenant, &id).await.map(|c| {
            if c.state == CampaignState::Scheduled {
                "notice.campaign_scheduled"
            } else {
                "notice.campaign_sending"
            }
        }),
        "test" => {
            let to: Vec<String> = fields
                .one("to")
                .unwrap_or("")
                .split([',', '\n', ' '])
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect();
            desk.test(tenant, &id, to)
                .await
                .map(|_| "notice.campaign_tested")
        }
        "pause" => moved(Move::Pause).await.map(|_| "notice.campaign_paused"),
        "resume" => moved(Move::Resume).await.map(|_| "notice.campaign_resumed"),
        "cancel" => moved(Move::Cancel)
            .await
            .map(|_| "notice.campaign_cancelled"),
        "unschedule" => moved(Move::Unschedule)
            .await
            .map(|_| "notice.campaign_unscheduled"),
        "winner" => {
            let variant = fields.one("variant").and_then(|v| v.parse::<usize>().ok());
            desk.winner(tenant, &id, variant)
                .await
                .map(|_| "notice.campaign_decided")
        }
        _ => return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
    };
    match answer {
        Ok(notice_key) => {
            let event = format!("campaign.{action}");
            audit(&state, &who.viewer, Some(tenant), &event, &id).await;
            done(&format!("/campaigns/{id}"), notice_key)
        }
        Err(refusal) if refusal.missing => {
            state.views.error(who.viewer.lang, StatusCode::NOT_FOUND)
        }
        Err(refusal) => {
            let campaign = match tenants(&state, &who, &id).await {
                Ok(c) => c,
                Err(refused) => return refused,
            };
            let shown = Shown {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                values: None,
                error: Some(refusal),
                notice: None,
                preview_as: None,
            };
            show(&state, &who, &campaign, shown).await
        }
    }
}

/// `GET /campaigns/count?list=&segment=&exclude_list=&exclude_segment=`: `{"count"}` or
/// `{"error"}`, for the wizard's script.
pub async fn count<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let desk = match desk(&state, &who) {
        Ok(desk) => desk,
        Err(refused) => return refused,
    };
    let audience = form::audience(&Fields(pairs));
    match counted(&*desk, &who.tenant.id, audience).await {
        Ok(count) => Json(json!({ "count": count })).into_response(),
        Err(refusal) => Json(json!({ "error": refusal.to_string() })).into_response(),
    }
}

#[derive(Deserialize, Default)]
pub struct FrameQuery {
    variant: Option<usize>,
    address: Option<String>,
}

/// `GET /campaigns/{id}/preview.html?variant=&address=`: a content's HTML for the preview
/// frame, under [`PREVIEW_POLICY`].
pub async fn preview_html<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
    Query(query): Query<FrameQuery>,
) -> Response {
    let desk = match desk(&state, &who) {
        Ok(desk) => desk,
        Err(refused) => return refused,
    };
    let address = query.address.as_deref().filter(|a| !a.trim().is_empty());
    let html = match desk.preview(&who.tenant.id, &id, address).await {
        Ok(previews) => previews
            .into_iter()
            .nth(query.variant.unwrap_or(0))
            .and_then(|p| p.html)
            .unwrap_or_else(|| "<!doctype html><title>-</title><p>—</p>".into()),
        Err(refusal) if refusal.missing => {
            return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND);
        }
        Err(refusal) => format!(
            "<!doctype html><title>error</title><pre>{}</pre>",
            refusal
                .to_string()
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        ),
    };
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PREVIEW_POLICY),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    response
}

/// `GET /campaigns/{id}/report.csv`: every counter as `metric,dimension,count` (anyone who
/// may read the report).
pub async fn report_csv<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
) -> Response {
    let campaign = match tenants(&state, &who, &id).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let counts = match state.store().campaign_counts(&campaign.id).await {
        Ok(counts) => counts,
        Err(err) => return store_failed(&state, &who.viewer, err),
    };
    let mut csv = String::from("metric,dimension,count\r\n");
    for (metric, dimension, count) in counts {
        // Metrics and dimensions are the platform's own words: nothing to quote.
        csv.push_str(&format!("{metric},{dimension},{count}\r\n"));
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-report.csv\"", campaign.id),
            ),
        ],
        csv,
    )
        .into_response()
}
