//! Mailjet's `campaigndraft` (with `detailcontent`, `test`, `send` and `schedule`) over
//! tsubame's campaigns: a draft made here is a native campaign (the same states, checks,
//! durable expansion, tracking and reports), numbered for Mailjet; once sent, its
//! `CampaignID` is that same number, which `statcounters` takes as `SourceId`.
//!
//! Mailjet's fields map onto the campaign's documents: `ContactsListID` is the audience's
//! list, `SegmentationID` narrows it to a segment (`filter_segments`), `SenderEmail`,
//! `SenderName` (else `Sender`), `ReplyEmail` and `Subject` the content; the body is
//! `detailcontent`'s `Html-part` and `Text-part` in Mailjet's template language
//! (`[[data:name:"default"]]` reads the contact's properties), or the template
//! `TemplateID` names. `Locale`, `EditMode` and the other descriptive fields are accepted
//! and not kept.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use store::{Campaign, CampaignDraft, CampaignState, CompatKind};

use super::{MjError, MjKey, MjStore, Page, body, created, data, number, numbers, object, text};
use crate::ApiState;
use crate::auth::{Manage, Read};
use crate::campaigns::{send_tests, start_send};

/// Mailjet's draft status: -1 archived (cancelled here), 0 draft, 1 programmed, 2 sent
/// (sending, paused or done).
fn status(state: CampaignState) -> i64 {
    match state {
        CampaignState::Draft => 0,
        CampaignState::Scheduled => 1,
        CampaignState::Sending | CampaignState::Paused | CampaignState::Sent => 2,
        CampaignState::Cancelled => -1,
    }
}

fn document(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn field<'a>(map: &'a Map<String, Value>, name: &str) -> &'a str {
    map.get(name).and_then(Value::as_str).unwrap_or("")
}

/// Mailjet's numbers of the objects a draft names (0 for none).
struct Numbers {
    draft: i64,
    list: i64,
    segment: i64,
    template: i64,
}

async fn numbers_of<S: MjStore>(
    state: &ApiState<S>,
    campaign: &Campaign,
) -> Result<Numbers, MjError> {
    let tenant = &campaign.tenant_id;
    let audience = document(&campaign.draft.audience);
    let content = document(&campaign.draft.content);
    let first = |name: &str| {
        audience
            .get(name)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let one = |kind, id: Option<String>| async move {
        match id {
            Some(id) => numbers(state, tenant, kind, &[id])
                .await
                .map(|n| n.first().copied().unwrap_or(0)),
            None => Ok(0),
        }
    };
    Ok(Numbers {
        draft: number(state, tenant, CompatKind::Campaign, &campaign.id).await?,
        list: one(CompatKind::List, first("lists")).await?,
        segment: one(CompatKind::Segment, first("filter_segments")).await?,
        template: one(
            CompatKind::Template,
            content
                .get("template_id")
                .and_then(Value::as_str)
                .map(str::to_string),
        )
        .await?,
    })
}

fn draft_json(campaign: &Campaign, n: &Numbers) -> Value {
    let content = document(&campaign.draft.content);
    let time = |ms: Option<i64>| super::time(ms);
    let sent = !matches!(
        campaign.state,
        CampaignState::Draft | CampaignState::Scheduled
    );
    json!({
        "AXFraction": 0,
        "AXFractionName": "",
        "AXTesting": null,
        "CampaignID": if sent { n.draft } else { 0 },
        "ContactsListID": n.list,
        "CreatedAt": time(Some(campaign.created_ms)),
        "Current": 0,
        "DeliveredAt": time(campaign.finished_ms),
        "EditMode": "html2",
        "ID": n.draft,
        "IsStarred": false,
        "IsTextPartIncluded": content.get("text").is_some_and(Value::is_string),
        "Locale": "en_US",
        "ModifiedAt": time(Some(campaign.updated_ms)),
        "Preset": "",
        "ReplyEmail": field(&content, "reply_to"),
        "SegmentationID": n.segment,
        "Sender": field(&content, "from_name"),
        "SenderEmail": field(&content, "from"),
        "SenderName": field(&content, "from_name"),
        "Status": status(campaign.state),
        "Subject": field(&content, "subject"),
        "TemplateID": n.template,
        "Title": campaign.draft.name,
        "Url": "",
        "Used": sent,
    })
}

async fn tenants_draft<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    number: &str,
) -> Result<Campaign, MjError> {
    let id = object(state, tenant_id, CompatKind::Campaign, number).await?;
    state
        .tenancy
        .store
        .campaign(tenant_id, &id)
        .await?
        .ok_or_else(MjError::not_found)
}

