//! A second copy of the spool on other machines (cluster mode).
//!
//! With a [`Replica`] attached, an insert returns `Ok` only when the local fsync **and** the
//! replica both hold the message; the local copy is written held (no arrival notice) and
//! released to delivery only then, so a message whose replication failed is never delivered
//! while its sender is told to try again. Final recipients and removals follow lazily, like
//! their local records. The replica is the source of truth after a crash: the cluster crate
//! reconciles the local spool with it at start.

use std::future::Future;
use std::pin::Pin;

use crate::MessageId;

/// The replica's answer to a stored copy.
pub type ReplicaFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

pub trait Replica: Send + Sync {
    /// Keeps a copy of a message record (the exact bytes written locally). Resolves `Ok` once
    /// the copy is durable where the replica promises (a majority of its servers).
    fn store(&self, id: MessageId, record: Vec<u8>, held: bool) -> ReplicaFuture;
    /// These recipients reached a final state. Nobody waits for it.
    fn recipients_done(&self, id: MessageId, indices: &[u32]);
    /// Held messages handed to delivery. Nobody waits for it.
    fn release(&self, ids: &[MessageId]);
    /// The message is finished (or taken back). Nobody waits for it.
    fn remove(&self, id: MessageId);
}
