//! The spool: tsubame's durable message store.
//!
//! A message is acknowledged to its sender only after [`Spool::insert`] returns, and that
//! happens only after its record is written **and fdatasynced** (directory too, when a new
//! segment file was created). The log is a series of append-only segment files of CRC-framed
//! records; one writer thread batches concurrent appends into one write and one fsync (group
//! commit). The in-memory index holds only positions and recipient bits; envelopes and
//! content are read back from disk when needed.
//!
//! # Layout
//! - [`id`]: time-ordered message ids.
//! - `record`: record framing and codec; [`envelope`]: the stored envelope.
//! - `segment`: segment files; `writer`: the group-commit thread; `recovery`: start-up scan.
//! - `index`: positions, recipient state, segment reclamation.
//!
//! # Failure model
//! - A failed fsync or write poisons the spool ([`SpoolError::Poisoned`]): nothing is
//!   acknowledged again until a restart recovers from what the disk really holds.
//! - A full disk ([`SpoolError::NoSpace`]) rolls the batch back and keeps the spool usable.

mod arrival;
pub mod envelope;
mod error;
pub mod id;
mod id_map;
mod index;
mod record;
mod recovery;
mod replica;
mod segment;
mod writer;

#[cfg(test)]
mod tests;

/// Entry points for the fuzz targets (feature `fuzzing`).
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    use crate::record::{self, Framed};

    /// Frames and decodes `bytes` as a record; a decoded record must re-encode identically.
    pub fn check_record_bytes(bytes: &[u8]) {
        if let Framed::Ok { kind, payload, len } = record::frame(bytes)
            && let Ok(decoded) = record::decode(kind, payload, true)
        {
            let mut again = Vec::new();
            record::encode(&decoded, &mut again);
            assert_eq!(&again[..], &bytes[..len], "re-encoding changed the record");
        }
    }
}

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

pub use arrival::{Arrival, Stored};
pub use envelope::{Envelope, Recipient, tenant_marker, tenant_of};
pub use error::SpoolError;
pub use id::{IdGenerator, MessageId};
pub use index::Totals;
pub use recovery::RecoveryReport;
pub use replica::{Replica, ReplicaFuture};

use record::Record;
use writer::{Append, Command, Detached, IndexOp, ReaderCache, Writer};

/// Bytes read for an envelope-only read; most envelopes fit.
const ENVELOPE_READ_BYTES: usize = 2048;

/// Spool settings, validated by the caller.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    /// Directory holding the segment files (created if missing).
    pub dir: PathBuf,
    /// A segment is closed and a new one started once it reaches this size.
    pub segment_bytes_max: u64,
    /// Most bytes gathered into one write + fsync.
    pub batch_bytes_max: usize,
}

/// A fault to inject in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DurabilityFault {
    #[cfg_attr(not(any(test, feature = "faults")), allow(dead_code))]
    FsyncFails,
    /// The writer pauses between answering a batch and announcing it, to widen the window a
    /// subscriber could slip into. Only the spool's own tests inject it.
    #[cfg_attr(not(test), allow(dead_code))]
    SlowAnnounce,
}

pub(crate) struct Inner {
    index: Mutex<index::Index>,
    poisoned: AtomicBool,
    /// fdatasync calls so far; with group commit this grows slower than the appends.
    fsyncs: std::sync::atomic::AtomicU64,
    inserted: std::sync::atomic::AtomicU64,
    /// Messages the spool could not store (disk full, I/O errors): refused by our fault.
    insert_failed: std::sync::atomic::AtomicU64,
    readers: ReaderCache,
    /// Bookkeeping records nobody waits for, on their way to the writer without a wake-up.
    detached: Detached,
    /// Where newly durable messages are announced, once a consumer (the delivery engine)
    /// asks, with the budget for records carried in memory.
    arrivals: Mutex<Option<(ArrivalSender, Arc<arrival::Budget>)>>,
    dir: PathBuf,
    /// The copy on other machines (cluster mode), attached once after opening.
    replica: std::sync::OnceLock<Arc<dyn Replica>>,
    #[cfg(any(test, feature = "faults"))]
    fault: Mutex<Option<DurabilityFault>>,
}