/// The object a Mailjet number (given as a number or digits) names, or a 400 naming the
/// property.
async fn named<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    kind: CompatKind,
    map: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, MjError> {
    let Some(value) = map.get(name).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let number = super::integer(Some(value))
        .ok_or_else(|| MjError::bad(format!("\"{name}\" must be an ID")))?;
    if number == 0 {
        return Ok(None);
    }
    state
        .tenancy
        .store
        .object(tenant_id, kind, number)
        .await?
        .map(Some)
        .ok_or_else(|| {
            MjError::bad(format!(
                "\"{name}\" {number} is not an object of this account"
            ))
        })
}

/// Applies a `campaigndraft` body (all of it for a new draft, what it gives for a PUT)
/// to the draft's documents, checking each field.
async fn apply<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    map: &Map<String, Value>,
    draft: &mut CampaignDraft,
) -> Result<(), MjError> {
    let mut audience = document(&draft.audience);
    let mut content = document(&draft.content);
    if map.contains_key("ContactsListID") {
        match named(state, tenant_id, CompatKind::List, map, "ContactsListID").await? {
            Some(list) => audience.insert("lists".into(), json!([list])),
            None => audience.remove("lists"),
        };
    }
    if map.contains_key("SegmentationID") {
        match named(state, tenant_id, CompatKind::Segment, map, "SegmentationID").await? {
            Some(segment) => audience.insert("filter_segments".into(), json!([segment])),
            None => audience.remove("filter_segments"),
        };
    }
    if map.contains_key("TemplateID") {
        match named(state, tenant_id, CompatKind::Template, map, "TemplateID").await? {
            Some(template) => {
                content.insert("template_id".into(), Value::from(template));
                for part in ["html", "text", "dialect", "template_version"] {
                    content.remove(part);
                }
            }
            None => {
                content.remove("template_id");
            }
        }
    }
    for (mailjet, ours) in [
        ("SenderEmail", "from"),
        ("Subject", "subject"),
        ("ReplyEmail", "reply_to"),
    ] {
        if let Some(value) = text(map, mailjet)? {
            content.insert(ours.into(), Value::from(value.trim()));
        }
    }
    // Mailjet's `Sender` is the sender's name unless `SenderName` says it.
    if let Some(name) = text(map, "SenderName")?.or(text(map, "Sender")?) {
        content.insert("from_name".into(), Value::from(name.trim()));
    }
    if let Some(title) = text(map, "Title")? {
        draft.name = title.to_string();
    }
    if draft.name.trim().is_empty() {
        draft.name = field(&content, "subject").to_string();
    }
    if !content.contains_key("template_id") {
        content.insert("dialect".into(), Value::from("mailjet"));
    }
    check(&content)?;
    draft.audience = Value::Object(audience).to_string();
    draft.content = Value::Object(content).to_string();
    Ok(())
}

/// What can be checked before the body is set: the sender's address and the one-line
/// fields (a body stands in for the one `detailcontent` gives later).
fn check(content: &Map<String, Value>) -> Result<(), MjError> {
    let mut probe = content.clone();
    if !probe.contains_key("template_id") && !probe.contains_key("html") {
        probe.insert("text".into(), Value::from("-"));
    }
    if !probe.contains_key("subject") && !probe.contains_key("template_id") {
        probe.insert("subject".into(), Value::from("-"));
    }
    campaigns::documents::Content::read(&Value::Object(probe)).map_err(|e| {
        let name = match e.field.as_str() {
            "content.from" => "SenderEmail",
            "content.from_name" => "SenderName",
            "content.reply_to" => "ReplyEmail",
            "content.subject" => "Subject",
            other => other,
        };
        MjError::bad(format!("\"{name}\" {}", e.message))
    })?;
    Ok(())
}

/// `GET /v3/REST/campaigndraft?Limit=&Offset=`: the account's campaigns, newest first.
pub(crate) async fn all<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Query(query): Query<HashMap<String, String>>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let page = Page::from(&query)?;
    let campaigns = state.tenancy.store.campaigns(&key.tenant_id).await?;
    let (campaigns, total) = page.apply(campaigns);
    let mut items = Vec::with_capacity(campaigns.len());
    for campaign in &campaigns {
        items.push(draft_json(campaign, &numbers_of(&state, campaign).await?));
    }
    Ok(data(items, total))
}

