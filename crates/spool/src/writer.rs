//! The group-commit writer: one thread owns the active segment. It takes every append that is
//! waiting, writes them with one write, makes them durable with one fdatasync, applies them to
//! the index, and only then answers the callers. Concurrent sessions therefore share fsyncs;
//! a lone session pays one fsync per message.
//!
//! Delivery bookkeeping (recipients done, removals, retry schedules) is *lazy*: written at
//! once, made durable by the next fsync that a new message needs anyway, or at the latest
//! after [`LAZY_SYNC_MAX`]. Losing such a record in a crash means a recipient delivered again,
//! which the delivery contract allows for in-flight work; it halves the fsyncs of a relay.
//!
//! *Detached* bookkeeping (nobody waits for it: the delivery hot path) does not even wake the
//! writer: it waits in [`Detached`] until the next batch takes it, or at most
//! [`DETACHED_WAIT`] when no batch comes. Only the first record after the writer went idle
//! sends a wake-up, so a busy relay pays no thread hand-off per removal.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::error::SpoolError;
use crate::id::MessageId;
use crate::index::Entry;
use crate::segment;
use crate::{DurabilityFault, Inner};

/// How the index changes once an append is durable.
#[derive(Debug)]
pub(crate) enum IndexOp {
    Insert {
        id: MessageId,
        content_bytes: u32,
        rcpt_total: u32,
        /// Not announced until [`crate::Spool::release`]: a campaign's batch waits for its
        /// cursor to commit before delivery may see it.
        held: bool,
    },
    RecipientsDone {
        id: MessageId,
        indices: Vec<u32>,
    },
    Remove {
        id: MessageId,
    },
    Deferred {
        id: MessageId,
        attempts: u32,
        next_attempt_ms: u64,
    },
}

/// Longest a lazy record waits for an fsync.
pub(crate) const LAZY_SYNC_MAX: Duration = Duration::from_millis(20);

/// Longest a detached record waits for a batch to carry it when none comes.
pub(crate) const DETACHED_WAIT: Duration = Duration::from_millis(10);

/// One framed record waiting to be written.
pub(crate) struct Append {
    pub bytes: Vec<u8>,
    /// False for delivery bookkeeping: answered once written, synced with the next batch.
    pub durable: bool,
    pub op: IndexOp,
    /// `None` for a detached record: nobody waits for it.
    pub reply: Option<oneshot::Sender<Result<(), SpoolError>>>,
}

/// What the writer's channel carries.
pub(crate) enum Command {
    Append(Append),
    /// Detached records are waiting and the writer may be asleep.
    Wake,
}

/// Detached records waiting for the writer, and whether it already knows about them.
#[derive(Default)]
pub(crate) struct Detached {
    pub records: Mutex<Vec<Append>>,
    /// Set by the first record after the writer went idle (which then sends [`Command::Wake`]);
    /// cleared by the writer only when it goes to sleep with nothing waiting.
    pub armed: AtomicBool,
}

impl Detached {
    /// Queues a record; true when the writer must be woken.
    pub fn push(&self, append: Append) -> bool {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(append);
        !self.armed.swap(true, Ordering::AcqRel)
    }

