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
                | (Draft | Scheduled | Sending | Paused, Cancelled)
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub id: String,
    pub state: CampaignState,
    pub draft: CampaignDraft,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

pub trait CampaignStore: Send + Sync {
    /// A new draft.
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
}
