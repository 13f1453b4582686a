//! Suppression list imports as background jobs: the upload is answered at once with a job
//! page that shows progress (refreshing itself), rows are added in batches of 1,000, and
//! every refused row is reported with its line number and reason.
//!
//! The file: RFC 4180 CSV, UTF-8 with or without a byte-order mark; the first column is
//! the address, an optional second one the reason (`bounce`, `complaint`, `unsubscribe`,
//! `manual`; anything else is `manual`). A first row whose first field holds no `@` is a
//! header.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use store::SUPPRESSION_REASONS;

use super::suppressions::normalise;
use crate::auth::TenantViewer;
use crate::{ConsoleState, Store};

const BATCH_ROWS: usize = 1000;
/// Refused rows kept for the report; the rest are only counted.
const ERRORS_KEPT: usize = 1000;
/// Finished jobs kept per tenant for their pages.
const FINISHED_KEPT: usize = 20;

/// One import's progress, shared with its page.
#[derive(Debug)]
pub struct Job {
    pub id: String,
    pub tenant_id: String,
    pub started_ms: i64,
    pub rows: AtomicU64,
    pub done_rows: AtomicU64,
    pub added: AtomicU64,
    pub refused: AtomicU64,
    pub finished: AtomicBool,
    pub errors: Mutex<Vec<(u64, String)>>,
    pub failure: Mutex<Option<String>>,
}

/// The jobs of every tenant (this node's memory: a restart forgets finished ones).
#[derive(Debug, Default)]
pub struct Imports {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

impl Imports {
    fn insert(&self, job: Arc<Job>) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let mut finished: Vec<(i64, String)> = jobs
            .values()
            .filter(|j| j.tenant_id == job.tenant_id && j.finished.load(Ordering::Acquire))
            .map(|j| (j.started_ms, j.id.clone()))
            .collect();
        if finished.len() >= FINISHED_KEPT {
            finished.sort();
            for (_, id) in &finished[..finished.len() + 1 - FINISHED_KEPT] {
                jobs.remove(id);
            }
        }
        jobs.insert(job.id.clone(), job);
    }

    /// A tenant's job; another tenant's id finds nothing.
    pub fn get(&self, tenant_id: &str, id: &str) -> Option<Arc<Job>> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.get(id).filter(|j| j.tenant_id == tenant_id).cloned()
    }

    /// A tenant's jobs, newest first, for the list page.
    pub fn for_tenant(&self, tenant_id: &str) -> Vec<minijinja::Value> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let mut mine: Vec<&Arc<Job>> = jobs.values().filter(|j| j.tenant_id == tenant_id).collect();
        mine.sort_by_key(|j| std::cmp::Reverse(j.started_ms));
        mine.iter().map(|j| view(j)).collect()
    }
}

fn view(job: &Job) -> minijinja::Value {
    let rows = job.rows.load(Ordering::Acquire);
    let done = job.done_rows.load(Ordering::Acquire);
    let percent = if rows == 0 { 0 } else { done * 100 / rows };
    minijinja::context! {
        id => job.id.clone(),
        started_ms => job.started_ms,
        rows => rows,
        done_rows => done,
        percent => percent,
        added => job.added.load(Ordering::Acquire),
        refused => job.refused.load(Ordering::Acquire),
        finished => job.finished.load(Ordering::Acquire),
        errors => job.errors.lock().map(|e| e.clone()).unwrap_or_default(),
        failure => job.failure.lock().map(|f| f.clone()).unwrap_or_default(),
    }
}

