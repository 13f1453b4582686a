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
use smtp_wire::decimal::Decimal;
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
    /// Who sent the message (`tenant:<id>` for a tenant's mail), from its envelope; for the
    /// listener, not the file.
    #[serde(skip)]
    pub auth_user: Option<String>,
    /// The sender's attributes of the message (JSON), from its envelope; for the listener.
    #[serde(skip)]
    pub attributes: Option<String>,
}

/// Receives every event, in batches, on the event-log thread: it must not block (hand the
/// batch to a channel).
pub type EventListener = Arc<dyn Fn(Vec<Event>) + Send + Sync>;

/// Attempts kept per message for the queue view.
const HISTORY_PER_MESSAGE: usize = 8;
/// Messages whose attempts are kept for the queue view, the most recently recorded: an
/// attempt is a few hundred bytes, and a backlog of millions of deferred messages must not
/// keep one each (the events file keeps every attempt).
const HISTORY_MESSAGES_MAX: usize = 10_000;
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
    history: Mutex<History>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The attempt history of at most [`HISTORY_MESSAGES_MAX`] messages.
#[derive(Default)]
struct History {
    by_message: HashMap<MessageId, VecDeque<Event>>,
    /// Messages in the order their history began; may still name forgotten ones.
    order: VecDeque<MessageId>,
}

impl History {
    fn record(&mut self, id: MessageId, event: Event) {
        let entries = match self.by_message.entry(id) {
            std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                self.order.push_back(id);
                slot.insert(VecDeque::new())
            }
        };
        if entries.len() == HISTORY_PER_MESSAGE {
            entries.pop_front();
        }
        entries.push_back(event);
        while self.by_message.len() > HISTORY_MESSAGES_MAX {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.by_message.remove(&oldest);
        }
        if self.order.len() > 2 * HISTORY_MESSAGES_MAX {
            // Mostly finished messages: keep the order list as small as the map.
            let by_message = &self.by_message;
            self.order.retain(|id| by_message.contains_key(id));
        }
    }
}