impl Inner {
    pub(crate) fn lock_index(&self) -> MutexGuard<'_, index::Index> {
        // A panic while holding the lock is a bug elsewhere; the index itself stays usable.
        self.index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Tells the arrivals consumer, if any, about messages that just became durable, handing
    /// over their records while the budget lasts. Called once per group commit, so the lock
    /// is taken once per batch, not once per message.
    pub(crate) fn announce(
        arrivals: &mut std::sync::MutexGuard<'_, Option<(ArrivalSender, Arc<arrival::Budget>)>>,
        inserted: impl Iterator<Item = (MessageId, Vec<u8>)>,
    ) {
        let Some((tx, budget)) = arrivals.as_ref() else {
            return;
        };
        for (id, record) in inserted {
            let stored = budget.keep(record);
            if tx.send(Arrival { id, stored }).is_err() {
                // The consumer went away; stop queueing notices nobody will read.
                **arrivals = None;
                return;
            }
        }
    }

    /// Tells the arrivals consumer about released messages; their records are read back
    /// from disk when delivered.
    pub(crate) fn announce_ids(
        arrivals: &mut std::sync::MutexGuard<'_, Option<(ArrivalSender, Arc<arrival::Budget>)>>,
        ids: Vec<MessageId>,
    ) {
        let Some((tx, _)) = arrivals.as_ref() else {
            return;
        };
        for id in ids {
            if tx.send(Arrival { id, stored: None }).is_err() {
                **arrivals = None;
                return;
            }
        }
    }

    /// The subscriber slot, locked.
    pub(crate) fn arrivals(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<(ArrivalSender, Arc<arrival::Budget>)>> {
        self.arrivals.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn forget_reader(&self, segment: u64) {
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&segment);
    }

    fn reader(&self, segment: u64) -> Result<Arc<File>, SpoolError> {
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(file) = readers.get(&segment) {
            return Ok(file.clone());
        }
        let file = Arc::new(File::open(segment::path(&self.dir, segment))?);
        readers.insert(segment, file.clone());
        Ok(file)
    }

    #[cfg(any(test, feature = "faults"))]
    pub(crate) fn fault(&self) -> Option<DurabilityFault> {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(not(any(test, feature = "faults")))]
    pub(crate) fn fault(&self) -> Option<DurabilityFault> {
        None
    }
}

/// A queued message as the index knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageInfo {
    /// The message id (its timestamp is the arrival time).
    pub id: MessageId,
    /// Content size in bytes.
    pub content_bytes: u32,
    /// Recipients in the envelope.
    pub recipients: u32,
    /// Recipients not yet final.
    pub recipients_pending: u32,
    /// Delivery attempts recorded by [`Spool::deferred`] (0 when never deferred).
    pub attempts: u32,
    /// When delivery wants to try again, Unix ms (0 when never deferred).
    pub next_attempt_ms: u64,
    /// An arrival notice was (or is being) sent for it to the current subscriber: a
    /// subscriber listing the backlog skips it, so each message is handed over once.
    pub announced: bool,
}

