//! The OpenAPI description of campaigns (merged into the API document by
//! [`crate::openapi`]); wire format only, the handlers check requests themselves.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::openapi::{Errors, ManageFailures, ReadFailures};

/// Who a campaign goes to: lists and saved segments (ids or names), less exclusions.
/// Suppressed addresses are always left out; members of an exclusion list in any state
/// are left out.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"lists": ["News"], "exclude_segments": ["Bounced lately"]}))]
pub struct CampaignAudience {
    pub lists: Option<Vec<String>>,
    pub segments: Option<Vec<String>>,
    pub exclude_lists: Option<Vec<String>>,
    pub exclude_segments: Option<Vec<String>>,
    /// Narrows the audience to the contacts also in every one of these segments.
    pub filter_segments: Option<Vec<String>>,
}

/// The sender and the body: a stored template (its active version when sent, unless one is
/// named) or the campaign's own subject and bodies (native template syntax). Contact
/// properties, `email`, `country`, `locale` and `timezone` fill the template.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"from": "news@example.com", "from_name": "Example News",
    "subject": "Hello {{ first_name | default('there') }}", "text": "Our news."}))]
pub struct CampaignContent {
    /// An address at one of the account's sending domains.
    pub from: Option<String>,
    /// One line.
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    /// A stored template's id or name.
    pub template_id: Option<String>,
    pub template_version: Option<i64>,
    /// One line.
    pub subject: Option<String>,
    pub html: Option<String>,
    pub text: Option<String>,
    /// The template language of the inline subject and bodies: `native` (default),
    /// `mailjet` or `handlebars`.
    pub dialect: Option<String>,
}

/// A local date and time in each recipient's zone (the contact's, else its country's
/// usual one, else UTC).
#[derive(Serialize, ToSchema)]
pub struct LocalTime {
    #[schema(example = "2026-12-24")]
    pub date: String,
    #[schema(example = "09:00")]
    pub time: String,
    /// For recipients whose moment has passed when the send starts: `next_day` (default)
    /// or `at_once`.
    pub passed: Option<String>,
}

/// When: one instant (`at`, RFC 3339 or Unix ms) or a local time (`local`).
#[derive(Serialize, ToSchema)]
pub struct CampaignSchedule {
    pub at: Option<serde_json::Value>,
    pub local: Option<LocalTime>,
}

/// Days and hours a recipient may be sent, in the recipient's zone.
#[derive(Serialize, ToSchema)]
pub struct SendWindow {
    /// mon ... sun; default Monday to Friday.
    pub days: Option<Vec<String>>,
    #[schema(example = "09:00")]
    pub from: String,
    #[schema(example = "20:00")]
    pub to: String,
}

/// One A/B variant: the content fields it changes over the campaign's, and its own send
/// time for the test group.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"name": "B", "subject": "Last chance: {{ first_name }}"}))]
pub struct AbVariant {
    /// Default A, B, C, ...
    pub name: Option<String>,
    pub subject: Option<String>,
    pub from_name: Option<String>,
    pub html: Option<String>,
    pub text: Option<String>,
    pub template_id: Option<String>,
    pub template_version: Option<i64>,
    pub schedule: Option<CampaignSchedule>,
}

/// An A/B test: a random test group of the audience gets the variants in equal shares;
/// after the wait the winner (by unique human opens or clicks over delivered, with a
/// two-proportion z-test at the confidence) goes to the rest. When no variant is
/// significantly better, `fallback` decides: `leader` (the best rate all the same) or
/// `first`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"variants": [{"subject": "December news"}, {"subject": "Your December"}],
    "test_percent": 20, "metric": "opens", "wait_minutes": 240}))]
pub struct AbTest {
    /// 2 to 10.
    pub variants: Vec<AbVariant>,
    /// 1 to 100 (default 20).
    pub test_percent: Option<u32>,
    /// opens (default) or clicks.
    pub metric: Option<String>,
    /// 0 to 10080 (default 240).
    pub wait_minutes: Option<f64>,
    /// leader (default) or first.
    pub fallback: Option<String>,
    /// 0.8 to 0.999 (default 0.95).
    pub confidence: Option<f64>,
}

/// How far an A/B test got.
#[derive(Serialize, ToSchema)]
pub struct AbProgress {
    pub test_recipients: Option<i64>,
    pub decide_at_ms: Option<i64>,
    pub winner: Option<i64>,
    pub winner_reason: Option<String>,
    pub decided_ms: Option<i64>,
}