/// `POST /v3/REST/campaigndraft`: `{"SenderEmail", "Subject", "ContactsListID", "Title"?,
/// "SenderName"?/"Sender"?, "ReplyEmail"?, "SegmentationID"?, "TemplateID"?, "Locale"?}`.
pub(crate) async fn add<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let map = body(&bytes)?;
    for required in ["SenderEmail", "Subject", "ContactsListID"] {
        if map.get(required).is_none_or(Value::is_null) {
            return Err(MjError::bad(format!("\"{required}\" is required")));
        }
    }
    let mut draft = CampaignDraft {
        audience: "{}".into(),
        content: "{}".into(),
        ..Default::default()
    };
    apply(&state, &key.tenant_id, &map, &mut draft).await?;
    let store = &state.tenancy.store;
    let made = store.add_campaign(&key.tenant_id, &draft).await?;
    let numbers = numbers_of(&state, &made).await?;
    Ok(created(draft_json(&made, &numbers)))
}

/// `GET /v3/REST/campaigndraft/{id}`
pub(crate) async fn get<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let campaign = tenants_draft(&state, &key.tenant_id, &id).await?;
    let numbers = numbers_of(&state, &campaign).await?;
    Ok(data(vec![draft_json(&campaign, &numbers)], 1))
}

/// `PUT /v3/REST/campaigndraft/{id}`: changes the fields given (a draft only).
pub(crate) async fn update<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let map = body(&bytes)?;
    let campaign = tenants_draft(&state, &key.tenant_id, &id).await?;
    let mut draft = campaign.draft.clone();
    apply(&state, &key.tenant_id, &map, &mut draft).await?;
    let store = &state.tenancy.store;
    store
        .update_draft(&key.tenant_id, &campaign.id, &draft)
        .await?;
    let campaign = tenants_draft(&state, &key.tenant_id, &id).await?;
    let numbers = numbers_of(&state, &campaign).await?;
    Ok(data(vec![draft_json(&campaign, &numbers)], 1))
}

fn parts_json(subject: &str, html: Option<&str>, text: Option<&str>) -> Value {
    json!({
        "Headers": { "Subject": subject },
        "Html-part": html.unwrap_or(""),
        "Text-part": text.unwrap_or(""),
        "MJMLContent": "",
    })
}

/// `GET /v3/REST/campaigndraft/{id}/detailcontent`: the draft's body, or its template's.
pub(crate) async fn content<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let campaign = tenants_draft(&state, &key.tenant_id, &id).await?;
    let content = document(&campaign.draft.content);
    let store = &state.tenancy.store;
    if let Some(template_id) = content.get("template_id").and_then(Value::as_str) {
        let template = store.template(&key.tenant_id, template_id).await?;
        let number = content
            .get("template_version")
            .and_then(Value::as_i64)
            .or(template.as_ref().and_then(|t| t.active_version));
        let version = match (template, number) {
            (Some(t), Some(n)) => store.version(&key.tenant_id, &t.id, n).await?,
            _ => None,
        };
        let subject = content
            .get("subject")
            .and_then(Value::as_str)
            .or(version.as_ref().map(|v| v.content.subject.as_str()))
            .unwrap_or("");
        return Ok(data(
            vec![parts_json(
                subject,
                version.as_ref().and_then(|v| v.content.html.as_deref()),
                version.as_ref().and_then(|v| v.content.text.as_deref()),
            )],
            1,
        ));
    }
    Ok(data(
        vec![parts_json(
            field(&content, "subject"),
            content.get("html").and_then(Value::as_str),
            content.get("text").and_then(Value::as_str),
        )],
        1,
    ))
}

/// `POST /v3/REST/campaigndraft/{id}/detailcontent` sets both parts (one not given is
/// emptied); `PUT` keeps a part not given. The body replaces a template.
async fn set_parts<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    id: &str,
    bytes: &[u8],
    keep: bool,
) -> Result<Response, MjError> {
    let map = body(bytes)?;
    let campaign = tenants_draft(state, tenant_id, id).await?;
    let mut content = document(&campaign.draft.content);
    if content.contains_key("template_id") {
        for field in ["template_id", "template_version"] {
            content.remove(field);
        }
        content.insert("dialect".into(), Value::from("mailjet"));
    }
    for (mailjet, ours) in [("Html-part", "html"), ("Text-part", "text")] {
        match text(&map, mailjet)? {
            Some(part) if !part.is_empty() => {
                content.insert(ours.into(), Value::from(part));
            }
            Some(_) => {
                content.remove(ours);
            }
            None if keep => {}
            None => {
                content.remove(ours);
            }
        }
    }
    if let Some(Value::Object(headers)) = map.get("Headers")
        && let Some(subject) = text(headers, "Subject")?
    {
        content.insert("subject".into(), Value::from(subject));
    }
    if !content.contains_key("html") && !content.contains_key("text") {
        return Err(MjError::bad("\"Html-part\" or \"Text-part\" is required"));
    }
    check(&content)?;
    let html = content
        .get("html")
        .and_then(Value::as_str)
        .map(str::to_string);
    let text_part = content
        .get("text")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut draft = campaign.draft.clone();
    draft.content = Value::Object(content).to_string();
    state
        .tenancy
        .store
        .update_draft(tenant_id, &campaign.id, &draft)
        .await?;
    Ok(created(json!({
        "Html-part": html.unwrap_or_default(),
        "Text-part": text_part.unwrap_or_default(),
    })))
}