/// Handle to an open spool; cheap to clone.
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
    ids: Arc<IdGenerator>,
    sender: Arc<Mutex<Option<Sender<Command>>>>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Spool {
    /// Opens (creating if needed) and recovers the spool, then starts the writer thread.
    pub fn open(config: &SpoolConfig) -> Result<(Spool, RecoveryReport), SpoolError> {
        create_dir_durably(&config.dir)?;
        let recovered = recovery::recover(&config.dir)?;
        // Always start a fresh segment: old ones are never appended to after a restart, so a
        // torn tail can never have good records written after it.
        let number = recovered.last_segment + 1;
        let file = segment::create(&config.dir, number)?;
        let mut index = recovered.index;
        index.add_segment(number);
        let inner = Arc::new(Inner {
            index: Mutex::new(index),
            poisoned: AtomicBool::new(false),
            fsyncs: Default::default(),
            inserted: Default::default(),
            insert_failed: Default::default(),
            readers: Mutex::new(Default::default()),
            detached: Detached::default(),
            arrivals: Mutex::new(None),
            dir: config.dir.clone(),
            replica: std::sync::OnceLock::new(),
            #[cfg(any(test, feature = "faults"))]
            fault: Mutex::new(None),
        });
        let mut writer = Writer {
            dir: config.dir.clone(),
            file,
            segment: number,
            offset: segment::MAGIC.len() as u64,
            segment_bytes_max: config.segment_bytes_max,
            batch_bytes_max: config.batch_bytes_max,
            inner: inner.clone(),
            unsynced_since: None,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("spool-writer".into())
            .spawn(move || {
                writer.reclaim_at_start();
                writer.run(rx)
            })?;
        let spool = Spool {
            inner,
            ids: Arc::new(IdGenerator::new(recovered.max_id)),
            sender: Arc::new(Mutex::new(Some(tx))),
            thread: Arc::new(Mutex::new(Some(thread))),
        };
        Ok((spool, recovered.report))
    }

    /// A fresh message id, to be used in headers before [`Spool::insert`].
    pub fn next_id(&self) -> MessageId {
        self.ids.next()
    }

    /// Attaches the replicated copy (cluster mode): from now on an insert is acknowledged
    /// only once the replica holds the message too. Once per spool; false if one was attached.
    pub fn attach_replica(&self, replica: Arc<dyn Replica>) -> bool {
        self.inner.replica.set(replica).is_ok()
    }

    fn replica(&self) -> Option<&Arc<dyn Replica>> {
        self.inner.replica.get()
    }

    /// True once a failed fsync has poisoned the spool.
    pub fn is_poisoned(&self) -> bool {
        self.inner.poisoned.load(Ordering::Acquire)
    }

    fn send(&self, append: Append) -> Result<(), SpoolError> {
        let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        let sender = sender.as_ref().ok_or(SpoolError::ShutDown)?;
        sender
            .send(Command::Append(append))
            .map_err(|_| SpoolError::ShutDown)
    }

    async fn append(
        &self,
        record: &Record,
        prefix: &[u8],
        op: IndexOp,
        capacity: usize,
        durable: bool,
    ) -> Result<(), SpoolError> {
        answered(self.submit(record, prefix, op, capacity, durable)?).await
    }

    /// Hands a record to the writer; the receiver gets the writer's answer.
    fn submit(
        &self,
        record: &Record,
        prefix: &[u8],
        op: IndexOp,
        capacity: usize,
        durable: bool,
    ) -> Result<Answer, SpoolError> {
        let (reply, wait) = tokio::sync::oneshot::channel();
        let append = self.frame(record, prefix, op, capacity, durable, Some(reply))?;
        self.send(append)?;
        Ok(wait)
    }

    /// Hands a lazy record to the writer without waiting for it and, unless the writer is
    /// idle, without waking it: it goes out with the next batch (at most
    /// [`writer::DETACHED_WAIT`] later).
    fn submit_detached(&self, record: &Record, op: IndexOp) -> Result<(), SpoolError> {
        let append = self.frame(record, &[], op, 64, false, None)?;
        // Pushed under the sender lock: after `shutdown` took the sender no record can slip
        // in behind the writer's last drain.
        let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        let sender = sender.as_ref().ok_or(SpoolError::ShutDown)?;
        if self.inner.detached.push(append) {
            sender
                .send(Command::Wake)
                .map_err(|_| SpoolError::ShutDown)?;
        }
        Ok(())
    }

    fn frame(
        &self,
        record: &Record,
        prefix: &[u8],
        op: IndexOp,
        capacity: usize,
        durable: bool,
        reply: Option<tokio::sync::oneshot::Sender<Result<(), SpoolError>>>,
    ) -> Result<Append, SpoolError> {
        if self.is_poisoned() {
            return Err(SpoolError::Poisoned);
        }
        let mut bytes = Vec::with_capacity(capacity);
        record::encode_with_prefix(record, prefix, &mut bytes);
        Ok(Append {
            bytes,
            durable,
            op,
            reply,
        })
    }

    /// [`Spool::remove`] without waiting for the writer (no task, no wake-up): for the
    /// delivery hot path, where nothing waits on a removal. Errors are those known at once.
    pub fn remove_detached(&self, id: MessageId) -> Result<(), SpoolError> {
        let (record, op) = removal(id);
        self.submit_detached(&record, op)?;
        if let Some(replica) = self.replica() {
            replica.remove(id);
        }
        Ok(())
    }

    /// [`Spool::recipients_done`] without waiting for the writer (nor, mostly, waking it).
    pub fn recipients_done_detached(
        &self,
        id: MessageId,
        indices: Vec<u32>,
    ) -> Result<(), SpoolError> {
        if let Some(replica) = self.replica() {
            replica.recipients_done(id, &indices);
        }
        let (record, op) = recipients_done(id, indices);
        self.submit_detached(&record, op)
    }

    /// Stores a message durably. Returns only once it is fsynced.
    pub async fn insert(
        &self,
        id: MessageId,
        envelope: Envelope,
        content: Vec<u8>,
    ) -> Result<(), SpoolError> {
        self.insert_with_prefix(id, envelope, &[], content).await
    }

    /// Stores `prefix` followed by `content` as the message content, durably, without first
    /// copying the two together (the ingress prepends its trace headers this way).
    pub async fn insert_with_prefix(
        &self,
        id: MessageId,
        envelope: Envelope,
        prefix: &[u8],
        content: Vec<u8>,
    ) -> Result<(), SpoolError> {
        self.insert_as(id, envelope, prefix, content, false).await
    }

    /// Stores a message durably like [`Spool::insert_with_prefix`] but keeps it from
    /// delivery (no arrival notice, left out of listings) until [`Spool::release`]. A restart
    /// forgets the hold: whoever holds messages must settle them (release or remove) before
    /// delivery starts listing the spool. Campaigns use it so that a batch is delivered only
    /// once the campaign's cursor says it was spooled.
    pub async fn insert_held(
        &self,
        id: MessageId,
        envelope: Envelope,
        prefix: &[u8],
        content: Vec<u8>,
    ) -> Result<(), SpoolError> {
        self.insert_as(id, envelope, prefix, content, true).await
    }

    /// Hands held messages to delivery: an arrival notice each when a consumer listens,
    /// otherwise they show in the next listing. Ids no longer queued are skipped.
    pub fn release(&self, ids: &[MessageId]) {
        if let Some(replica) = self.replica() {
            replica.release(ids);
        }
        self.release_local(ids);
    }

    fn release_local(&self, ids: &[MessageId]) {
        // Same lock order as the writer (arrivals, then index).
        let mut arrivals = self.inner.arrivals();
        let listening = arrivals.is_some();
        let queued: Vec<MessageId> = {
            let mut index = self.inner.lock_index();
            ids.iter()
                .copied()
                .filter(|id| index.set_announced(*id, listening))
                .collect()
        };
        if listening {
            Inner::announce_ids(&mut arrivals, queued);
        }
    }

    async fn insert_as(
        &self,
        id: MessageId,
        envelope: Envelope,
        prefix: &[u8],
        content: Vec<u8>,
        held: bool,
    ) -> Result<(), SpoolError> {
        let content_bytes = prefix.len() + content.len();
        let op = IndexOp::Insert {
            id,
            content_bytes: content_bytes as u32,
            rcpt_total: envelope.recipients.len() as u32,
            // Replicated: delivery hears of it once the replica holds it too.
            held: held || self.replica().is_some(),
        };
        let capacity = content_bytes + 256 + envelope.recipients.len() * 64;
        let record = Record::Message {
            id,
            envelope,
            content,
        };
        let appended = match self.replica() {
            None => self.append(&record, prefix, op, capacity, true).await,
            Some(replica) => {
                let replica = replica.clone();
                self.insert_replicated(replica, id, &record, prefix, op, held, capacity)
                    .await
            }
        };
        if let Err(err) = appended {
            self.inner.insert_failed.fetch_add(1, Ordering::Relaxed);
            return Err(err);
        }
        self.inner.inserted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Writes the local copy held while the replica stores its own, and hands the message to
    /// delivery only when both are durable; takes the local copy back when the replica fails.
    async fn insert_replicated(
        &self,
        replica: Arc<dyn Replica>,
        id: MessageId,
        record: &Record,
        prefix: &[u8],
        op: IndexOp,
        held: bool,
        capacity: usize,
    ) -> Result<(), SpoolError> {
        let (reply, wait) = tokio::sync::oneshot::channel();
        let append = self.frame(record, prefix, op, capacity, true, Some(reply))?;
        let copy = replica.store(id, append.bytes.clone(), held);
        self.send(append)?;
        let (local, copied) = tokio::join!(answered(wait), copy);
        match (local, copied) {
            (Ok(()), Ok(())) => {
                if !held {
                    self.release_local(&[id]);
                }
                Ok(())
            }
            (Ok(()), Err(reason)) => {
                let (record, op) = removal(id);
                let _ = self.submit_detached(&record, op);
                Err(SpoolError::Replica(reason))
            }
            (Err(err), copied) => {
                if copied.is_ok() {
                    replica.remove(id);
                }
                Err(err)
            }
        }
    }

    /// Stores a message record as read from a replica (a node's copy taken over, or this
    /// node's own after its disk was lost), under its own id. Already queued: nothing to do.
    pub async fn import(&self, record: &[u8], held: bool) -> Result<MessageId, SpoolError> {
        let (id, envelope, content) = decode_message(record)?;
        if self.contains(id) {
            return Ok(id);
        }
        self.insert_as(id, envelope, &[], content, held).await?;
        Ok(id)
    }

    /// Messages stored by this process since it started (a counter for rates).
    pub fn inserted_count(&self) -> u64 {
        self.inner.inserted.load(Ordering::Relaxed)
    }

    /// Messages this process could not store since it started (the spool's fault).
    pub fn insert_failed_count(&self) -> u64 {
        self.inner.insert_failed.load(Ordering::Relaxed)
    }

    /// Records that these recipients reached a final state. Lazy: answered once written,
    /// durable with the next fsync (at most 20 ms later); a crash in between means these
    /// recipients are delivered again.
    pub async fn recipients_done(
        &self,
        id: MessageId,
        indices: Vec<u32>,
    ) -> Result<(), SpoolError> {
        if let Some(replica) = self.replica() {
            replica.recipients_done(id, &indices);
        }
        let (record, op) = recipients_done(id, indices);
        self.append(&record, &[], op, 64, false).await
    }

    /// Records that delivery deferred the message, so a restart keeps its retry schedule.
    pub async fn deferred(
        &self,
        id: MessageId,
        attempts: u32,
        next_attempt_ms: u64,
    ) -> Result<(), SpoolError> {
        let op = IndexOp::Deferred {
            id,
            attempts,
            next_attempt_ms,
        };
        let record = Record::Deferred {
            id,
            attempts,
            next_attempt_ms,
        };
        self.append(&record, &[], op, 48, false).await
    }

    /// Removes a message and returns once the removal is fsynced: for taking back a message
    /// that must never be delivered (a campaign batch that did not commit).
    pub async fn remove_durably(&self, id: MessageId) -> Result<(), SpoolError> {
        let (record, op) = removal(id);
        self.append(&record, &[], op, 32, true).await?;
        if let Some(replica) = self.replica() {
            replica.remove(id);
        }
        Ok(())
    }

    /// Whether a message is queued.
    pub fn contains(&self, id: MessageId) -> bool {
        self.locate(id).is_ok()
    }

    /// Removes a finished message. Lazy, like [`Spool::recipients_done`].
    pub async fn remove(&self, id: MessageId) -> Result<(), SpoolError> {
        let (record, op) = removal(id);
        self.append(&record, &[], op, 32, false).await?;
        if let Some(replica) = self.replica() {
            replica.remove(id);
        }
        Ok(())
    }

    /// Subscribes to newly durable messages: every message inserted from now on is announced
    /// once, after its fsync, in commit order, with its record in memory as long as the
    /// announced records held by the consumer stay under `memory_bytes_max`. Together with
    /// [`Spool::list`] at start-up this is how a consumer (the delivery engine) learns of every
    /// queued message. A new subscription replaces the previous one.
    pub fn subscribe_arrivals(
        &self,
        memory_bytes_max: usize,
    ) -> tokio::sync::mpsc::UnboundedReceiver<Arrival> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        *self
            .inner
            .arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner()) =
            Some((tx, arrival::Budget::new(memory_bytes_max)));
        rx
    }

    /// Which recipients of a queued message are final, without reading anything from disk.
    pub fn recipients_final(&self, id: MessageId) -> Result<Vec<bool>, SpoolError> {
        self.locate(id).map(|(_, _, _, done)| done)
    }

    /// fdatasync calls made since the spool was opened.
    pub fn fsync_count(&self) -> u64 {
        self.inner.fsyncs.load(Ordering::Relaxed)
    }

    /// Counts for the queue view.
    pub fn totals(&self) -> Totals {
        self.inner.lock_index().totals()
    }

    /// Up to `limit` messages with ids greater than `after`, oldest first.
    pub fn list(&self, after: Option<MessageId>, limit: usize) -> Vec<MessageInfo> {
        let index = self.inner.lock_index();
        index
            .messages
            .iter_after(after)
            .take(limit)
            .map(|(id, e)| MessageInfo {
                id,
                content_bytes: e.content_bytes,
                recipients: e.rcpt_total,
                recipients_pending: index.rcpt_pending(id, e),
                attempts: u32::from(e.attempts),
                next_attempt_ms: e.next_attempt_ms,
                announced: e.announced,
            })
            .collect()
    }

    /// Reads a message's envelope and which recipients are done, without reading the
    /// content: only the record's head comes from disk. The checksum covers the whole record,
    /// so it is not verified here; recovery verified it, and [`Spool::read`] does on every
    /// delivery.
    pub fn envelope(&self, id: MessageId) -> Result<(Envelope, Vec<bool>), SpoolError> {
        let (segment, offset, len, done) = self.locate(id)?;
        let file = self.inner.reader(segment)?;
        let head_len = len.min(ENVELOPE_READ_BYTES);
        let head = segment::read_at(&file, offset, head_len)?;
        let payload = head
            .get(record::FRAME_HEADER_BYTES..)
            .ok_or(SpoolError::Corrupt("short record head"))?;
        let env_end = record::message_content_offset(payload)
            .ok_or(SpoolError::Corrupt("short record head"))?;
        if env_end <= payload.len() {
            return match record::decode_message_head(head[8], payload, env_end)? {
                (found, envelope) if found == id => Ok((envelope, done)),
                _ => Err(SpoolError::Corrupt("index points at the wrong record")),
            };
        }
        // An envelope larger than the head (thousands of recipients): read it all.
        self.read_record(id, false)
            .map(|(envelope, _, done)| (envelope, done))
    }

    fn locate(&self, id: MessageId) -> Result<(u64, u64, usize, Vec<bool>), SpoolError> {
        let index = self.inner.lock_index();
        let e = index.messages.get(&id).ok_or(SpoolError::NotFound)?;
        let done = index.done_flags(id, e);
        Ok((
            u64::from(e.segment),
            u64::from(e.offset),
            e.len as usize,
            done,
        ))
    }

    /// Reads a message back: envelope, content, and which recipients are done.
    pub fn read(&self, id: MessageId) -> Result<(Envelope, Vec<u8>, Vec<bool>), SpoolError> {
        self.read_record(id, true)
    }

    fn read_record(
        &self,
        id: MessageId,
        with_content: bool,
    ) -> Result<(Envelope, Vec<u8>, Vec<bool>), SpoolError> {
        let (segment, offset, len, done) = self.locate(id)?;
        let file = self.inner.reader(segment)?;
        let bytes = segment::read_at(&file, offset, len)?;
        let record::Framed::Ok { kind, payload, .. } = record::frame(&bytes) else {
            return Err(SpoolError::Corrupt("checksum mismatch on read"));
        };
        match record::decode(kind, payload, with_content)? {
            Record::Message {
                id: found,
                envelope,
                content,
            } if found == id => Ok((envelope, content, done)),
            _ => Err(SpoolError::Corrupt("index points at the wrong record")),
        }
    }

    /// Stops the writer after it has answered every queued append.
    pub fn shutdown(&self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
    }

    #[cfg(test)]
    pub(crate) fn inject(&self, fault: Option<DurabilityFault>) {
        *self.inner.fault.lock().unwrap_or_else(|p| p.into_inner()) = fault;
    }

    /// Makes every later fsync fail, as a dying disk would (feature `faults`, for other
    /// crates' tests).
    #[cfg(feature = "faults")]
    pub fn fail_fsyncs(&self) {
        *self.inner.fault.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(DurabilityFault::FsyncFails);
    }
}