/// A draft, or the fields of one to change (`null` clears schedule, window and rate).
#[derive(Serialize, ToSchema)]
pub struct CampaignDraft {
    /// 1-200 characters, one line. Required when making one.
    #[schema(example = "December newsletter")]
    pub name: Option<String>,
    pub audience: Option<CampaignAudience>,
    pub content: Option<CampaignContent>,
    #[schema(nullable)]
    pub schedule: Option<CampaignSchedule>,
    /// Messages per second at most, 1 to 1,000,000; the providers' shaping applies too.
    #[schema(nullable)]
    pub rate_per_sec: Option<i64>,
    #[schema(nullable)]
    pub window: Option<SendWindow>,
    #[schema(nullable)]
    pub ab: Option<AbTest>,
}

#[derive(Serialize, ToSchema)]
pub struct CampaignProgress {
    /// The audience's size once the send started.
    pub recipients: Option<i64>,
    pub spooled: i64,
    /// Suppressed or deleted after the start, or whose message could not be composed.
    pub skipped: i64,
    pub remaining: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    /// draft, scheduled, sending, paused, sent or cancelled.
    pub state: String,
    pub audience: serde_json::Value,
    pub content: serde_json::Value,
    pub schedule: Option<serde_json::Value>,
    pub rate_per_sec: Option<i64>,
    pub window: Option<serde_json::Value>,
    pub ab: Option<serde_json::Value>,
    pub ab_progress: Option<AbProgress>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub progress: CampaignProgress,
}

#[derive(Serialize, ToSchema)]
pub struct Campaigns {
    pub campaigns: Vec<Campaign>,
}

#[derive(Serialize, ToSchema)]
pub struct TestSend {
    /// 1 to 10 addresses.
    #[schema(example = json!(["me@example.com"]))]
    pub to: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TestMessage {
    pub id: String,
    pub to: String,
}

#[derive(Serialize, ToSchema)]
pub struct TestSent {
    pub messages: Vec<TestMessage>,
}

#[utoipa::path(get, path = "/v1/campaigns", tag = "campaigns",
    responses((status = 200, description = "The account's campaigns, newest first", body = Campaigns), ReadFailures))]
#[allow(dead_code)]
pub(crate) fn list_campaigns() {}

