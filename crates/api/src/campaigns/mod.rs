//! Campaigns over HTTP (scope `manage` to change, `read` to look):
//! `GET/POST /v1/campaigns`, `GET/PATCH /v1/campaigns/{id}` (a draft changes),
//! `POST /v1/campaigns/{id}/test` (a test message to chosen addresses),
//! `POST /v1/campaigns/{id}/send` (now, or at its schedule), and `.../unschedule`,
//! `.../pause`, `.../resume`, `.../cancel`, and `.../winner` (decides an A/B test now).
//!
//! A draft's documents are checked as they are given (each error names its field, such as
//! `audience.lists[0]` or `content.from`); sending checks them all against the tenant's
//! lists, segments, templates and sending domains, and freezes the template's version.

pub mod composer;
pub mod desk;
pub(crate) mod openapi;
pub(crate) mod report;

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use campaigns::documents::{Audience, Content, DocumentError, Schedule, read_window};
use campaigns::expand::SendError;
use campaigns::timing::Timing;
use serde_json::{Map, Value, json};
use store::{Campaign, CampaignDraft, CampaignState, CampaignStore};

use crate::ApiState;
use crate::auth::{Authorized, Manage, Read};
use crate::contacts::refused;
use crate::error::ApiError;
use crate::manage::{not_found, object_body};
use crate::records::invalid;
use crate::stored_templates::TemplatesStore;

/// Every store the campaigns' handlers need.
pub trait CampaignsStore: TemplatesStore + CampaignStore {}
impl<T: TemplatesStore + CampaignStore> CampaignsStore for T {}

/// Addresses one test send may go to.
const TEST_RECIPIENTS_MAX: usize = 10;

const FIELDS: &[&str] = &[
    "name",
    "audience",
    "content",
    "schedule",
    "rate_per_sec",
    "window",
    "ab",
];

pub(crate) fn failed(err: SendError) -> ApiError {
    match err {
        SendError::Document(DocumentError { field, message }) => invalid(&field, message),
        SendError::Store(err) => refused(err),
        SendError::Spool(err) => {
            let mut error = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the spool refused the message ({err})"),
            );
            error.retry_after = Some(5);
            error
        }
        SendError::Compose(message) => invalid("content", message),
    }
}

