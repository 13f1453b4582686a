//! Contact imports as durable jobs ([`ImportStore`]): each batch of rows is written with the
//! job's counters and resume point in one transaction, so a job resumed after a crash writes
//! no row twice; a lease keeps one worker per job.

use std::future::Future;

use crate::StoreError;
use crate::audience::{ContactInput, Existing, MemberStatus, Upserted};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportState {
    Queued,
    Running,
    Done,
    Failed,
}

impl ImportState {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportState::Queued => "queued",
            ImportState::Running => "running",
            ImportState::Done => "done",
            ImportState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<ImportState> {
        [
            ImportState::Queued,
            ImportState::Running,
            ImportState::Done,
            ImportState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// What a new job is: the stored file and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImport {
    pub tenant_id: String,
    /// Path of the stored file.
    pub file: String,
    /// What the tenant called it.
    pub name: String,
    /// `utf-8` or `shift_jis`.
    pub encoding: String,
    /// JSON array: a target per column (see the `import_jobs` table).
    pub mapping: String,
    pub existing: Existing,
    pub list: Option<(String, MemberStatus)>,
    pub total_bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportJob {
    pub id: String,
    pub tenant_id: String,
    pub file: String,
    pub name: String,
    pub encoding: String,
    pub mapping: String,
    pub existing: Existing,
    pub list: Option<(String, MemberStatus)>,
    pub state: ImportState,
    pub total_bytes: i64,
    pub done_bytes: i64,
    pub records_done: i64,
    pub added: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub refused: i64,
    pub suppressed: i64,
    pub failure: Option<String>,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

impl ImportJob {
    /// How far through its file the job is, 0 to 100.
    pub fn percent(&self) -> i64 {
        if self.total_bytes > 0 {
            (self.done_bytes * 100 / self.total_bytes).min(100)
        } else {
            100
        }
    }
}

/// One batch of a job: the contacts its good rows make, its refused rows (line, reason),
/// how many of its addresses are suppressed, and where the job stands after it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImportBatch {
    pub contacts: Vec<ContactInput>,
    pub errors: Vec<(i64, String)>,
    pub suppressed: i64,
    pub records_done: i64,
    pub done_bytes: i64,
}

pub trait ImportStore: Send + Sync {
    fn add_import(
        &self,
        job: &NewImport,
    ) -> impl Future<Output = Result<ImportJob, StoreError>> + Send;
    /// A tenant's job.
    fn import(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<ImportJob>, StoreError>> + Send;
    /// A tenant's jobs, newest first.
    fn imports(
        &self,
        tenant_id: &str,
    ) -> impl Future<Output = Result<Vec<ImportJob>, StoreError>> + Send;
    /// Takes a job to work on for `lease_ms`: `id` if given, else the oldest queued one or
    /// a running one whose owner's lease ran out (it died). `None`: nothing to take.
    fn claim_import(
        &self,
        id: Option<&str>,
        owner: &str,
        lease_ms: i64,
    ) -> impl Future<Output = Result<Option<ImportJob>, StoreError>> + Send;
    /// Writes a batch (contacts, list memberships, refused rows, counters, resume point) in
    /// one transaction and renews the lease; `NotFound` when `owner` no longer holds it.
    fn import_batch(
        &self,
        id: &str,
        owner: &str,
        lease_ms: i64,
        batch: &ImportBatch,
    ) -> impl Future<Output = Result<Upserted, StoreError>> + Send;
    /// Ends a job: done, or failed with the reason.
    fn finish_import(
        &self,
        id: &str,
        owner: &str,
        failure: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A job's refused rows by line, after `after_line`.
    fn import_errors(
        &self,
        tenant_id: &str,
        id: &str,
        after_line: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(i64, String)>, StoreError>> + Send;
}
