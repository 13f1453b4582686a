//! What a node writes about itself in the membership buckets.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// What a node says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum NodeState {
    /// Reconciling its spool with its copy; not yet accepting.
    Starting,
    Up,
    /// Accepting nothing new, finishing or handing back its work.
    Draining,
    /// Drained: its remaining work is for the others to take now.
    HandingOver,
    /// Its work went to `by` (it died, was cut off too long, or handed it over).
    TakenOver {
        by: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: String,
    #[serde(flatten)]
    pub state: NodeState,
    /// Unix ms, the node's own clock (for display).
    pub started_ms: u64,
    pub beat_ms: u64,
    /// Where it listens, for operators.
    #[serde(default)]
    pub smtp: Vec<String>,
    #[serde(default)]
    pub http: String,
    /// Messages in its spool.
    #[serde(default)]
    pub queued: u64,
}

impl NodeRecord {
    pub fn new(name: &str, state: NodeState) -> NodeRecord {
        NodeRecord {
            name: name.to_string(),
            state,
            started_ms: now_ms(),
            beat_ms: now_ms(),
            smtp: Vec::new(),
            http: String::new(),
            queued: 0,
        }
    }
}

pub(crate) fn encode(record: &NodeRecord) -> bytes::Bytes {
    serde_json::to_vec(record).unwrap_or_default().into()
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_with_their_state() {
        let mut record = NodeRecord::new("mx1", NodeState::TakenOver { by: "mx2".into() });
        record.queued = 12;
        let text = serde_json::to_string(&record).unwrap();
        assert!(
            text.contains(r#""state":"taken_over","by":"mx2""#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<NodeRecord>(&text).unwrap(), record);
        let up: NodeRecord =
            serde_json::from_str(r#"{"name":"a","state":"up","started_ms":1,"beat_ms":2}"#)
                .unwrap();
        assert_eq!(up.state, NodeState::Up);
    }
}
