//! Campaigns as stored ([`CampaignStore`]): a draft's audience, content and schedule as JSON
//! documents (read and checked by the `campaigns` crate), and a state that moves only along
//! [`CampaignState::may_become`], by conditional updates.

use std::future::Future;

use crate::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignState {
    Draft,
    Scheduled,
    Sending,
    Paused,
    Sent,
    Cancelled,
}

impl CampaignState {
    pub const ALL: [CampaignState; 6] = [
        CampaignState::Draft,
        CampaignState::Scheduled,
        CampaignState::Sending,
        CampaignState::Paused,
        CampaignState::Sent,
        CampaignState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Draft => "draft",
            CampaignState::Scheduled => "scheduled",
            CampaignState::Sending => "sending",
            CampaignState::Paused => "paused",
            CampaignState::Sent => "sent",
            CampaignState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<CampaignState> {
        CampaignState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The states this one may move to.
    pub fn may_become(self, next: CampaignState) -> bool {
        use CampaignState::*;
        matches!(
            (self, next),
            (Draft, Scheduled)
                | (Draft, Sending)
                | (Scheduled, Draft)
                | (Scheduled, Sending)
                | (Sending, Paused)
                | (Paused, Sending)
                | (Sending, Sent)
                // A sent campaign's messages may still wait for their local time or
                // window: cancelling takes them back.
                | (Draft | Scheduled | Sending | Paused | Sent, Cancelled)
        )
    }

    /// The states that may move to `next`.
    pub fn sources(next: CampaignState) -> Vec<CampaignState> {
        CampaignState::ALL
            .into_iter()
            .filter(|s| s.may_become(next))
            .collect()
    }
}

/// What a draft says; each document is JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CampaignDraft {
    pub name: String,
    pub audience: String,
    pub content: String,
    pub schedule: Option<String>,
    pub rate_per_sec: Option<i64>,
    pub send_window: Option<String>,
    /// The A/B test (variants, share, metric, wait), if any.
    pub ab_test: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub id: String,
    pub tenant_id: String,
    pub state: CampaignState,
    pub draft: CampaignDraft,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub progress: Progress,
    pub ab: AbProgress,
}

/// How far an A/B test got.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AbProgress {
    /// Recipients numbered below this are the test group (set when the audience is fixed).
    pub test_end: Option<i64>,
    /// When the winner is decided (set once the test group is spooled).
    pub decide_at_ms: Option<i64>,
    /// The winning variant (0-based) and why it won.
    pub winner: Option<i64>,
    pub winner_reason: Option<String>,
    pub decided_ms: Option<i64>,
}

impl Campaign {
    /// An A/B campaign whose test group is out and whose winner is not decided: only the
    /// test group may be spooled.
    pub fn testing(&self) -> bool {
        self.draft.ab_test.is_some() && self.ab.winner.is_none()
    }
}

/// How far a send got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// The audience's size once fixed (at the start of the send).
    pub recipients: Option<i64>,
    /// Recipients numbered below this are spooled or skipped.
    pub cursor: i64,
    pub spooled: i64,
    /// Suppressed or deleted after the audience was fixed.
    pub skipped: i64,
}

/// Who a send goes to, resolved against the tenant's records: list ids and checked
/// segment conditions. Suppressed addresses are always left out.
#[derive(Debug, Clone, Default)]
pub struct AudiencePlan {
    pub lists: Vec<String>,
    pub segments: Vec<crate::audience::Condition>,
    /// Members of these lists in any state are left out.
    pub exclude_lists: Vec<String>,
    pub exclude_segments: Vec<crate::audience::Condition>,
    /// When any: only contacts in one of these too.
    pub filter_segments: Vec<crate::audience::Condition>,
    /// An A/B test's group, in percent of the audience (and at least `test_minimum`):
    /// the audience is fixed in a random order so that its first recipients are a sample.
    pub test_percent: Option<u32>,
    pub test_minimum: i64,
}

/// One recipient of a send as the expansion reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct SendRecipient {
    pub seq: i64,
    pub address: String,
    /// The contact as it is now; `None` when it was deleted since the start.
    pub contact: Option<crate::audience::Contact>,
    /// The tenant suppresses the address now.
    pub suppressed: bool,
}

/// A batch recorded before its messages are spooled, not yet committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenBatch {
    pub campaign_id: String,
    pub first_seq: i64,
    pub message_ids: Vec<u128>,
}

/// How a tenant's campaign opens and clicks are tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackingMode {
    /// Links and images are left as they are: nothing is tracked.
    Off,
    /// Opens and clicks are recorded with the client address truncated.
    Anonymous,
    /// Opens and clicks are recorded with the whole client address.
    Full,
}