    fn take_into(&self, batch: &mut Vec<Append>) {
        batch.append(&mut self.records.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Disarms before the writer sleeps; stays armed when records slipped in meanwhile.
    fn disarm(&self) {
        self.armed.store(false, Ordering::Release);
        if !self
            .records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
        {
            self.armed.store(true, Ordering::Release);
        }
    }
}

pub(crate) struct Writer {
    pub dir: PathBuf,
    pub file: File,
    pub segment: u64,
    pub offset: u64,
    pub segment_bytes_max: u64,
    pub batch_bytes_max: usize,
    pub inner: Arc<Inner>,
    /// When the oldest written-but-unsynced lazy record was written.
    pub unsynced_since: Option<Instant>,
}

impl Writer {
    pub fn run(mut self, rx: Receiver<Command>) {
        let mut batch: Vec<Append> = Vec::new();
        loop {
            let armed = self.inner.detached.armed.load(Ordering::Acquire);
            let lazy_wait = self
                .unsynced_since
                .map(|since| LAZY_SYNC_MAX.saturating_sub(since.elapsed()));
            let wait = match (armed, lazy_wait) {
                (true, Some(lazy)) => Some(lazy.min(DETACHED_WAIT)),
                (true, None) => Some(DETACHED_WAIT),
                (false, lazy) => lazy,
            };
            let first = match wait {
                None => match rx.recv() {
                    Ok(first) => first,
                    Err(_) => break,
                },
                Some(wait) => match rx.recv_timeout(wait) {
                    Ok(first) => first,
                    Err(RecvTimeoutError::Timeout) => {
                        self.flush_idle(&mut batch);
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            let Command::Append(first) = first else {
                // Detached records wait for the next batch or the timeout.
                continue;
            };
            batch.push(first);
            let mut bytes = batch[0].bytes.len();
            while bytes < self.batch_bytes_max {
                match rx.try_recv() {
                    Ok(Command::Append(next)) => {
                        bytes += next.bytes.len();
                        batch.push(next);
                    }
                    Ok(Command::Wake) => {}
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            self.inner.detached.take_into(&mut batch);
            self.commit_and_answer(&mut batch);
        }
        // Shut down: what is detached or lazy still goes to disk.
        self.flush_idle(&mut batch);
    }

    /// Nothing came for a while (or the spool shuts down): write what is detached and sync
    /// what is lazy, then let the next detached record wake the writer again.
    fn flush_idle(&mut self, batch: &mut Vec<Append>) {
        self.inner.detached.take_into(batch);
        if !batch.is_empty() {
            self.commit_and_answer(batch);
        }
        if self.unsynced_since.is_some() {
            let _ = self.sync();
        }
        self.inner.detached.disarm();
    }

    fn commit_and_answer(&mut self, batch: &mut Vec<Append>) {
        // Held from before the index changes until the batch is announced: a subscriber is
        // told about exactly the inserts that reach the index after it subscribed, and those
        // are marked `announced` there, so a listing can leave them to the notices (the
        // notice comes after the answers, so the 250 never waits for delivery's hand-off).
        let inner = self.inner.clone();
        let arrivals = inner.arrivals();
        let announced = arrivals.is_some();
        let result = self.commit(batch, announced);
        let inserts =
            result.is_ok() && batch.iter().any(|a| matches!(a.op, IndexOp::Insert { .. }));
        let arrivals = (inserts && announced).then_some(arrivals);
        let mut inserted = Vec::new();
        for append in batch.drain(..) {
            if let (Ok(()), IndexOp::Insert { id, held, .. }) = (&result, &append.op)
                && !held
            {
                inserted.push((*id, append.bytes));
            }
            let Some(reply) = append.reply else { continue };
            let answer = match &result {
                Ok(()) => Ok(()),
                Err(Fault::NoSpace) => Err(SpoolError::NoSpace),
                Err(Fault::Poisoned) => Err(SpoolError::Poisoned),
            };
            // A caller that went away (connection dropped) simply misses its answer; the
            // record is durable either way.
            let _ = reply.send(answer);
        }
        if matches!(self.inner.fault(), Some(DurabilityFault::SlowAnnounce)) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if let Some(mut arrivals) = arrivals {
            crate::Inner::announce(&mut arrivals, inserted.into_iter());
        }
    }

    /// fdatasync of everything written so far; a failure poisons the spool.
    fn sync(&mut self) -> Result<(), Fault> {
        let started = Instant::now();
        let synced = match self.inner.fault() {
            Some(DurabilityFault::FsyncFails) => Err(std::io::Error::from_raw_os_error(libc::EIO)),
            Some(DurabilityFault::SlowAnnounce) | None => self.file.sync_data(),
        };
        metrics::histogram!("tsubame_spool_fsync_seconds").record(started.elapsed().as_secs_f64());
        self.inner.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.unsynced_since = None;
        if let Err(err) = synced {
            // Never acknowledge after a failed fsync: the kernel may have dropped the dirty
            // pages, so a retry could "succeed" without the data being on disk.
            tracing::error!(error = %err, segment = self.segment, "spool fsync failed; spool poisoned");
            self.inner.poisoned.store(true, Ordering::Release);
            return Err(Fault::Poisoned);
        }
        Ok(())
    }

    fn commit(&mut self, batch: &mut [Append], announced: bool) -> Result<(), Fault> {
        if self.inner.poisoned.load(Ordering::Acquire) {
            return Err(Fault::Poisoned);
        }
        if self.offset >= self.segment_bytes_max {
            self.rotate()?;
        }
        let start = self.offset;
        let mut positions = Vec::with_capacity(batch.len());
        let mut end = start;
        for append in batch.iter() {
            positions.push((end, append.bytes.len() as u32));
            end += append.bytes.len() as u64;
        }
        if let Err(err) = write_all_vectored(&mut self.file, batch) {
            return Err(self.rollback(start, &err));
        }
        let must_sync = batch.iter().any(|a| a.durable)
            || self
                .unsynced_since
                .is_some_and(|since| since.elapsed() >= LAZY_SYNC_MAX);
        if must_sync {
            metrics::histogram!("tsubame_spool_batch_records").record(batch.len() as f64);
            self.sync()?;
        } else if self.unsynced_since.is_none() {
            self.unsynced_since = Some(Instant::now());
        }
        self.offset = end;
        self.apply(batch, &positions, announced);
        Ok(())
    }

    /// Undoes a failed write so that the segment ends at a record boundary again.
    fn rollback(&mut self, start: u64, err: &std::io::Error) -> Fault {
        let no_space = SpoolError::is_no_space(err);
        let undone = self
            .file
            .set_len(start)
            .and_then(|()| self.file.seek(SeekFrom::Start(start)).map(drop));
        match (no_space, undone) {
            (true, Ok(())) => {
                tracing::warn!(segment = self.segment, "spool disk full; write rolled back");
                Fault::NoSpace
            }
            (_, undone) => {
                tracing::error!(error = %err, rollback = ?undone.err(), "spool write failed; spool poisoned");
                self.inner.poisoned.store(true, Ordering::Release);
                Fault::Poisoned
            }
        }
    }

    fn rotate(&mut self) -> Result<(), Fault> {
        // Lazy records in the segment being closed must not wait for a file we stop syncing.
        if self.unsynced_since.is_some() {
            self.sync()?;
        }
        let next = self.segment + 1;
        let file = match segment::create(&self.dir, next) {
            Ok(file) => file,
            Err(err) if SpoolError::is_no_space(&err) => return Err(Fault::NoSpace),
            Err(err) => {
                tracing::error!(error = %err, "creating spool segment failed; spool poisoned");
                self.inner.poisoned.store(true, Ordering::Release);
                return Err(Fault::Poisoned);
            }
        };
        self.file = file;
        self.segment = next;
        self.offset = segment::MAGIC.len() as u64;
        self.inner.lock_index().add_segment(next);
        self.reclaim();
        Ok(())
    }

    fn apply(&mut self, batch: &[Append], positions: &[(u64, u32)], announced: bool) {
        let mut index = self.inner.lock_index();
        let mut any_removal = false;
        for (append, &(offset, len)) in batch.iter().zip(positions) {
            match &append.op {
                IndexOp::Insert {
                    id,
                    content_bytes,
                    rcpt_total,
                    held,
                } => {
                    let mut entry =
                        Entry::new(self.segment, offset, len, *content_bytes, *rcpt_total);
                    // A held message is left out of listings as if announced, until released.
                    entry.announced = announced || *held;
                    index.insert(*id, entry);
                }
                IndexOp::RecipientsDone { id, indices } => {
                    index.recipients_done(*id, indices, self.segment)
                }
                IndexOp::Remove { id } => {
                    index.remove(*id, self.segment);
                    any_removal = true;
                }
                IndexOp::Deferred {
                    id,
                    attempts,
                    next_attempt_ms,
                } => index.deferred(*id, *attempts, *next_attempt_ms),
            }
        }
        drop(index);
        if any_removal {
            self.reclaim();
        }
    }

    /// Deletes segments that hold nothing live, oldest first, making each unlink durable before
    /// the next so that a crash can never keep a segment whose tombstones were deleted.
    fn reclaim(&mut self) {
        let candidates = self.inner.lock_index().reclaimable(self.segment);
        for number in candidates {
            let path = segment::path(&self.dir, number);
            self.inner.forget_reader(number);
            let removed = std::fs::remove_file(&path).and_then(|()| segment::sync_dir(&self.dir));
            match removed {
                Ok(()) => self.inner.lock_index().drop_segment(number),
                Err(err) => {
                    tracing::warn!(error = %err, segment = number, "could not delete finished segment");
                    return;
                }
            }
        }
    }
}

/// Writes every record of the batch with as few `writev` calls as the kernel allows.
fn write_all_vectored(file: &mut File, batch: &[Append]) -> std::io::Result<()> {
    // IOV_MAX on Linux; larger batches go in several calls.
    const IOVECS_MAX: usize = 1024;
    for group in batch.chunks(IOVECS_MAX) {
        let mut slices: Vec<std::io::IoSlice<'_>> = group
            .iter()
            .map(|a| std::io::IoSlice::new(&a.bytes))
            .collect();
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            let written = file.write_vectored(slices)?;
            if written == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            std::io::IoSlice::advance_slices(&mut slices, written);
        }
    }
    Ok(())
}

/// Why a batch failed, as told to every caller in it.
enum Fault {
    NoSpace,
    Poisoned,
}

/// Shared read handles, opened lazily per segment.
pub(crate) type ReaderCache = Mutex<std::collections::HashMap<u64, Arc<File>>>;

impl Writer {
    /// Deletes segments that recovery found fully finished.
    pub fn reclaim_at_start(&mut self) {
        self.reclaim();
    }
}
