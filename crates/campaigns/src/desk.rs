//! The console's way to the campaign calls. Campaigns are checked, composed, started and
//! decided by the API's own code (the same checks and error fields as `/v1/campaigns`);
//! the API implements this desk and the binary hands it to the console, so the console
//! does not depend on the API crate and a page never takes a second, different path.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use store::Campaign;

/// What a call answers: its value, or why it was refused.
pub type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, Refusal>> + Send + 'a>>;

/// A refusal, as the API would word it: the field at fault (`content.from`,
/// `audience.lists[0]`, `state`) when one is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: Option<String>,
    pub message: String,
    /// Not found (or another tenant's).
    pub missing: bool,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A change of a campaign's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Pause,
    Resume,
    Cancel,
    /// A scheduled campaign back to draft.
    Unschedule,
}

/// One content of a campaign rendered for one recipient.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    /// The A/B variant's name (`None` without a test).
    pub variant: Option<String>,
    pub from: String,
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
}

pub trait CampaignDesk: Send + Sync {
    /// A new draft (`id` none) or a changed one, from the API's JSON fields.
    fn save<'a>(
        &'a self,
        tenant_id: &'a str,
        id: Option<&'a str>,
        fields: serde_json::Map<String, Value>,
    ) -> Answer<'a, Campaign>;
    /// Sends a draft now or at its schedule.
    fn send<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> Answer<'a, Campaign>;
    /// The test message (every variant) to each address; how many messages.
    fn test<'a>(&'a self, tenant_id: &'a str, id: &'a str, to: Vec<String>) -> Answer<'a, usize>;
    fn change<'a>(&'a self, tenant_id: &'a str, id: &'a str, to: Move) -> Answer<'a, Campaign>;
    /// Decides an A/B test now (by its metric, or the chosen variant).
    fn winner<'a>(
        &'a self,
        tenant_id: &'a str,
        id: &'a str,
        variant: Option<usize>,
    ) -> Answer<'a, Campaign>;
    /// Each content rendered for `address`'s contact (else the template's test data).
    fn preview<'a>(
        &'a self,
        tenant_id: &'a str,
        id: &'a str,
        address: Option<&'a str>,
    ) -> Answer<'a, Vec<Preview>>;
    /// The report, as `GET /v1/campaigns/{id}/report` answers it.
    fn report<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> Answer<'a, Value>;
    /// How many contacts an audience document counts now.
    fn count<'a>(&'a self, tenant_id: &'a str, audience: Value) -> Answer<'a, i64>;
}
