//! Keeps received messages as files, so a user can read what would have been delivered.
//! Each file is the message as received, after a `Return-Path` and one `X-Sink-Recipient`
//! header per accepted recipient, written under a temporary name and renamed into place so
//! a reader never sees half a file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use smtp_wire::Transaction;

/// Writes captured messages into one directory.
#[derive(Debug)]
pub struct Capture {
    dir: PathBuf,
    next: AtomicU64,
}

impl Capture {
    /// Creates the directory if needed.
    pub fn new(dir: &Path) -> std::io::Result<Capture> {
        std::fs::create_dir_all(dir)?;
        Ok(Capture {
            dir: dir.to_path_buf(),
            next: AtomicU64::new(0),
        })
    }

    /// Writes one message; returns its path. Names sort in arrival order.
    pub async fn write(&self, txn: &Transaction) -> std::io::Result<PathBuf> {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let name = format!("{millis:013}-{seq:08}.eml");
        let mut bytes = Vec::with_capacity(txn.content.len() + 128);
        bytes.extend_from_slice(b"Return-Path: <");
        bytes.extend_from_slice(txn.sender.address.as_bytes());
        bytes.extend_from_slice(b">\r\n");
        for rcpt in &txn.recipients {
            bytes.extend_from_slice(b"X-Sink-Recipient: <");
            bytes.extend_from_slice(rcpt.address.as_bytes());
            bytes.extend_from_slice(b">\r\n");
        }
        bytes.extend_from_slice(&txn.content);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let path = self.dir.join(name);
        tokio::fs::write(&tmp, &bytes).await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(path)
    }
}