impl TrackingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackingMode::Off => "off",
            TrackingMode::Anonymous => "anonymous",
            TrackingMode::Full => "full",
        }
    }

    pub fn parse(text: &str) -> Option<TrackingMode> {
        [
            TrackingMode::Off,
            TrackingMode::Anonymous,
            TrackingMode::Full,
        ]
        .into_iter()
        .find(|m| m.as_str() == text)
    }
}

pub trait CampaignStore: Send + Sync {
    /// The tenant's tracking mode (`Anonymous` unless set).
    fn tracking_mode(
        &self,
        tenant_id: &str,
    ) -> impl Future<Output = Result<TrackingMode, StoreError>> + Send;
    /// Sets it; false when there is no such tenant.
    fn set_tracking_mode(
        &self,
        tenant_id: &str,
        mode: TrackingMode,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// A new draft.
    /// The tenant's time zone (IANA name), if it set one.
    fn tenant_zone(
        &self,
        tenant_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Sets (or with `None` clears) the tenant's time zone; false when no such tenant.
    fn set_tenant_zone(
        &self,
        tenant_id: &str,
        zone: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn add_campaign(
        &self,
        tenant_id: &str,
        draft: &CampaignDraft,
    ) -> impl Future<Output = Result<Campaign, StoreError>> + Send;
    fn campaign(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<Campaign>, StoreError>> + Send;
    /// The tenant's campaigns, newest first.
    fn campaigns(
        &self,
        tenant_id: &str,
    ) -> impl Future<Output = Result<Vec<Campaign>, StoreError>> + Send;
    /// Changes a draft; a campaign no longer in draft is an `Invalid` error naming `state`.
    /// False when the tenant has no such campaign.
    fn update_draft(
        &self,
        tenant_id: &str,
        id: &str,
        draft: &CampaignDraft,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Moves a campaign to `next` if its state allows it (see
    /// [`CampaignState::may_become`]); an `Invalid` error naming `state` otherwise. Entering
    /// sending the first time sets `started_ms`; sent or cancelled sets `finished_ms`.
    fn set_campaign_state(
        &self,
        tenant_id: &str,
        id: &str,
        next: CampaignState,
    ) -> impl Future<Output = Result<Campaign, StoreError>> + Send;
    /// Fixes the audience of a campaign about to send (once: a campaign whose audience is
    /// fixed keeps it) and returns its size.
    fn fix_audience(
        &self,
        tenant_id: &str,
        id: &str,
        plan: &AudiencePlan,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// How many contacts an audience counts now (what `fix_audience` would fix).
    fn audience_count(
        &self,
        tenant_id: &str,
        plan: &AudiencePlan,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// Campaigns in `state`, every tenant's (for the sender's loop).
    fn campaigns_in_state(
        &self,
        state: CampaignState,
    ) -> impl Future<Output = Result<Vec<Campaign>, StoreError>> + Send;
    /// Up to `limit` recipients numbered from `from_seq`, with their contacts as they are now.
    fn send_recipients(
        &self,
        campaign: &Campaign,
        from_seq: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<SendRecipient>, StoreError>> + Send;
    /// Records a batch about to be spooled: recipients `first_seq..end_seq` and the message
    /// ids they get. Refused unless `first_seq` is the campaign's cursor.
    fn open_batch(
        &self,
        campaign_id: &str,
        first_seq: i64,
        end_seq: i64,
        message_ids: &[u128],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Commits an open batch: the cursor moves to `end_seq` with the counts.
    fn commit_batch(
        &self,
        campaign_id: &str,
        first_seq: i64,
        spooled: i64,
        skipped: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Batches recorded but never committed (a crash between the two).
    fn open_batches(&self) -> impl Future<Output = Result<Vec<OpenBatch>, StoreError>> + Send;
    /// The message ids of a campaign's committed batches (to take its queued messages
    /// back when it is cancelled).
    fn batch_message_ids(
        &self,
        campaign_id: &str,
    ) -> impl Future<Output = Result<Vec<u128>, StoreError>> + Send;
    /// A campaign's report counters: (metric, dimension, count), dimension `""` for totals.
    fn campaign_counts(
        &self,
        campaign_id: &str,
    ) -> impl Future<Output = Result<Vec<(String, String, i64)>, StoreError>> + Send;
    /// The test group of an A/B campaign is spooled: its winner is decided at `at_ms`
    /// (kept if already set).
    fn test_spooled(
        &self,
        campaign_id: &str,
        at_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records an A/B campaign's winner; false when one was decided before (the first
    /// decision stands).
    fn decide_winner(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        winner: i64,
        reason: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Forgets an open batch once its messages are out of the spool.
    fn drop_batch(
        &self,
        campaign_id: &str,
        first_seq: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
