//! Cluster mode: several tsubame nodes share a replicated spool, so a node's loss costs no
//! acknowledged mail.
//!
//! The replicated copy lives in NATS JetStream (file storage, three replicas, fsync before
//! every acknowledgement), in several streams ("shards") so that one stream's leader election
//! stalls only a share of the traffic. `server_check` refuses servers known to lose
//! acknowledged writes; `streams` lays the shards out and creates them.

pub mod membership;
pub mod node;
pub mod rejoin;
pub mod replica;
pub mod server_check;
pub mod streams;
pub mod takeover;

/// Errors of cluster mode's engines.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("spool server {server} refused: {reason}")]
    UnsafeServer { server: String, reason: String },
    #[error("spool servers: {0}")]
    Connect(String),
    #[error("spool stream {stream}: {reason}")]
    Stream { stream: String, reason: String },
    #[error("spool server monitoring {url}: {reason}")]
    Monitor { url: String, reason: String },
    /// Cut off from the cluster long enough that another node took this node's work: the
    /// process must restart, and its spool rejoins (dropping what went elsewhere).
    #[error("this node's work was taken over by {0} while it was cut off; restart to rejoin")]
    TakenOver(String),
}