#[utoipa::path(post, path = "/v1/campaigns", tag = "campaigns", request_body = CampaignDraft,
    responses(
        (status = 201, description = "A new draft", body = Campaign),
        (status = 400, description = "Invalid; the error names the field (`audience.lists[0]`)", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn add_campaign() {}

#[utoipa::path(get, path = "/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = String, Path, description = "A campaign id")),
    responses(
        (status = 200, description = "The campaign and its progress", body = Campaign),
        (status = 404, description = "Not a campaign of this account", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn get_campaign() {}

#[utoipa::path(patch, path = "/v1/campaigns/{id}", tag = "campaigns", request_body = CampaignDraft,
    params(("id" = String, Path, description = "A campaign id")),
    responses(
        (status = 200, description = "Changed", body = Campaign),
        (status = 400, description = "Invalid, or no longer a draft (field `state`)", body = Errors),
        (status = 404, description = "Not a campaign of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn update_campaign() {}

#[utoipa::path(post, path = "/v1/campaigns/{id}/test", tag = "campaigns", request_body = TestSend,
    params(("id" = String, Path, description = "A campaign id")),
    responses(
        (status = 200, description = "Queued, subject marked [Test]", body = TestSent),
        (status = 400, description = "Invalid addresses, or content that cannot be sent (the error names the field)", body = Errors),
        (status = 403, description = "The sender's domain is not the account's", body = Errors),
        (status = 404, description = "Not a campaign of this account", body = Errors),
        (status = 429, description = "Over the account's rate or daily quota", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn test_campaign() {}

#[utoipa::path(post, path = "/v1/campaigns/{id}/send", tag = "campaigns",
    params(("id" = String, Path, description = "A campaign id")),
    responses(
        (status = 200, description = "Sending (or scheduled, when it has a schedule); the template version is frozen", body = Campaign),
        (status = 400, description = "Not a draft, or a document or reference that does not check (the error names the field)", body = Errors),
        (status = 404, description = "Not a campaign of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn send_campaign() {}

#[utoipa::path(post, path = "/v1/campaigns/{id}/unschedule", tag = "campaigns",
    params(("id" = String, Path, description = "A campaign id")),
    responses(
        (status = 200, description = "Back to draft", body = Campaign),
        (status = 400, description = "Not scheduled (field `state`)", body = Errors),
        (status = 404, description = "Not a campaign of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn unschedule_campaign() {}

#[utoipa::path(post, path = "/v1/campaigns/{id}/pause", tag = "campaigns",
    params(("id" = String, Path, description = "A campaign id")),
    responses(
        (status = 200, description = "Paused: nobody else is spooled until it resumes", body = Campaign),
        (status = 400, description = "Not sending (field `state`)", body = Errors),
        (status = 404, description = "Not a campaign of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn pause_campaign() {}

#[utoipa::path(post, path = "/v1/campaigns/{id}/resume", tag = "campaigns",
    params(("id" = String, Path, description = "A campaign id")),
    responses(
        (status = 200, description = "Sending again from where it stopped", body = Campaign),
        (status = 400, description = "Not paused (field `state`)", body = Errors),
        (status = 404, description = "Not a campaign of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn resume_campaign() {}

#[utoipa::path(post, path = "/v1/campaigns/{id}/cancel", tag = "campaigns",
    params(("id" = String, Path, description = "A campaign id")),
    responses(
        (status = 200, description = "Cancelled: nobody else is spooled, and its messages still queued are taken out of the queue", body = Campaign),
        (status = 400, description = "Already sent or cancelled (field `state`)", body = Errors),
        (status = 404, description = "Not a campaign of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn cancel_campaign() {}

/// Decides an A/B test now: by its metric (`{}`), or the operator's pick.
#[derive(Serialize, ToSchema)]
pub struct WinnerChoice {
    /// The variant (0-based).
    pub variant: Option<u32>,
}

#[utoipa::path(post, path = "/v1/campaigns/{id}/winner", tag = "campaigns",
    params(("id" = String, Path, description = "A campaign id")),
    request_body(content = WinnerChoice, content_type = "application/json"),
    responses(
        (status = 200, description = "Decided: the rest of the audience gets the winner", body = Campaign),
        (status = 400, description = "No A/B test, already decided, or not sending (field `ab`, `state` or `variant`)", body = Errors),
        (status = 404, description = "Not a campaign of this account", body = Errors),
        ManageFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn decide_campaign_winner() {}

#[derive(Serialize, ToSchema)]
pub struct VariantReport {
    pub variant: i64,
    pub name: String,
    pub winner: bool,
    pub totals: HashMap<String, i64>,
    /// delivery over sent; open, click, unsubscribe over delivered.
    pub rates: HashMap<String, f64>,
}

#[derive(Serialize, ToSchema)]
pub struct AbReport {
    /// opens or clicks.
    pub metric: String,
    pub test_percent: u32,
    pub test_recipients: Option<i64>,
    pub decide_at_ms: Option<i64>,
    pub winner: Option<i64>,
    pub winner_reason: Option<String>,
    pub decided_ms: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct LinkCount {
    /// The link's number in the message, from 1.
    pub link: i64,
    /// Human clicks.
    pub clicks: i64,
    /// People who clicked it.
    pub unique: i64,
}

#[derive(Serialize, ToSchema)]
pub struct HourCount {
    /// Start of the hour, Unix ms (UTC).
    pub hour_ms: i64,
    /// delivered, opened, clicked in that hour.
    pub counts: HashMap<String, i64>,
}

/// A campaign's report: counters kept while its events arrive. Opens and clicks by
/// machines (privacy proxies, link scanners) are in `opened_machine`/`clicked_machine`
/// and left out of every other count and rate.
#[derive(Serialize, ToSchema)]
pub struct CampaignReport {
    pub campaign_id: String,
    pub state: String,
    pub recipients: Option<i64>,
    /// The A/B test's decision (none without a test).
    pub ab: Option<AbReport>,
    /// Each variant's counts and rates.
    pub variants: Vec<VariantReport>,
    /// sent, delivered, bounced, deferred, expired, complained, unsubscribed, opened,
    /// opened_unique, opened_machine, clicked, clicked_unique, clicked_machine.
    pub totals: HashMap<String, i64>,
    /// delivery and bounce over sent; open, click (unique, human), complaint and
    /// unsubscribe over delivered.
    pub rates: HashMap<String, f64>,
    /// Bounces by category.
    pub bounces: HashMap<String, i64>,
    /// Counts by mailbox provider (gmail, yahoo, docomo, ..., other).
    pub providers: HashMap<String, HashMap<String, i64>>,
    /// Every count by the recipient's time zone (the contact's, else its country's usual
    /// one, else UTC).
    pub zones: HashMap<String, HashMap<String, i64>>,
    pub links: Vec<LinkCount>,
    pub hourly: Vec<HourCount>,
}

#[utoipa::path(get, path = "/v1/campaigns/{id}/report", tag = "campaigns",
    params(("id" = String, Path, description = "A campaign id")),
    responses(
        (status = 200, description = "The report", body = CampaignReport),
        (status = 404, description = "Not a campaign of this account", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn campaign_report() {}

#[utoipa::path(get, path = "/v1/campaigns/{id}/report.csv", tag = "campaigns",
    params(("id" = String, Path, description = "A campaign id")),
    responses(
        (status = 200, description = "Every counter, one a row: metric,dimension,count", content_type = "text/csv", body = String),
        (status = 404, description = "Not a campaign of this account", body = Errors),
        ReadFailures,
    ))]
#[allow(dead_code)]
pub(crate) fn campaign_report_csv() {}