/// A removal record and the index change it makes.
/// Decodes a whole message record (as the spool writes it, and as a replica keeps it).
pub fn decode_message(bytes: &[u8]) -> Result<(MessageId, Envelope, Vec<u8>), SpoolError> {
    match record::frame(bytes) {
        record::Framed::Ok { kind, payload, .. } => match record::decode(kind, payload, true)? {
            Record::Message {
                id,
                envelope,
                content,
            } => Ok((id, envelope, content)),
            _ => Err(SpoolError::Corrupt("not a message record")),
        },
        _ => Err(SpoolError::Corrupt("torn or corrupt record")),
    }
}

fn removal(id: MessageId) -> (Record, IndexOp) {
    (Record::Removed { id }, IndexOp::Remove { id })
}

/// A recipients-done record and the index change it makes.
fn recipients_done(id: MessageId, indices: Vec<u32>) -> (Record, IndexOp) {
    let op = IndexOp::RecipientsDone {
        id,
        indices: indices.clone(),
    };
    (Record::RecipientsDone { id, indices }, op)
}

type ArrivalSender = tokio::sync::mpsc::UnboundedSender<Arrival>;

/// The writer's answer to one append.
type Answer = tokio::sync::oneshot::Receiver<Result<(), SpoolError>>;

/// Waits for the writer's answer; a writer that went away means the spool shut down.
async fn answered(answer: Answer) -> Result<(), SpoolError> {
    answer.await.map_err(|_| SpoolError::ShutDown)?
}

fn create_dir_durably(dir: &Path) -> Result<(), SpoolError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        segment::sync_dir(parent)?;
    }
    Ok(())
}
