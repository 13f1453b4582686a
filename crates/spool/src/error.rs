//! Spool errors. Callers branch on the variant: each maps to a different SMTP reply.

/// Why a spool operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// The disk is full. The write was rolled back; the spool keeps working and a later write
    /// may succeed once space is freed. SMTP: 452 4.3.1.
    #[error("spool disk is full")]
    NoSpace,
    /// An fsync or write failed: what is on disk is unknown, so the spool refuses every further
    /// write until the process restarts and recovers from what the disk really holds.
    /// SMTP: 451 4.3.0.
    #[error("spool is poisoned after an I/O failure; restart to recover")]
    Poisoned,
    /// The message id is not in the spool.
    #[error("no such message")]
    NotFound,
    /// A record read back from disk failed its checksum or did not decode.
    #[error("corrupt spool record: {0}")]
    Corrupt(&'static str),
    /// Another process holds the spool lock.
    #[error("spool directory is locked by another process")]
    Locked,
    /// The spool writer has shut down.
    #[error("spool is shut down")]
    ShutDown,
    /// The replicated copy (cluster mode) was not confirmed; the local copy is taken back.
    /// SMTP: 451 4.3.0.
    #[error("spool replica: {0}")]
    Replica(String),
    /// Any other I/O error (opening, reading, listing).
    #[error("spool I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl SpoolError {
    /// Classifies a write-path I/O error: ENOSPC and EDQUOT are recoverable, the rest poison.
    pub(crate) fn is_no_space(err: &std::io::Error) -> bool {
        matches!(err.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
    }
}