impl EventLog {
    /// Writes to `path` (appending) when given and hands batches to `listener` when given;
    /// keeps history either way.
    pub fn new(
        path: Option<PathBuf>,
        listener: Option<EventListener>,
    ) -> std::io::Result<EventLog> {
        let file = match path {
            Some(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                Some(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)?,
                )
            }
            None => None,
        };
        let (queue, writer) = if file.is_some() || listener.is_some() {
            let queue = SharedQueue::default();
            let shared = queue.clone();
            let handle = std::thread::Builder::new()
                .name("event-log".into())
                .spawn(move || write_loop(shared, file, listener))?;
            (Some(queue), Some(handle))
        } else {
            (None, None)
        };
        Ok(EventLog {
            counters: Mutex::new(HashMap::new()),
            queue,
            history: Mutex::new(History::default()),
            writer: Mutex::new(writer),
        })
    }

    /// Records an event: history for unfinished messages, the file, the counters.
    pub fn record(&self, id: MessageId, event: Event, keep_history: bool) {
        self.count(&event.site, event.outcome);
        if keep_history {
            self.history
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .record(id, event.clone());
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
            .by_message
            .remove(&id);
    }

    /// The attempts recorded for a queued message, oldest first.
    pub fn attempts(&self, id: MessageId) -> Vec<Event> {
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_message
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

fn write_loop(queue: SharedQueue, file: Option<std::fs::File>, listener: Option<EventListener>) {
    let mut out = file.map(|f| std::io::BufWriter::with_capacity(256 * 1024, f));
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
        if let Some(out) = out.as_mut() {
            let mut line = Vec::with_capacity(512);
            for event in &taken {
                line.clear();
                encode_line(event, &mut line);
                let _ = out.write_all(&line);
            }
            let _ = out.flush();
        }
        match &listener {
            Some(listener) if !taken.is_empty() => listener(std::mem::take(&mut taken)),
            _ => taken.clear(),
        }
        if closed {
            break;
        }
    }
}

/// One event as a JSON line, with the fields in the order of [`Event`]: written by hand
/// because serde's generic path cost a few thousand instructions per event, on a thread
/// that shares the cores with delivery.
fn encode_line(event: &Event, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"time_ms\":");
    out.extend_from_slice(Decimal::new(event.time_ms).as_bytes());
    out.extend_from_slice(b",\"outcome\":\"");
    out.extend_from_slice(event.outcome.as_str().as_bytes());
    out.extend_from_slice(b"\",\"message_id\":");
    push_string(out, &event.message_id);
    out.extend_from_slice(b",\"sender\":");
    push_string(out, &event.sender);
    out.extend_from_slice(b",\"recipient\":");
    push_string(out, &event.recipient);
    out.extend_from_slice(b",\"site\":");
    push_string(out, &event.site);
    out.extend_from_slice(b",\"attempt\":");
    out.extend_from_slice(Decimal::new(u64::from(event.attempt)).as_bytes());
    out.extend_from_slice(b",\"remote_host\":");
    push_optional(out, event.remote_host.as_deref());
    out.extend_from_slice(b",\"remote_ip\":");
    match event.remote_ip {
        Some(ip) => {
            out.push(b'"');
            let _ = write!(out, "{ip}");
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"response\":");
    push_string(out, &event.response);
    out.extend_from_slice(b",\"category\":");
    push_optional(out, event.category);
    out.extend_from_slice(b",\"tls\":");
    push_optional(out, event.tls.as_deref());
    out.extend_from_slice(b",\"attempt_ms\":");
    out.extend_from_slice(Decimal::new(event.attempt_ms).as_bytes());
    out.extend_from_slice(b",\"queued_ms\":");
    out.extend_from_slice(Decimal::new(event.queued_ms).as_bytes());
    out.extend_from_slice(b"}\n");
}

fn push_optional(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => push_string(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

/// A JSON string: quote, backslash and control characters escaped (RFC 8259 §7), the rest
/// as UTF-8.
fn push_string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(text: &str, optional: bool) -> Event {
        Event {
            time_ms: 1_795_324_135_123,
            outcome: Outcome::Deferred,
            message_id: "0K2S3V4X5Y6Z7A8B9C0D1E2F3G".into(),
            sender: format!("s{text}@example.org"),
            recipient: format!("r{text}@example.com"),
            site: "mx.example.com".into(),
            attempt: 3,
            remote_host: optional.then(|| format!("mx{text}.example.com")),
            remote_ip: optional.then(|| "2001:db8::1".parse().expect("ip")),
            response: format!("451 4.7.1 {text}"),
            category: optional.then_some("rate_limited"),
            tls: optional.then(|| "TLSv1_3".into()),
            attempt_ms: 0,
            queued_ms: u64::MAX,
            auth_user: None,
            attributes: None,
        }
    }

    #[test]
    fn hand_encoded_lines_are_what_serde_would_write() {
        let tricky = [
            "",
            "plain",
            "quote\" back\\slash",
            "ctl\u{0}\u{1}\u{8}\u{c}\n\r\t\u{1f}\u{7f}",
            "日本語 ünïcödé 🐦",
        ];
        for text in tricky {
            for optional in [false, true] {
                let event = event(text, optional);
                let mut line = Vec::new();
                encode_line(&event, &mut line);
                assert_eq!(line.last(), Some(&b'\n'));
                let ours: serde_json::Value = serde_json::from_slice(&line).expect("valid JSON");
                assert_eq!(ours, serde_json::to_value(&event).expect("serde"));
                let serde_line = serde_json::to_string(&event).expect("serde");
                assert_eq!(
                    std::str::from_utf8(&line[..line.len() - 1]).expect("utf8"),
                    serde_line,
                    "byte-identical to serde_json"
                );
            }
        }
    }

    /// The queue view's attempt history is bounded in total, not only per message: the
    /// most recently begun histories stay, the oldest go first, forgotten messages leave
    /// no trace, and the last attempts of a message are kept.
    #[test]
    fn attempt_history_is_bounded() {
        let log = EventLog::new(None, None).expect("log");
        let total = HISTORY_MESSAGES_MAX as u128 + 10;
        for n in 0..total {
            log.record(MessageId(n), event("x", false), true);
        }
        let history = log.history.lock().expect("lock");
        assert_eq!(history.by_message.len(), HISTORY_MESSAGES_MAX);
        assert!(!history.by_message.contains_key(&MessageId(0)));
        assert!(history.by_message.contains_key(&MessageId(total - 1)));
        drop(history);
        for _ in 0..HISTORY_PER_MESSAGE + 3 {
            log.record(MessageId(total - 1), event("y", false), true);
        }
        assert_eq!(
            log.attempts(MessageId(total - 1)).len(),
            HISTORY_PER_MESSAGE
        );
        for n in 0..3 * HISTORY_MESSAGES_MAX as u128 {
            let id = MessageId(total + n);
            log.record(id, event("z", false), true);
            log.forget(id);
        }
        let history = log.history.lock().expect("lock");
        assert!(history.order.len() <= 2 * HISTORY_MESSAGES_MAX + 1);
    }
}
