//! Operations' records ([`OpsStore`]): alerts with their lifecycle and the timeline of what
//! happened to each, silences, the reports archive and the server's periodic samples.
//! Plain records: the `ops` crate owns their meaning.

use std::collections::BTreeMap;
use std::future::Future;

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertRecord {
    pub id: String,
    pub rule: String,
    pub labels: BTreeMap<String, String>,
    pub summary: String,
    pub members: Vec<String>,
    /// `P1` … `P4`.
    pub priority: String,
    pub level: i64,
    pub triggered_ms: i64,
    pub acknowledged: Option<(String, i64)>,
    pub resolved: Option<(String, i64)>,
    pub cleared_ms: Option<i64>,
    pub silenced_by: Option<String>,
    pub refired: i64,
    /// The miss reason's code and the free text.
    pub miss: Option<(String, String)>,
}

/// One entry of an alert's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertAction {
    pub alert_id: String,
    pub at_ms: i64,
    /// `triggered`, `notified`, `escalated`, `acknowledged`, …
    pub action: String,
    /// A person, `tsubame`, or a notification channel.
    pub who: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceRecord {
    pub id: String,
    pub matchers: BTreeMap<String, String>,
    pub starts_ms: i64,
    pub ends_ms: i64,
    pub created_by: String,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRecord {
    pub id: String,
    /// `daily`, `weekly`, `monthly`.
    pub kind: String,
    /// What it covers (`2026-11`, `2026-W48`, `2026-12-03`).
    pub period: String,
    pub created_ms: i64,
    pub content_type: String,
    pub body: String,
}

pub trait OpsStore: Send + Sync {
    /// Writes an alert as it is now, and adds `actions` to its timeline, in one transaction.
    fn save_alert(
        &self,
        alert: &AlertRecord,
        actions: &[AlertAction],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn add_alert_actions(
        &self,
        actions: &[AlertAction],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Alerts not resolved.
    fn open_alerts(&self) -> impl Future<Output = Result<Vec<AlertRecord>, StoreError>> + Send;
    /// Alerts triggered from `from_ms` up to `to_ms`, newest first.
    fn alerts_between(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> impl Future<Output = Result<Vec<AlertRecord>, StoreError>> + Send;
    fn alert(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<AlertRecord>, StoreError>> + Send;
    fn alert_actions(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Vec<AlertAction>, StoreError>> + Send;

    fn add_silence(
        &self,
        silence: &SilenceRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Silences that have not ended by `now_ms`.
    fn silences(
        &self,
        now_ms: i64,
    ) -> impl Future<Output = Result<Vec<SilenceRecord>, StoreError>> + Send;
    /// Ends a silence now; false when there is none by that id.
    fn expire_silence(
        &self,
        id: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Archives a report; false (and nothing written) when its kind and period exist.
    fn save_report(
        &self,
        report: &ReportRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The archive, newest first, without bodies.
    fn reports(&self) -> impl Future<Output = Result<Vec<ReportRecord>, StoreError>> + Send;
    fn report(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ReportRecord>, StoreError>> + Send;

    fn add_ops_sample(
        &self,
        at_ms: i64,
        body: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn ops_samples(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> impl Future<Output = Result<Vec<(i64, String)>, StoreError>> + Send;
    fn purge_ops_samples(
        &self,
        before_ms: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