fn document(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

pub(crate) fn campaign_json(campaign: &Campaign) -> Value {
    let draft = &campaign.draft;
    json!({
        "id": campaign.id,
        "name": draft.name,
        "state": campaign.state.as_str(),
        "audience": document(&draft.audience),
        "content": document(&draft.content),
        "schedule": draft.schedule.as_deref().map(document),
        "rate_per_sec": draft.rate_per_sec,
        "window": draft.send_window.as_deref().map(document),
        "ab": draft.ab_test.as_deref().map(document),
        "ab_progress": draft.ab_test.as_ref().map(|_| json!({
            "test_recipients": campaign.ab.test_end,
            "decide_at_ms": campaign.ab.decide_at_ms,
            "winner": campaign.ab.winner,
            "winner_reason": campaign.ab.winner_reason,
            "decided_ms": campaign.ab.decided_ms,
        })),
        "created_ms": campaign.created_ms,
        "updated_ms": campaign.updated_ms,
        "started_ms": campaign.started_ms,
        "finished_ms": campaign.finished_ms,
        "progress": {
            "recipients": campaign.progress.recipients,
            "spooled": campaign.progress.spooled,
            "skipped": campaign.progress.skipped,
            "remaining": campaign.progress.recipients
                .map(|total| (total - campaign.progress.cursor).max(0)),
        },
    })
}

fn checked<T>(read: Result<T, DocumentError>) -> Result<T, ApiError> {
    read.map_err(|DocumentError { field, message }| invalid(&field, message))
}

/// A draft from a request body, over `base` (the stored draft when changing one): each
/// document given is checked and replaces the stored one; `null` clears an optional one.
fn draft_from(map: &Map<String, Value>, base: CampaignDraft) -> Result<CampaignDraft, ApiError> {
    let mut draft = base;
    if let Some(name) = map.get("name") {
        draft.name = name
            .as_str()
            .ok_or_else(|| invalid("name", "must be text"))?
            .to_string();
    }
    if let Some(audience) = map.get("audience") {
        checked(Audience::read(audience))?;
        draft.audience = audience.to_string();
    }
    if let Some(content) = map.get("content") {
        checked(Content::read(content))?;
        draft.content = content.to_string();
    }
    match map.get("schedule") {
        None => {}
        Some(Value::Null) => draft.schedule = None,
        Some(schedule) => {
            checked(Schedule::read(schedule))?;
            draft.schedule = Some(schedule.to_string());
        }
    }
    match map.get("window") {
        None => {}
        Some(Value::Null) => draft.send_window = None,
        Some(window) => {
            checked(read_window(window))?;
            draft.send_window = Some(window.to_string());
        }
    }
    match map.get("ab") {
        None => {}
        Some(Value::Null) => draft.ab_test = None,
        Some(ab) => {
            draft.ab_test = Some(ab.to_string());
        }
    }
    // The variants are checked over the campaign's content (either may have changed).
    if let Some(ab) = draft.ab_test.as_deref() {
        let content = document(&draft.content);
        let over = content
            .as_object()
            .is_some_and(|m| !m.is_empty())
            .then_some(&content);
        checked(campaigns::ab::AbTest::read(&document(ab), over))?;
    }
    match map.get("rate_per_sec") {
        None => {}
        Some(Value::Null) => draft.rate_per_sec = None,
        Some(rate) => match rate.as_i64() {
            Some(rate) if (1..=1_000_000).contains(&rate) => draft.rate_per_sec = Some(rate),
            _ => {
                return Err(invalid(
                    "rate_per_sec",
                    "must be a whole number of messages per second, 1 to 1000000",
                ));
            }
        },
    }
    Ok(draft)
}

pub(crate) async fn tenants_campaign<S: CampaignsStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    id: &str,
) -> Result<Campaign, ApiError> {
    state
        .tenancy
        .store
        .campaign(tenant_id, id)
        .await?
        .ok_or_else(not_found)
}

/// `GET /v1/campaigns`: the tenant's campaigns, newest first.
pub(crate) async fn all<S: CampaignsStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let campaigns = state.tenancy.store.campaigns(&key.tenant_id).await?;
    let list: Vec<Value> = campaigns.iter().map(campaign_json).collect();
    Ok(Json(json!({ "campaigns": list })).into_response())
}

/// `POST /v1/campaigns`: a new draft.
pub(crate) async fn add<S: CampaignsStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, FIELDS)?;
    let made = add_draft(&state, &key.tenant_id, &map).await?;
    Ok((StatusCode::CREATED, Json(campaign_json(&made))).into_response())
}

/// A new draft from a request's fields.
pub(crate) async fn add_draft<S: CampaignsStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    map: &Map<String, Value>,
) -> Result<Campaign, ApiError> {
    if !map.contains_key("name") {
        return Err(invalid("name", "is required"));
    }
    let base = CampaignDraft {
        audience: "{}".into(),
        content: "{}".into(),
        ..Default::default()
    };
    let draft = draft_from(map, base)?;
    state
        .tenancy
        .store
        .add_campaign(tenant_id, &draft)
        .await
        .map_err(refused)
}

/// `GET /v1/campaigns/{id}`
pub(crate) async fn get<S: CampaignsStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Read>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let campaign = tenants_campaign(&state, &key.tenant_id, &id).await?;
    Ok(Json(campaign_json(&campaign)).into_response())
}

/// `PATCH /v1/campaigns/{id}`: changes a draft.
pub(crate) async fn update<S: CampaignsStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, FIELDS)?;
    let campaign = change_draft(&state, &key.tenant_id, &id, &map).await?;
    Ok(Json(campaign_json(&campaign)).into_response())
}

