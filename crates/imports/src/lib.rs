//! Contact imports as durable jobs. An upload is stored in the data directory and becomes a
//! job ([`stage`]); workers ([`runner`]) take jobs under a lease and read their file in
//! batches ([`worker`]), each written with the job's counters and resume point in one
//! transaction, so a job taken over after a crash continues where the last batch ended
//! and writes no row twice.
//!
//! # Layout
//! - [`stage`]: store an upload, tell its encoding, read its header into a mapping, add the job.
//! - [`decode`]: a reader that turns Shift_JIS into UTF-8 as it goes (UTF-8 files are read
//!   as they are, BOM skipped).
//! - [`worker`]: one job, start (or resume) to end, reporting progress.
//! - [`runner`]: the background loop that takes queued and orphaned jobs, several at once.

pub mod decode;
pub mod runner;
pub mod stage;
pub mod worker;

use std::path::PathBuf;
use std::time::Duration;

/// How imports run.
#[derive(Debug, Clone)]
pub struct ImportsConfig {
    /// Where uploaded files are kept (`<data dir>/imports`).
    pub dir: PathBuf,
    /// Jobs worked on at once by one process.
    pub workers: usize,
    /// Rows per batch (one transaction each).
    pub batch_rows: usize,
    /// How long a worker's claim on a job lasts without a batch; a job whose worker died
    /// is taken over after this.
    pub lease: Duration,
    /// Largest file accepted.
    pub max_bytes: u64,
}

impl ImportsConfig {
    pub fn new(dir: PathBuf) -> ImportsConfig {
        ImportsConfig {
            dir,
            workers: 2,
            batch_rows: 5000,
            lease: Duration::from_secs(10),
            max_bytes: 2 << 30,
        }
    }
}

/// Every store an import needs.
pub trait Store:
    store::ImportStore + store::AudienceStore + store::EventStore + Clone + 'static
{
}
impl<T: store::ImportStore + store::AudienceStore + store::EventStore + Clone + 'static> Store
    for T
{
}

/// A job's refused rows as the downloadable error file: CSV with `line,reason`, a row per
/// refused line in file order.
pub async fn error_file<S: store::ImportStore>(
    store: &S,
    tenant_id: &str,
    job_id: &str,
) -> Result<String, store::StoreError> {
    let mut out = String::from("line,reason\r\n");
    let mut after = 0;
    loop {
        let page = store
            .import_errors(tenant_id, job_id, after, 10_000)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.0;
        for (line, reason) in &page {
            out.push_str(&format!("{line},\"{}\"\r\n", reason.replace('"', "\"\"")));
        }
    }
    Ok(out)
}