/// Parses the upload into (line, address, reason) rows and refused (line, reason) ones.
pub fn parse(file: &[u8]) -> (Vec<(u64, String, String)>, Vec<(u64, String)>) {
    let body = file.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(file);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut rows = Vec::new();
    let mut refused = Vec::new();
    // Line numbers as a spreadsheet shows them: counted from the record's first byte.
    let mut counted_to = 0usize;
    let mut line = 1u64;
    let mut line_at = |byte: u64| -> u64 {
        // The reader's position can be the line ending before the record: skip to its
        // first byte.
        let mut byte = (byte as usize).min(body.len());
        while byte < body.len() && matches!(body[byte], b'\r' | b'\n') {
            byte += 1;
        }
        if byte > counted_to {
            line += body[counted_to..byte]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            counted_to = byte;
        }
        line
    };
    for (index, record) in reader.byte_records().enumerate() {
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                let line = err
                    .position()
                    .map_or(index as u64 + 1, |p| line_at(p.byte()));
                refused.push((line, format!("not CSV: {err}")));
                continue;
            }
        };
        let line = record
            .position()
            .map_or(index as u64 + 1, |p| line_at(p.byte()));
        let first = record
            .get(0)
            .map(|f| String::from_utf8_lossy(f).into_owned());
        let Some(first) = first.filter(|f| !f.trim().is_empty()) else {
            continue;
        };
        if index == 0 && !first.contains('@') {
            continue;
        }
        if std::str::from_utf8(record.as_slice()).is_err() {
            refused.push((line, "not UTF-8".into()));
            continue;
        }
        let Some(address) = normalise(&first) else {
            refused.push((line, format!("{:?} is not an e-mail address", first.trim())));
            continue;
        };
        let reason = record
            .get(1)
            .map(|r| String::from_utf8_lossy(r).trim().to_lowercase())
            .filter(|r| SUPPRESSION_REASONS.contains(&r.as_str()))
            .unwrap_or_else(|| "manual".into());
        rows.push((line, address, reason));
    }
    (rows, refused)
}

/// Starts an import job for a tenant; returns its id.
pub fn start<S: Store>(state: &Arc<ConsoleState<S>>, tenant_id: &str, file: Vec<u8>) -> String {
    let mut raw = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut raw);
    let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let job = Arc::new(Job {
        id: id.clone(),
        tenant_id: tenant_id.to_string(),
        started_ms: crate::auth::sessions::now_ms(),
        rows: AtomicU64::new(0),
        done_rows: AtomicU64::new(0),
        added: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        finished: AtomicBool::new(false),
        errors: Mutex::new(Vec::new()),
        failure: Mutex::new(None),
    });
    state.imports.insert(job.clone());
    let state = state.clone();
    tokio::spawn(async move {
        let parsed = tokio::task::spawn_blocking(move || parse(&file)).await;
        let (rows, refused) = parsed.unwrap_or_default();
        job.rows
            .store((rows.len() + refused.len()) as u64, Ordering::Release);
        job.refused.store(refused.len() as u64, Ordering::Release);
        job.done_rows.store(refused.len() as u64, Ordering::Release);
        if let Ok(mut errors) = job.errors.lock() {
            errors.extend(refused.into_iter().take(ERRORS_KEPT));
        }
        for batch in rows.chunks(BATCH_ROWS) {
            let entries: Vec<(String, String)> = batch
                .iter()
                .map(|(_, a, r)| (a.clone(), r.clone()))
                .collect();
            match state
                .store()
                .add_suppressions(&job.tenant_id, &entries)
                .await
            {
                Ok(added) => {
                    job.added.fetch_add(added, Ordering::AcqRel);
                    job.done_rows
                        .fetch_add(batch.len() as u64, Ordering::AcqRel);
                }
                Err(err) => {
                    tracing::error!(error = %err, job = %job.id, "suppression import failed");
                    if let Ok(mut failure) = job.failure.lock() {
                        *failure = Some(err.to_string());
                    }
                    break;
                }
            }
            tokio::task::yield_now().await;
        }
        job.finished.store(true, Ordering::Release);
    });
    id
}

/// `GET /suppressions/imports/{id}`: the job's progress; refreshes itself until done.
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
) -> Response {
    let Some(job) = state.imports.get(&who.tenant.id, &id) else {
        return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND);
    };
    let base = who.viewer.context("suppressions", Some(&who.tenant));
    state.views.page(
        StatusCode::OK,
        "import.html",
        minijinja::context! {  job => view(&job), ..base },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_with_their_line_numbers() {
        let file = "\u{feff}email,reason\r\nAnn@Example.com,bounce\r\n\"bob@example.com\",whatever\r\nnot-an-address\r\n\r\n\"multi\r\nline@x\",manual\r\ncarol@example.org\r\n";
        let (rows, refused) = parse(file.as_bytes());
        assert_eq!(
            rows,
            vec![
                (2, "ann@example.com".into(), "bounce".into()),
                (3, "bob@example.com".into(), "manual".into()),
                (8, "carol@example.org".into(), "manual".into()),
            ]
        );
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert_eq!(refused[0].0, 4);
        assert_eq!(refused[1].0, 6);
    }
}