/// Changes a draft with a request's fields.
pub(crate) async fn change_draft<S: CampaignsStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    id: &str,
    map: &Map<String, Value>,
) -> Result<Campaign, ApiError> {
    let campaign = tenants_campaign(state, tenant_id, id).await?;
    let draft = draft_from(map, campaign.draft)?;
    let store = &state.tenancy.store;
    if !store
        .update_draft(tenant_id, id, &draft)
        .await
        .map_err(refused)?
    {
        return Err(not_found());
    }
    tenants_campaign(state, tenant_id, id).await
}

/// `POST /v1/campaigns/{id}/test`: `{"to": [addresses]}`: the campaign's message to each,
/// personalised as the contact of that address (else with the template's test data), its
/// subject marked
/// `[Test]`. Any state; counts toward the tenant's limits like other mail.
pub(crate) async fn test<S: CampaignsStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object_body(&body, &["to"])?;
    let addresses = test_addresses(map.get("to"))?;
    let campaign = tenants_campaign(&state, &key.tenant_id, &id).await?;
    let sent = send_tests(&state, &campaign, &addresses).await?;
    let messages: Vec<Value> = sent
        .iter()
        .map(|(id, to)| json!({"id": id.to_string(), "to": to}))
        .collect();
    Ok(Json(json!({ "messages": messages })).into_response())
}

/// The addresses a test send goes to (`to`: 1 to 10 of them), lower-cased.
pub(crate) fn test_addresses(to: Option<&Value>) -> Result<Vec<String>, ApiError> {
    Ok(match to {
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= TEST_RECIPIENTS_MAX => {
            items
                .iter()
                .enumerate()
                .map(|(i, item)| match item.as_str().map(str::trim) {
                    Some(a) if a.contains('@') && !a.contains(char::is_whitespace) => {
                        Ok(a.to_ascii_lowercase())
                    }
                    _ => Err(invalid(&format!("to[{i}]"), "must be an e-mail address")),
                })
                .collect::<Result<_, _>>()?
        }
        _ => {
            return Err(invalid(
                "to",
                format!("must be 1 to {TEST_RECIPIENTS_MAX} addresses"),
            ));
        }
    })
}

/// Sends the campaign's test message (every A/B variant) to each address; the messages'
/// ids and recipients.
pub(crate) async fn send_tests<S: CampaignsStore>(
    state: &Arc<ApiState<S>>,
    campaign: &Campaign,
    addresses: &[String],
) -> Result<Vec<(spool::MessageId, String)>, ApiError> {
    let composer = composer::Composer {
        state: state.clone(),
    };
    let prepared = composer.prepared(&campaign).await.map_err(failed)?;
    state
        .tenancy
        .admit(
            &campaign.tenant_id,
            addresses.len() * prepared.variants.len(),
        )
        .await
        .map_err(ApiError::from)?;
    let store = &state.tenancy.store;
    let mut sent = Vec::new();
    for address in addresses {
        let contact = store.contact(&campaign.tenant_id, address).await?;
        // An A/B campaign's test goes out in every variant, each subject marked with its name.
        for (n, variant) in prepared.variants.iter().enumerate() {
            let data = match &contact {
                Some(contact) => composer::contact_data(address, Some(contact)),
                // No contact of that address: the template's own test data.
                None => {
                    let mut data = variant.test_data.clone();
                    if let Value::Object(map) = &mut data {
                        map.insert("email".into(), Value::from(address.as_str()));
                    }
                    data
                }
            };
            let id = state.spool.next_id();
            let message = prepared
                .message_for(&composer::Recipient {
                    address,
                    data: &data,
                    id,
                    not_before_ms: 0,
                    zone: None,
                    variant: n,
                    test: true,
                })
                .map_err(|err| invalid("content", err))?;
            let attributes = message.envelope.attributes.clone();
            state
                .spool
                .insert_with_prefix(id, message.envelope, &message.prefix, message.content)
                .await
                .map_err(|err| failed(err.into()))?;
            sent.push((id, address.clone(), attributes));
        }
    }
    prepared.record_accepted(&sent);
    Ok(sent.into_iter().map(|(id, to, _)| (id, to)).collect())
}

