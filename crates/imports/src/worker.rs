//! One job from where it stands to its end. A blocking thread reads the file (skipping the
//! records a previous worker already wrote) and cuts it into batches of checked rows; the
//! async side flags suppressed addresses and writes each batch with the job's counters and
//! resume point in one transaction.

use audience::import::Mapping;
use store::{ImportBatch, ImportJob, PropertyDef};
use tokio::sync::mpsc;

use crate::{ImportsConfig, Store};

/// Where a job stands after a batch, for progress displays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub total_bytes: i64,
    pub done_bytes: i64,
    pub records: i64,
    pub added: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub refused: i64,
    pub suppressed: i64,
}

/// How stored files are parsed: RFC 4180 with any number of fields per record, records
/// ending at `\n` (a CRLF's `\r` is taken off the last field), so that positions name the
/// line a record starts on whatever the line ends.
pub fn reader_builder() -> csv::ReaderBuilder {
    let mut builder = csv::ReaderBuilder::new();
    builder
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'));
    builder
}

/// Reads the file from record `skip` on, sending batches of `size` records.
fn read_batches(
    job: &ImportJob,
    mapping: &Mapping,
    declared: &[PropertyDef],
    size: usize,
    out: &mpsc::Sender<Result<ImportBatch, String>>,
) -> Result<(), String> {
    let file = std::fs::File::open(&job.file).map_err(|e| format!("opening the file: {e}"))?;
    let (reader, bytes) =
        crate::decode::utf8_reader(file, &job.encoding).map_err(|e| format!("reading: {e}"))?;
    let mut csv = reader_builder()
        .has_headers(true)
        .from_reader(std::io::BufReader::with_capacity(256 * 1024, reader));
    let mut record = csv::ByteRecord::new();
    let mut done: i64 = 0;
    // Records a previous worker wrote already.
    while done < job.records_done {
        match csv.read_byte_record(&mut record) {
            Ok(true) => done += 1,
            Ok(false) => break,
            Err(e) => return Err(format!("re-reading the file: {e}")),
        }
    }
    let mut batch = ImportBatch::default();
    loop {
        let more = match csv.read_byte_record(&mut record) {
            Ok(more) => more,
            Err(e) => {
                // A malformed record: report it where it is and carry on with the next.
                let line = e.position().map_or(0, |p| p.line() as i64);
                batch.errors.push((line, format!("not a CSV record: {e}")));
                done += 1;
                true
            }
        };
        if more && !record.is_empty() {
            let line = record.position().map_or(0, |p| p.line() as i64);
            let mut fields: Vec<&str> = Vec::with_capacity(record.len());
            let mut utf8 = true;
            let last = record.len().saturating_sub(1);
            for (i, field) in record.iter().enumerate() {
                // Lines end at `\n`; a CRLF line leaves its `\r` on the last field.
                let field = match field {
                    [rest @ .., b'\r'] if i == last => rest,
                    whole => whole,
                };
                match std::str::from_utf8(field) {
                    Ok(text) => fields.push(text),
                    Err(_) => {
                        utf8 = false;
                        break;
                    }
                }
            }
            if utf8 && fields.iter().all(|f| f.is_empty()) {
                // A blank line.
            } else if !utf8 {
                batch.errors.push((
                    line,
                    "not valid UTF-8 (save the file as UTF-8 or Shift_JIS)".into(),
                ));
            } else {
                match mapping.row(&fields, declared) {
                    Ok(contact) => batch.contacts.push(contact),
                    Err(reason) => batch.errors.push((line, reason)),
                }
            }
            done += 1;
        }
        if !more || batch.contacts.len() + batch.errors.len() >= size {
            batch.records_done = done;
            batch.done_bytes = bytes.load(std::sync::atomic::Ordering::Relaxed) as i64;
            let full = std::mem::take(&mut batch);
            if out.blocking_send(Ok(full)).is_err() {
                return Ok(());
            }
        }
        if !more {
            return Ok(());
        }
    }
}

/// Works a claimed job to its end (or until its lease is lost), calling `progress` after
/// each batch. The job is finished (done or failed) here.
pub async fn work<S: Store>(
    store: &S,
    config: &ImportsConfig,
    job: ImportJob,
    owner: &str,
    mut progress: impl FnMut(Progress),
) -> Result<(), String> {
    let result = run(store, config, &job, owner, &mut progress).await;
    let failure = result.as_ref().err().map(String::as_str);
    if let Err(err) = store.finish_import(&job.id, owner, failure).await {
        tracing::warn!(job = %job.id, error = %err, "could not record the end of an import");
    }
    if let Err(reason) = &result {
        tracing::warn!(job = %job.id, tenant = %job.tenant_id, %reason, "import failed");
    }
    result
}

async fn run<S: Store>(
    store: &S,
    config: &ImportsConfig,
    job: &ImportJob,
    owner: &str,
    progress: &mut impl FnMut(Progress),
) -> Result<(), String> {
    let declared = store
        .properties(&job.tenant_id)
        .await
        .map_err(|e| e.to_string())?;
    let mapping = Mapping::from_json(&job.mapping).ok_or("the job's mapping is unreadable")?;
    let (tx, mut rx) = mpsc::channel(2);
    let reader_job = job.clone();
    let size = config.batch_rows.max(1);
    let reader = tokio::task::spawn_blocking(move || {
        if let Err(reason) = read_batches(&reader_job, &mapping, &declared, size, &tx) {
            let _ = tx.blocking_send(Err(reason));
        }
    });
    let lease_ms = config.lease.as_millis() as i64;
    let mut now = Progress {
        total_bytes: job.total_bytes,
        done_bytes: job.done_bytes,
        records: job.records_done,
        added: job.added,
        updated: job.updated,
        unchanged: job.unchanged,
        refused: job.refused,
        suppressed: job.suppressed,
    };
    while let Some(batch) = rx.recv().await {
        let mut batch = batch?;
        let addresses: Vec<String> = batch.contacts.iter().map(|c| c.address.clone()).collect();
        batch.suppressed = store
            .suppressed(&job.tenant_id, &addresses)
            .await
            .map_err(|e| e.to_string())?
            .len() as i64;
        let done = store
            .import_batch(&job.id, owner, lease_ms, &batch)
            .await
            .map_err(|e| e.to_string())?;
        now.done_bytes = batch.done_bytes;
        now.records = batch.records_done;
        now.added += done.added as i64;
        now.updated += done.updated as i64;
        now.unchanged += done.unchanged as i64;
        now.refused += batch.errors.len() as i64;
        now.suppressed += batch.suppressed;
        progress(now);
    }
    reader.await.map_err(|e| e.to_string())?;
    Ok(())
}
