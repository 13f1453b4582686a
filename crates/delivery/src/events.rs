//! Delivery events: one record per recipient state change (delivered, deferred, bounced,
//! expired), with the remote host, its reply, TLS version and timings.
//!
//! Records go to a JSON-lines file written by a background thread that wakes every
//! [`WRITE_INTERVAL`] and takes everything queued since, so the delivery path pays for a push
//! onto a vector, never for waking a thread; and a short attempt history per queued message
//! is kept for the queue view.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::Serialize;
use spool::MessageId;

/// What happened to a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Delivered,
    Deferred,
    Bounced,
    Expired,
    /// Removed by an operator without a bounce.
    Deleted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Deferred => "deferred",
            Outcome::Bounced => "bounced",
            Outcome::Expired => "expired",
            Outcome::Deleted => "deleted",
        }
    }
}

/// One event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Unix milliseconds.
    pub time_ms: u64,
    pub outcome: Outcome,
    pub message_id: String,
    pub sender: String,
    pub recipient: String,
    pub site: String,
    /// Which attempt this was (1 = first).
    pub attempt: u32,
    pub remote_host: Option<String>,
    pub remote_ip: Option<IpAddr>,
    /// The reply, or our own diagnosis when there was none ("connection refused").
    pub response: String,
    /// Failure category for deferred, bounced and expired recipients.
    pub category: Option<&'static str>,
    pub tls: Option<String>,
    /// Time on this attempt.
    pub attempt_ms: u64,
    /// From acceptance to this event.
    pub queued_ms: u64,
}

/// Attempts kept per message for the queue view.
const HISTORY_PER_MESSAGE: usize = 8;
/// Events waiting for the writer; beyond this they are counted as dropped, never blocking
/// delivery.
const QUEUE_BOUND: usize = 100_000;
/// How often the writer thread takes the queued events.
const WRITE_INTERVAL: Duration = Duration::from_millis(50);

/// Events on their way to the file.
#[derive(Default)]
struct Queue {
    events: Vec<Event>,
    closed: bool,
}

type SharedQueue = Arc<(Mutex<Queue>, Condvar)>;

/// Counter handles per site and outcome: the registry lookup with labels is not free at
/// tens of thousands of events per second.
type SiteCounters = HashMap<String, [Option<metrics::Counter>; 5]>;

/// The event sink; cheap to share.
pub struct EventLog {
    counters: Mutex<SiteCounters>,
    /// `None` when events go to no file.
    queue: Option<SharedQueue>,
    history: Mutex<HashMap<MessageId, VecDeque<Event>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl EventLog {
    /// Writes to `path` (appending) when given; keeps history either way.
    pub fn new(path: Option<PathBuf>) -> std::io::Result<EventLog> {
        let (queue, writer) = match path {
            Some(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?;
                let queue = SharedQueue::default();
                let shared = queue.clone();
                let handle = std::thread::Builder::new()
                    .name("event-log".into())
                    .spawn(move || write_loop(shared, file))?;
                (Some(queue), Some(handle))
            }
            None => (None, None),
        };
        Ok(EventLog {
            counters: Mutex::new(HashMap::new()),
            queue,
            history: Mutex::new(HashMap::new()),
            writer: Mutex::new(writer),
        })
    }

    /// Records an event: history for unfinished messages, the file, the counters.
    pub fn record(&self, id: MessageId, event: Event, keep_history: bool) {
        self.count(&event.site, event.outcome);
        if keep_history {
            let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
            let entries = history.entry(id).or_default();
            if entries.len() == HISTORY_PER_MESSAGE {
                entries.pop_front();
            }
            entries.push_back(event.clone());
        }
        if let Some(queue) = &self.queue {
            let mut queued = queue.0.lock().unwrap_or_else(|p| p.into_inner());
            if queued.closed {
                return;
            }
            if queued.events.len() >= QUEUE_BOUND {
                drop(queued);
                metrics::counter!("tsubame_events_dropped_total").increment(1);
                return;
            }
            queued.events.push(event);
        }
    }

    fn count(&self, site: &str, outcome: Outcome) {
        let slot = outcome as usize;
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if counters.len() > 100_000 {
            // Bounded: a storm of one-off sites must not grow this forever.
            counters.clear();
        }
        let handles = match counters.get_mut(site) {
            Some(handles) => handles,
            None => counters.entry(site.to_string()).or_default(),
        };
        handles[slot]
            .get_or_insert_with(|| {
                metrics::counter!(
                    "tsubame_delivery_recipients_total",
                    "site" => site.to_string(),
                    "outcome" => outcome.as_str()
                )
            })
            .increment(1);
    }

    /// The message is gone from the queue: forget its history.
    pub fn forget(&self, id: MessageId) {
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// The attempts recorded for a queued message, oldest first.
    pub fn attempts(&self, id: MessageId) -> Vec<Event> {
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Flushes and stops the writer.
    pub fn close(&self) {
        if let Some(queue) = &self.queue {
            queue.0.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
            queue.1.notify_one();
        }
        if let Some(handle) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = handle.join();
        }
    }
}

fn write_loop(queue: SharedQueue, file: std::fs::File) {
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
    let mut taken = Vec::new();
    loop {
        let closed = {
            let guard = queue.0.lock().unwrap_or_else(|p| p.into_inner());
            let (mut guard, _) = queue
                .1
                .wait_timeout_while(guard, WRITE_INTERVAL, |q| !q.closed)
                .unwrap_or_else(|p| p.into_inner());
            std::mem::swap(&mut guard.events, &mut taken);
            guard.closed
        };
        for event in taken.drain(..) {
            if serde_json::to_writer(&mut out, &event).is_ok() {
                let _ = out.write_all(b"\n");
            }
        }
        let _ = out.flush();
        if closed {
            break;
        }
    }
}