pub(crate) async fn post_content<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    set_parts(&state, &key.tenant_id, &id, &bytes, false).await
}

pub(crate) async fn put_content<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    set_parts(&state, &key.tenant_id, &id, &bytes, true).await
}

/// `POST /v3/REST/campaigndraft/{id}/test`: `{"Recipients": [{"Email", "Name"?}]}` (1 to
/// 10): the test message to each, subject marked `[Test]`, left out of reports.
pub(crate) async fn test<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let map = body(&bytes)?;
    let recipients = match map.get("Recipients") {
        Some(Value::Array(items)) if (1..=10).contains(&items.len()) => items,
        _ => return Err(MjError::bad("\"Recipients\" must list 1 to 10 recipients")),
    };
    let mut addresses = Vec::with_capacity(recipients.len());
    for (i, recipient) in recipients.iter().enumerate() {
        match recipient
            .get("Email")
            .and_then(Value::as_str)
            .map(str::trim)
        {
            Some(a) if a.contains('@') && !a.contains(char::is_whitespace) => {
                addresses.push(a.to_ascii_lowercase())
            }
            _ => {
                return Err(MjError::bad(format!(
                    "\"Recipients[{i}].Email\" must be an e-mail address"
                )));
            }
        }
    }
    let campaign = tenants_draft(&state, &key.tenant_id, &id).await?;
    send_tests(&state, &campaign, &addresses).await?;
    Ok(created(json!({ "Status": "Draft" })))
}

/// `POST /v3/REST/campaigndraft/{id}/send`: sends the draft now.
pub(crate) async fn send<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
) -> Result<Response, MjError> {
    let campaign = tenants_draft(&state, &key.tenant_id, &id).await?;
    let store = &state.tenancy.store;
    if campaign.state == CampaignState::Draft && campaign.draft.schedule.is_some() {
        // Sent now, whatever time a schedule said before.
        let mut draft = campaign.draft.clone();
        draft.schedule = None;
        store
            .update_draft(&key.tenant_id, &campaign.id, &draft)
            .await?;
    }
    start_send(&state, &key.tenant_id, &campaign.id).await?;
    Ok(created(json!({ "Status": "Programmed" })))
}

/// Mailjet's schedule date: RFC 3339, or a date and time without offset (UTC), or `NOW`.
fn schedule_date(text: &str) -> Option<jiff::Timestamp> {
    if text.eq_ignore_ascii_case("now") {
        return Some(jiff::Timestamp::now());
    }
    text.parse::<jiff::Timestamp>().ok().or_else(|| {
        text.parse::<jiff::civil::DateTime>()
            .ok()
            .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp())
    })
}

/// `POST /v3/REST/campaigndraft/{id}/schedule`: `{"Date"}` (ISO 8601, or `NOW`); the
/// draft is checked and programmed for then.
pub(crate) async fn schedule<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let map = body(&bytes)?;
    let given = text(&map, "Date")?
        .or(text(&map, "date")?)
        .ok_or_else(|| MjError::bad("\"Date\" is required"))?;
    let at = schedule_date(given)
        .ok_or_else(|| MjError::bad("\"Date\" must be an ISO 8601 date and time, or NOW"))?;
    let now = jiff::Timestamp::now();
    if !given.eq_ignore_ascii_case("now") && at < now {
        return Err(MjError::bad("\"Date\" is in the past"));
    }
    let campaign = tenants_draft(&state, &key.tenant_id, &id).await?;
    let store = &state.tenancy.store;
    if campaign.state == CampaignState::Scheduled {
        // Programmed already: moved back to draft to take the new date.
        store
            .set_campaign_state(&key.tenant_id, &campaign.id, CampaignState::Draft)
            .await?;
    }
    let mut draft = campaign.draft.clone();
    draft.schedule = Some(json!({ "at": at.to_string() }).to_string());
    store
        .update_draft(&key.tenant_id, &campaign.id, &draft)
        .await?;
    start_send(&state, &key.tenant_id, &campaign.id).await?;
    Ok(created(
        json!({ "Date": at.to_string(), "Status": "Programmed" }),
    ))
}