/// `POST /v1/campaigns/{id}/send`: checks everything against the tenant, freezes the
/// template's version, then sends now (no schedule) or waits for the schedule.
pub(crate) async fn send<S: CampaignsStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let campaign = start_send(&state, &key.tenant_id, &id).await?;
    Ok(Json(campaign_json(&campaign)).into_response())
}

/// Sends a draft: every document and reference checked, the template versions frozen,
/// then started now (no schedule, or one already due) or scheduled.
pub(crate) async fn start_send<S: CampaignsStore>(
    state: &Arc<ApiState<S>>,
    tenant_id: &str,
    id: &str,
) -> Result<Campaign, ApiError> {
    let campaign = tenants_campaign(state, tenant_id, id).await?;
    if campaign.state != CampaignState::Draft {
        return Err(invalid(
            "state",
            format!(
                "the campaign is {}: only a draft is sent",
                campaign.state.as_str()
            ),
        ));
    }
    let store = &state.tenancy.store;
    // Every document and reference checked before anything changes.
    let audience = checked(Audience::read(&document(&campaign.draft.audience)))?;
    campaigns::plan::resolve(store, tenant_id, &audience)
        .await
        .map_err(failed)?;
    let composer = composer::Composer {
        state: state.clone(),
    };
    composer.prepared(&campaign).await.map_err(failed)?;
    let timing = Timing::of(&campaign).map_err(|e| failed(e.into()))?;
    // The version sent is the one active now, whatever happens to the template later
    // (the campaign's and each A/B variant's).
    let mut frozen = campaign.draft.clone();
    let mut content_doc = document(&frozen.content);
    let mut changed = freeze_version(store, tenant_id, &mut content_doc).await?;
    let mut ab_doc = frozen.ab_test.as_deref().map(document);
    if let Some(variants) = ab_doc
        .as_mut()
        .and_then(|d| d.get_mut("variants"))
        .and_then(Value::as_array_mut)
    {
        for variant in variants {
            changed |= freeze_version(store, tenant_id, variant).await?;
        }
    }
    if changed {
        frozen.content = content_doc.to_string();
        frozen.ab_test = ab_doc.map(|d| d.to_string());
        store
            .update_draft(tenant_id, &campaign.id, &frozen)
            .await
            .map_err(refused)?;
    }
    let due = timing
        .starts_at()
        .is_none_or(|at| at <= jiff::Timestamp::now());
    let campaign = if due {
        let fresh = tenants_campaign(state, tenant_id, &id).await?;
        campaigns::runner::start(store, &fresh)
            .await
            .map_err(failed)?
    } else {
        store
            .set_campaign_state(tenant_id, &id, CampaignState::Scheduled)
            .await
            .map_err(refused)?
    };
    state.campaigns_wake.notify_one();
    tenants_campaign(state, tenant_id, &campaign.id).await
}

/// Names the active version in a content document (or variant) that names a template
/// but no version, and marks it used; true when it changed the document.
async fn freeze_version<S: CampaignsStore>(
    store: &S,
    tenant_id: &str,
    doc: &mut Value,
) -> Result<bool, ApiError> {
    let Some(id) = doc.get("template_id").and_then(Value::as_str) else {
        return Ok(false);
    };
    if doc.get("template_version").is_some_and(|v| !v.is_null()) {
        return Ok(false);
    }
    let Some(template) = store.template(tenant_id, id).await? else {
        return Ok(false);
    };
    let Some(active) = template.active_version else {
        return Ok(false);
    };
    doc["template_version"] = Value::from(active);
    store.mark_version_used(&template.id, active).await?;
    Ok(true)
}

async fn move_to<S: CampaignsStore>(
    state: &Arc<ApiState<S>>,
    tenant_id: &str,
    id: &str,
    next: CampaignState,
) -> Result<Response, ApiError> {
    let campaign = moved(state, tenant_id, id, next).await?;
    Ok(Json(campaign_json(&campaign)).into_response())
}

/// Moves a campaign to `next` (pause, resume, back to draft, cancel); a cancelled
/// campaign's queued messages are withdrawn.
pub(crate) async fn moved<S: CampaignsStore>(
    state: &Arc<ApiState<S>>,
    tenant_id: &str,
    id: &str,
    next: CampaignState,
) -> Result<Campaign, ApiError> {
    tenants_campaign(state, tenant_id, id).await?;
    state
        .tenancy
        .store
        .set_campaign_state(tenant_id, id, next)
        .await
        .map_err(refused)?;
    state.campaigns_wake.notify_one();
    if next == CampaignState::Cancelled
        && let Some(queue) = state.queue.get()
    {
        campaigns::expand::withdraw_campaign(&state.tenancy.store, &**queue, id)
            .await
            .map_err(failed)?;
    }
    tenants_campaign(state, tenant_id, id).await
}

/// `POST /v1/campaigns/{id}/unschedule`: a scheduled campaign back to draft.
pub(crate) async fn unschedule<S: CampaignsStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    move_to(&state, &key.tenant_id, &id, CampaignState::Draft).await
}

/// `POST /v1/campaigns/{id}/pause`: stops spooling more recipients.
pub(crate) async fn pause<S: CampaignsStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    move_to(&state, &key.tenant_id, &id, CampaignState::Paused).await
}

/// `POST /v1/campaigns/{id}/resume`: goes on from where it stopped.
pub(crate) async fn resume<S: CampaignsStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    move_to(&state, &key.tenant_id, &id, CampaignState::Sending).await
}

/// `POST /v1/campaigns/{id}/cancel`: nobody else is spooled, and its messages still
/// waiting in the queue (a local-time or windowed campaign's, or deferred ones) are taken
/// out of it.
pub(crate) async fn cancel<S: CampaignsStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    move_to(&state, &key.tenant_id, &id, CampaignState::Cancelled).await
}

/// `POST /v1/campaigns/{id}/winner`: decides an A/B test now instead of after its wait,
/// by its metric (`{}`) or as the operator chooses (`{"variant": n}`); the rest of the
/// audience then gets the winner.
pub(crate) async fn winner<S: CampaignsStore>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Manage>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        object_body(&body, &["variant"])?
    };
    let chosen = match map.get("variant") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| invalid("variant", "must be a variant number (0-based)"))?,
        ),
    };
    let campaign = choose_winner(&state, &key.tenant_id, &id, chosen).await?;
    Ok(Json(campaign_json(&campaign)).into_response())
}

/// Decides a sending campaign's A/B test now: by its metric, or the `chosen` variant.
pub(crate) async fn choose_winner<S: CampaignsStore>(
    state: &Arc<ApiState<S>>,
    tenant_id: &str,
    id: &str,
    chosen: Option<usize>,
) -> Result<Campaign, ApiError> {
    let campaign = tenants_campaign(state, tenant_id, id).await?;
    if campaign.draft.ab_test.is_none() {
        return Err(invalid("ab", "the campaign has no A/B test"));
    }
    if !campaign.testing() {
        return Err(invalid("state", "the A/B test is already decided"));
    }
    if !matches!(
        campaign.state,
        CampaignState::Sending | CampaignState::Paused
    ) {
        return Err(invalid(
            "state",
            format!(
                "the campaign is {}: a winner is chosen while it sends",
                campaign.state.as_str()
            ),
        ));
    }
    if campaigns::runner::decide(&state.tenancy.store, &campaign, chosen)
        .await
        .map_err(failed)?
        .is_none()
    {
        return Err(invalid("state", "the A/B test is already decided"));
    }
    state.campaigns_wake.notify_one();
    tenants_campaign(state, tenant_id, id).await
}