/// `GET /v3/REST/campaigndraft/{id}/schedule`
pub(crate) async fn scheduled<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let campaign = tenants_draft(&state, &key.tenant_id, &id).await?;
    let at = campaign
        .draft
        .schedule
        .as_deref()
        .map(document)
        .and_then(|s| s.get("at").and_then(Value::as_str).map(str::to_string));
    match (campaign.state, at) {
        (CampaignState::Scheduled, Some(at)) => {
            Ok(data(vec![json!({ "Date": at, "Status": "Programmed" })], 1))
        }
        _ => Err(MjError::not_found()),
    }
}

/// `DELETE /v3/REST/campaigndraft/{id}/schedule`: back to draft.
pub(crate) async fn unschedule<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Manage>,
) -> Result<Response, MjError> {
    let campaign = tenants_draft(&state, &key.tenant_id, &id).await?;
    if campaign.state != CampaignState::Scheduled {
        return Err(MjError::bad("the campaign draft is not programmed"));
    }
    state
        .tenancy
        .store
        .set_campaign_state(&key.tenant_id, &campaign.id, CampaignState::Draft)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v3/REST/statcounters?CounterSource=Campaign&SourceId=&CounterTiming=Message|Event
/// &CounterResolution=Lifetime`: a campaign's counters in Mailjet's names (from the same
/// counters as the native report: nothing is scanned). `Message…` counts messages (opened
/// or clicked at least once), `Event…` every open and click; machines are left out.
pub(crate) async fn statcounters<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Query(query): Query<HashMap<String, String>>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    match param("CounterSource") {
        Some(s) if s.eq_ignore_ascii_case("campaign") => {}
        Some(_) => {
            return Err(MjError::bad(
                "\"CounterSource\": only Campaign is supported here",
            ));
        }
        None => return Err(MjError::bad("\"CounterSource\" is required")),
    }
    match param("CounterTiming") {
        Some(t) if t.eq_ignore_ascii_case("message") || t.eq_ignore_ascii_case("event") => {}
        _ => return Err(MjError::bad("\"CounterTiming\" must be Message or Event")),
    }
    match param("CounterResolution") {
        Some(r) if r.eq_ignore_ascii_case("lifetime") => {}
        _ => {
            return Err(MjError::bad(
                "\"CounterResolution\": only Lifetime is supported here",
            ));
        }
    }
    let source = param("SourceId").ok_or_else(|| MjError::bad("\"SourceId\" is required"))?;
    let campaign = tenants_draft(&state, &key.tenant_id, source).await?;
    let counts = state.tenancy.store.campaign_counts(&campaign.id).await?;
    let get = |metric: &str| {
        counts
            .iter()
            .find(|(m, d, _)| m == metric && d.is_empty())
            .map_or(0, |(_, _, c)| *c)
    };
    let sent = get("sent");
    let delivered = get("delivered");
    let (hard, soft) = (get("bounced"), get("expired"));
    let number = number(&state, &key.tenant_id, CompatKind::Campaign, &campaign.id).await?;
    let row = json!({
        "APIKeyID": 0,
        "EventClickDelay": 0,
        "EventClickedCount": get("clicked"),
        "EventOpenDelay": 0,
        "EventOpenedCount": get("opened"),
        "EventSpamCount": get("complained"),
        "EventUnsubscribedCount": get("unsubscribed"),
        "EventWorkflowExitedCount": 0,
        "MessageBlockedCount": campaign.progress.skipped,
        "MessageClickedCount": get("clicked_unique"),
        "MessageDeferredCount": get("deferred"),
        "MessageHardBouncedCount": hard,
        "MessageOpenedCount": get("opened_unique"),
        "MessageQueuedCount": (sent - delivered - hard - soft).max(0),
        "MessageSentCount": delivered,
        "MessageSoftBouncedCount": soft,
        "MessageSpamCount": get("complained"),
        "MessageUnsubscribedCount": get("unsubscribed"),
        "MessageWorkFlowExitedCount": 0,
        "SourceID": number,
        "Timeslice": "",
        "Total": sent,
    });
    Ok(data(vec![row], 1))
}
