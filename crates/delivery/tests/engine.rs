//! The delivery engine end to end: a real spool on disk, a real DNS server on loopback
//! (hickory-server) and real receiving servers (Python aiosmtpd, Postfix smtp-sink).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use delivery::engine::DeliveryConfig;
use delivery::outcome::classify::Classifier;
use delivery::outcome::retry::RetryPolicy;
use delivery::route::dns::{DnsConfig, NameServers};
use delivery::route::{DomainPattern, HostPort, RoutingConfig, StaticRoute};
use delivery::shaping::Shaping;
use delivery::{ClientTimeouts, Engine, TlsPolicy};
use spool::{Envelope, MessageId, Recipient, Spool, SpoolConfig};
use testkit::dns::{Rr, TestDns};
use testkit::sink::{MxSink, SinkOptions};

struct Rig {
    spool: Spool,
    engine: Engine,
    dir: tempfile::TempDir,
    config: DeliveryConfig,
    _dns: TestDns,
}

fn quick_timeouts() -> ClientTimeouts {
    let s = Duration::from_secs;
    ClientTimeouts {
        connect: s(2),
        banner: s(5),
        command: s(5),
        tls_handshake: s(5),
        mail: s(5),
        rcpt: s(5),
        data: s(5),
        data_block: s(5),
        data_dot: s(5),
    }
}

/// DNS records for the test domains; MX hosts resolve to `ip`s on 127.0.0.x.
async fn start_dns(extra: &[Rr]) -> TestDns {
    let mut records = vec![
        Rr::mx("sink.test", 10, "mx.sink.test"),
        Rr::a("mx.sink.test", "127.0.0.1"),
        Rr::mx("senders.test", 10, "mx.sink.test"),
    ];
    records.extend_from_slice(extra);
    TestDns::start(&records, 60).await
}

async fn rig(dns: TestDns, mx_port: u16, tweak: impl FnOnce(&mut DeliveryConfig)) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let (spool, _) = Spool::open(&SpoolConfig {
        dir: dir.path().join("spool"),
        segment_bytes_max: 64 << 20,
        batch_bytes_max: 4 << 20,
    })
    .expect("spool");
    let mut config = DeliveryConfig {
        hostname: "relay.tsubame.test".into(),
        dns: DnsConfig {
            servers: NameServers::Listed(vec![dns.addr]),
            timeout: Duration::from_secs(2),
            ..DnsConfig::default()
        },
        routing: RoutingConfig {
            statics: vec![],
            default_tls: TlsPolicy::Opportunistic,
            mx_port,
        },
        shaping: Shaping::from_files(&[
            "[default]\nidle_timeout = \"300ms\"\nconnect_failures_max = 1\nbackoff = \"500ms\"\n",
        ])
        .expect("shaping"),
        classifier: Classifier::default(),
        retry: RetryPolicy {
            initial: Duration::from_millis(300),
            jitter: 0.0,
            ..RetryPolicy::default()
        },
        timeouts: quick_timeouts(),
        recipients_per_transaction: 100,
        delay_warning: None,
        events_file: Some(dir.path().join("events.jsonl")),
    };
    tweak(&mut config);
    let engine = Engine::start(spool.clone(), config.clone()).expect("engine");
    Rig {
        spool,
        engine,
        dir,
        config,
        _dns: dns,
    }
}

impl Rig {
    /// Stops the engine and the spool, then opens both again on the same directory.
    async fn restart(&mut self) {
        self.engine.shutdown(Duration::from_secs(5)).await;
        let spool = self.spool.clone();
        tokio::task::spawn_blocking(move || spool.shutdown())
            .await
            .expect("join");
        let (spool, _) = Spool::open(&SpoolConfig {
            dir: self.dir.path().join("spool"),
            segment_bytes_max: 64 << 20,
            batch_bytes_max: 4 << 20,
        })
        .expect("reopen spool");
        self.engine = Engine::start(spool.clone(), self.config.clone()).expect("engine");
        self.spool = spool;
    }

    async fn submit(&self, sender: &str, rcpts: &[&str], notify: u8, ret: u8) -> MessageId {
        let id = self.spool.next_id();
        let envelope = Envelope {
            sender: sender.into(),
            recipients: rcpts
                .iter()
                .map(|a| Recipient {
                    address: a.to_string(),
                    notify,
                    orcpt: Some(format!("rfc822;{a}")),
                })
                .collect(),
            dsn_ret: ret,
            dsn_envid: Some("ENV-42".into()),
            flags: 0,
            received_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64,
            client_ip: "127.0.0.1".into(),
            helo: "client.test".into(),
            auth_user: None,
        };
        let content = format!(
            "From: <{sender}>\r\nTo: <{}>\r\nSubject: engine test {id}\r\nMessage-ID: <{id}@client.test>\r\n\r\nHello.\r\n.leading dot\r\n",
            rcpts[0]
        );
        self.spool
            .insert(id, envelope, content.into_bytes())
            .await
            .expect("insert");
        id
    }

    fn pending(&self, id: MessageId) -> Option<u32> {
        self.spool
            .list(None, 100_000)
            .into_iter()
            .find(|m| m.id == id)
            .map(|m| m.recipients_pending)
    }

    async fn wait_gone(&self, id: MessageId, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.pending(id).is_some() {
            assert!(
                Instant::now() < deadline,
                "message {id} still queued: {:?}",
                self.engine.summary()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn events(&self) -> Vec<serde_json::Value> {
        let text =
            std::fs::read_to_string(self.dir.path().join("events.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

async fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "condition not reached in {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sink_on(ips: &[&str], options: SinkOptions, dir: &std::path::Path) -> (MxSink, u16) {
    MxSink::start_free(ips, dir, options)
}

/// The `message/delivery-status` part's per-recipient fields, as (field, value) lists.
fn dsn_recipient_fields(content: &str) -> Vec<Vec<(String, String)>> {
    let start = content
        .find("Content-Type: message/delivery-status")
        .expect("delivery-status part");
    let part = &content[start..];
    let end = part[1..].find("\n--").map_or(part.len(), |e| e + 1);
    let blocks: Vec<&str> = part[..end].split("\r\n\r\n").collect();
    // blocks[0] = part header, [1] = per-message fields, then one per recipient.
    blocks[2..]
        .iter()
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            b.lines()
                .filter_map(|l| l.split_once(": "))
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
                .collect()
        })
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_over_starttls_with_per_recipient_outcomes_and_one_dsn() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(
        &["127.0.0.1"],
        SinkOptions {
            tls: true,
            ..Default::default()
        },
        sink_dir.path(),
    );
    let rig = rig(start_dns(&[]).await, port, |_| {}).await;

    let id = rig
        .submit(
            "sender@senders.test",
            &[
                "ok@sink.test",
                "reject@sink.test",
                "full@sink.test",
                "defer@sink.test",
            ],
            0,
            0,
        )
        .await;
    // ok is delivered, reject and full bounce in one DSN, defer stays queued.
    let messages = sink.wait_messages(2, Duration::from_secs(10));
    assert_eq!(messages.len(), 2, "{messages:?}");
    let original = messages
        .iter()
        .find(|m| m["sender"] == "sender@senders.test")
        .expect("original");
    assert_eq!(original["recipients"], serde_json::json!(["ok@sink.test"]));
    assert_eq!(original["tls"], true, "opportunistic STARTTLS used");
    assert!(
        original["content"]
            .as_str()
            .unwrap()
            .contains("\r\n.leading dot\r\n"),
        "dot-stuffing undone by the receiver"
    );
    let dsn = messages
        .iter()
        .find(|m| m["sender"] == "<>")
        .unwrap_or_else(|| panic!("a DSN from the null sender: {messages:#?}"));
    assert_eq!(
        dsn["recipients"],
        serde_json::json!(["sender@senders.test"])
    );
    let content = dsn["content"].as_str().unwrap();
    assert!(content.contains("Content-Type: multipart/report; report-type=delivery-status"));
    assert!(content.contains("Original-Envelope-Id: ENV-42"));
    assert!(
        content.contains("Content-Type: text/rfc822-headers"),
        "headers only without RET=FULL"
    );
    assert!(content.contains(&format!("Subject: engine test {id}")));
    assert!(!content.contains("Hello."), "no body without RET=FULL");
    let rcpts = dsn_recipient_fields(content);
    assert_eq!(rcpts.len(), 2, "{rcpts:?}");
    let reject = rcpts
        .iter()
        .find(|f| field(f, "Final-Recipient") == Some("rfc822; reject@sink.test"))
        .expect("reject reported");
    assert_eq!(field(reject, "Action"), Some("failed"));
    assert_eq!(field(reject, "Status"), Some("5.1.1"));
    assert_eq!(
        field(reject, "Original-Recipient"),
        Some("rfc822;reject@sink.test")
    );
    assert_eq!(field(reject, "Remote-MTA"), Some("dns; mx.sink.test"));
    assert!(
        field(reject, "Diagnostic-Code")
            .unwrap()
            .contains("550 5.1.1 No such user")
    );
    let full = rcpts
        .iter()
        .find(|f| field(f, "Final-Recipient") == Some("rfc822; full@sink.test"))
        .expect("full reported");
    assert_eq!(field(full, "Status"), Some("5.2.2"));

    // The deferred recipient stays in the spool and in the queue view with its error.
    let pending = wait_for(Duration::from_secs(5), || {
        rig.pending(id).filter(|&p| p == 1)
    })
    .await;
    assert_eq!(pending, 1);
    let summary = rig.engine.summary();
    let domain = summary
        .domains
        .iter()
        .find(|d| d.domain == "sink.test")
        .expect("domain row");
    assert_eq!(domain.deferred_recipients + domain.ready_recipients, 1);
    assert!(
        domain
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("451 4.3.0"),
        "{domain:?}"
    );

    let events = wait_for(Duration::from_secs(2), || {
        let events = rig.events();
        (events.len() >= 4).then_some(events)
    })
    .await;
    let outcome = |who: &str| {
        events.iter().find(|e| e["recipient"] == who).map(|e| {
            (
                e["outcome"].as_str().unwrap().to_string(),
                e["category"].clone(),
            )
        })
    };
    assert_eq!(outcome("ok@sink.test").unwrap().0, "delivered");
    assert_eq!(
        outcome("reject@sink.test").unwrap(),
        ("bounced".into(), serde_json::json!("invalid_recipient"))
    );
    assert_eq!(
        outcome("full@sink.test").unwrap(),
        ("bounced".into(), serde_json::json!("mailbox_full"))
    );
    assert_eq!(outcome("defer@sink.test").unwrap().0, "deferred");
    let delivered = events.iter().find(|e| e["outcome"] == "delivered").unwrap();
    assert_eq!(delivered["remote_host"], "mx.sink.test");
    assert_eq!(delivered["remote_ip"], "127.0.0.1");
    assert!(
        delivered["tls"]
            .as_str()
            .unwrap_or("")
            .starts_with("TLSv1_"),
        "{delivered}"
    );
    assert!(
        rig.engine.attempts(id).len() >= 2,
        "attempt history kept while queued"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_mx_on_connect_failure_and_temporary_failure_then_success() {
    let sink_dir = tempfile::tempdir().unwrap();
    // The preferred MX (127.0.0.2) has nothing listening; the backup (127.0.0.3) has the sink.
    let (sink, port) = sink_on(&["127.0.0.3"], SinkOptions::default(), sink_dir.path());
    assert!(std::net::TcpStream::connect(("127.0.0.2", port)).is_err());
    let dns = start_dns(&[
        Rr::mx("multi.test", 10, "primary.multi.test"),
        Rr::mx("multi.test", 20, "backup.multi.test"),
        Rr::a("primary.multi.test", "127.0.0.2"),
        Rr::a("backup.multi.test", "127.0.0.3"),
    ])
    .await;
    let rig = rig(dns, port, |_| {}).await;
    let id = rig
        .submit("", &["ok@multi.test", "flaky@multi.test"], 0, 0)
        .await;
    rig.wait_gone(id, Duration::from_secs(10)).await;
    let messages = sink.messages();
    let delivered: Vec<&serde_json::Value> = messages
        .iter()
        .flat_map(|m| m["recipients"].as_array().unwrap())
        .collect();
    assert_eq!(
        delivered.len(),
        2,
        "each recipient exactly once: {messages:?}"
    );
    let events = wait_for(Duration::from_secs(2), || {
        let events = rig.events();
        (events.len() >= 3).then_some(events)
    })
    .await;
    let flaky: Vec<&str> = events
        .iter()
        .filter(|e| e["recipient"] == "flaky@multi.test")
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(flaky, ["deferred", "delivered"]);
    assert!(
        events
            .iter()
            .all(|e| e["remote_host"] == "backup.multi.test")
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_at_connect_defers_and_the_site_backs_off() {
    let sink_dir = tempfile::tempdir().unwrap();
    let greeting = "421 4.3.2 Service shutting down, try later";
    let (sink, port) = sink_on(
        &["127.0.0.1"],
        SinkOptions {
            greeting: Some(greeting.into()),
            ..Default::default()
        },
        sink_dir.path(),
    );
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.retry.initial = Duration::from_secs(60)
    })
    .await;
    let id = rig
        .submit("sender@senders.test", &["ok@sink.test"], 0, 0)
        .await;
    let summary = wait_for(Duration::from_secs(5), || {
        let s = rig.engine.summary();
        (s.deferred_recipients == 1).then_some(s)
    })
    .await;
    let site = summary
        .sites
        .iter()
        .find(|s| s.site == "mx.sink.test")
        .expect("site row");
    assert_eq!(site.hold, Some("backing_off"), "{site:?}");
    assert!(
        site.hold_reason.as_deref().unwrap().contains("421 4.3.2"),
        "{site:?}"
    );
    let domain = &summary.domains[0];
    assert!(
        domain
            .last_error
            .as_deref()
            .unwrap()
            .contains("421 4.3.2 Service shutting down")
    );
    assert!(domain.next_attempt_ms.is_some());
    assert_eq!(rig.pending(id), Some(1), "still queued, not bounced");
    assert!(sink.connections() >= 1);
    assert!(sink.messages().is_empty());
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_waiting_for_the_end_of_data_reply_defers() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (_sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.timeouts.data_dot = Duration::from_millis(800);
        c.retry.initial = Duration::from_secs(60);
    })
    .await;
    let started = Instant::now();
    let id = rig
        .submit("sender@senders.test", &["hang@sink.test"], 0, 0)
        .await;
    let error = wait_for(Duration::from_secs(5), || {
        rig.engine
            .summary()
            .domains
            .first()
            .and_then(|d| d.last_error.clone())
    })
    .await;
    assert!(
        error.starts_with("451 4.4.2") && error.contains("DataDot"),
        "{error}"
    );
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert_eq!(rig.pending(id), Some(1));
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_required_but_not_offered_defers_as_a_tls_failure() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.routing.statics.push(StaticRoute {
            pattern: DomainPattern::parse("secure.test").unwrap(),
            hosts: vec![HostPort {
                host: "127.0.0.1".into(),
                port,
            }],
            tls: Some(TlsPolicy::Required),
            auth: None,
        });
        c.retry.initial = Duration::from_secs(60);
    })
    .await;
    let id = rig
        .submit("sender@senders.test", &["ok@secure.test"], 0, 0)
        .await;
    let events = wait_for(Duration::from_secs(5), || {
        let e = rig.events();
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(events[0]["outcome"], "deferred");
    assert_eq!(events[0]["category"], "tls_failure");
    assert!(
        events[0]["response"]
            .as_str()
            .unwrap()
            .contains("STARTTLS not offered"),
        "{}",
        events[0]
    );
    assert!(sink.messages().is_empty(), "nothing sent in clear text");
    assert_eq!(rig.pending(id), Some(1));
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_bounces_with_4_4_7_and_the_full_message_when_asked() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.retry.initial = Duration::from_millis(300);
        c.retry.max_age = Duration::from_millis(1500);
    })
    .await;
    // NOTIFY=FAILURE (2), RET=FULL (1).
    let id = rig
        .submit("sender@senders.test", &["defer@sink.test"], 2, 1)
        .await;
    rig.wait_gone(id, Duration::from_secs(10)).await;
    let messages = sink.wait_messages(1, Duration::from_secs(5));
    let dsn = messages
        .iter()
        .find(|m| m["sender"] == "<>")
        .expect("expiry DSN");
    let content = dsn["content"].as_str().unwrap();
    let rcpts = dsn_recipient_fields(content);
    assert_eq!(rcpts.len(), 1);
    assert_eq!(field(&rcpts[0], "Action"), Some("failed"));
    assert_eq!(field(&rcpts[0], "Status"), Some("4.4.7"));
    let diagnostic = field(&rcpts[0], "Diagnostic-Code").unwrap();
    assert!(
        diagnostic.contains("expired") && diagnostic.contains("451 4.3.0 Try again later"),
        "{diagnostic}"
    );
    assert!(
        content.contains("Content-Type: message/rfc822"),
        "RET=FULL returns the message"
    );
    assert!(content.contains("Hello.\r\n"));
    let events = wait_for(Duration::from_secs(2), || {
        let e = rig.events();
        e.iter().any(|e| e["outcome"] == "expired").then_some(e)
    })
    .await;
    let deferrals = events.iter().filter(|e| e["outcome"] == "deferred").count();
    assert!(deferrals >= 2, "retried before expiring: {events:?}");
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_mx_bounces_at_once_and_never_bounces_a_bounce() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let dns = start_dns(&[Rr::NullMx {
        name: "nomail.test".into(),
    }])
    .await;
    let rig = rig(dns, port, |_| {}).await;
    let id = rig
        .submit("sender@senders.test", &["someone@nomail.test"], 0, 0)
        .await;
    // From the null sender: must vanish without a DSN.
    let bounce = rig.submit("", &["other@nomail.test"], 0, 0).await;
    rig.wait_gone(id, Duration::from_secs(5)).await;
    rig.wait_gone(bounce, Duration::from_secs(5)).await;
    let messages = sink.wait_messages(1, Duration::from_secs(5));
    assert_eq!(
        messages.len(),
        1,
        "one DSN, for the message with a sender: {messages:?}"
    );
    let rcpts = dsn_recipient_fields(messages[0]["content"].as_str().unwrap());
    assert_eq!(field(&rcpts[0], "Status"), Some("5.1.10"));
    assert_eq!(
        field(&rcpts[0], "Final-Recipient"),
        Some("rfc822; someone@nomail.test")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 1);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shaping_caps_concurrent_connections_and_messages_per_connection() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(
        &["127.0.0.1"],
        SinkOptions {
            data_delay: 0.05,
            ..Default::default()
        },
        sink_dir.path(),
    );
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.shaping = Shaping::from_files(&[
            "[default]\nconnections_max = 3\nmessages_per_connection = 4\nidle_timeout = \"300ms\"\n",
        ])
        .unwrap();
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(
            rig.submit("sender@senders.test", &[&format!("ok{n}@sink.test")], 0, 0)
                .await,
        );
    }
    for id in &ids {
        rig.wait_gone(*id, Duration::from_secs(20)).await;
    }
    assert_eq!(sink.messages().len(), 30);
    let max = sink.max_concurrent();
    assert!(max <= 3, "at most 3 connections at once, saw {max}");
    assert!(max >= 2, "the backlog used more than one connection");
    let connections = sink.connections();
    assert!(
        connections >= 30 / 4,
        "at most 4 messages per connection: {connections} connections"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_rule_suspends_the_site_until_the_time_is_up() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.shaping = Shaping::from_files(&[
            "[default]\nidle_timeout = \"200ms\"\n[[rules]]\nname = \"volume deferral\"\ncode = \"421\"\npattern = \"TSS04\"\naction = \"suspend\"\nduration = \"1500ms\"\n",
        ])
        .unwrap();
        c.retry.initial = Duration::from_secs(60);
    })
    .await;
    rig.submit("sender@senders.test", &["tss04@sink.test"], 0, 0)
        .await;
    let summary = wait_for(Duration::from_secs(5), || {
        let s = rig.engine.summary();
        s.sites
            .iter()
            .any(|s| s.hold == Some("suspended"))
            .then_some(s)
    })
    .await;
    let suspended_at = Instant::now();
    let site = &summary.sites[0];
    assert_eq!(site.hold_reason.as_deref(), Some("volume deferral"));
    // Mail for the suspended site waits until the suspension ends, then goes.
    let id = rig
        .submit("sender@senders.test", &["ok@sink.test"], 0, 0)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sink.messages().is_empty(), "nothing sent while suspended");
    rig.wait_gone(id, Duration::from_secs(5)).await;
    let waited = suspended_at.elapsed();
    assert!(
        waited >= Duration::from_millis(1300),
        "sent after {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(3500),
        "the suspension ended on time: {waited:?}"
    );
    assert_eq!(sink.messages().len(), 1);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_closed_by_the_server_is_replaced_without_a_deferral() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.shaping = Shaping::from_files(&["[default]\nidle_timeout = \"30s\"\n"]).unwrap();
    })
    .await;
    let first = rig
        .submit("sender@senders.test", &["ok1@sink.test"], 0, 0)
        .await;
    rig.wait_gone(first, Duration::from_secs(5)).await;
    // The receiving server restarts while our connection to it sits idle.
    drop(sink);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let sink = MxSink::start(
        &[addr],
        &sink_dir.path().join("again"),
        SinkOptions::default(),
    );
    let second = rig
        .submit("sender@senders.test", &["ok2@sink.test"], 0, 0)
        .await;
    rig.wait_gone(second, Duration::from_secs(5)).await;
    assert_eq!(sink.messages().len(), 1);
    let events = wait_for(Duration::from_secs(2), || {
        let e = rig.events();
        (e.len() >= 2).then_some(e)
    })
    .await;
    assert!(
        events
            .iter()
            .all(|e| e["outcome"] == "delivered" && e["attempt"] == 1),
        "no deferral, no attempt counted: {events:?}"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_retry_schedule_and_attempt_count() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (_sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let mut rig = rig(start_dns(&[]).await, port, |c| {
        c.retry.initial = Duration::from_secs(2);
    })
    .await;
    let id = rig
        .submit("sender@senders.test", &["flaky@sink.test"], 0, 0)
        .await;
    let first = wait_for(Duration::from_secs(5), || {
        rig.engine
            .summary()
            .domains
            .first()
            .and_then(|d| d.next_attempt_ms)
    })
    .await;
    // Wait until the schedule is on disk (it is written after the deferral is settled).
    wait_for(Duration::from_secs(5), || {
        rig.spool
            .list(None, 10)
            .first()
            .filter(|m| m.attempts == 1)
            .map(|_| ())
    })
    .await;
    rig.restart().await;
    // Still on the timer after the restart, for the same time, not retried at once.
    let domain = wait_for(Duration::from_secs(2), || {
        rig.engine
            .summary()
            .domains
            .into_iter()
            .find(|d| d.deferred_recipients == 1)
    })
    .await;
    let next = domain.next_attempt_ms.expect("next attempt");
    assert!(
        next.abs_diff(first) < 50,
        "schedule kept: {next} vs {first}"
    );
    assert_eq!(rig.pending(id), Some(1));
    // flaky@ is accepted on the second try, which is attempt 2 after the restart.
    rig.wait_gone(id, Duration::from_secs(10)).await;
    let events = wait_for(Duration::from_secs(2), || {
        let e = rig.events();
        e.iter().any(|e| e["outcome"] == "delivered").then_some(e)
    })
    .await;
    let delivered = events.iter().find(|e| e["outcome"] == "delivered").unwrap();
    assert_eq!(
        delivered["attempt"], 2,
        "attempt count carried over the restart"
    );
    let delay = delivered["time_ms"].as_u64().unwrap().saturating_sub(first);
    assert!(
        delay < 1000,
        "retried when scheduled, not later: {delay} ms"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

/// Seconds between the first and last recorded event of a kind at the sink.
fn span(events: &[serde_json::Value], kind: &str) -> f64 {
    let times: Vec<f64> = events
        .iter()
        .filter(|e| e["event"] == kind)
        .filter_map(|e| e["t"].as_f64())
        .collect();
    let (min, max) = times
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
    max - min
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_and_connection_rates_hold_at_the_sink() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.shaping = Shaping::from_files(&[
            "[default]\nmessage_rate = \"10/s\"\nconnection_rate = \"4/s\"\nmessages_per_connection = 2\nidle_timeout = \"200ms\"\n",
        ])
        .unwrap();
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..24 {
        ids.push(
            rig.submit("sender@senders.test", &[&format!("ok{n}@sink.test")], 0, 0)
                .await,
        );
    }
    for id in &ids {
        rig.wait_gone(*id, Duration::from_secs(20)).await;
    }
    let events = sink.events();
    let messages = events.iter().filter(|e| e["event"] == "message").count();
    let connections = events.iter().filter(|e| e["event"] == "connect").count();
    assert_eq!(messages, 24);
    assert!(
        connections >= 12,
        "2 messages per connection: {connections}"
    );
    // 10/s with a burst of 10: 24 messages need at least 1.4 s.
    let message_span = span(&events, "message");
    assert!(
        message_span >= 1.2,
        "messages spread over {message_span:.2} s"
    );
    // 4 connections/s with a burst of 4: 12+ connections need at least 2 s.
    let connect_span = span(&events, "connect");
    assert!(
        connect_span >= 1.8,
        "connections spread over {connect_span:.2} s"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttle_rule_slows_the_site_for_its_duration() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.shaping = Shaping::from_files(&[
            "[default]\nidle_timeout = \"200ms\"\n[[rules]]\nname = \"slow down\"\ncode = \"421\"\npattern = \"TSS04\"\naction = \"throttle\"\nmessage_rate = \"5/s\"\nduration = \"30s\"\n",
        ])
        .unwrap();
        c.retry.initial = Duration::from_secs(60);
    })
    .await;
    rig.submit("sender@senders.test", &["tss04@sink.test"], 0, 0)
        .await;
    let summary = wait_for(Duration::from_secs(5), || {
        let s = rig.engine.summary();
        s.sites.iter().any(|s| s.throttle.is_some()).then_some(s)
    })
    .await;
    assert_eq!(summary.sites[0].throttle.as_deref(), Some("slow down"));
    let started = Instant::now();
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(
            rig.submit("sender@senders.test", &[&format!("ok{n}@sink.test")], 0, 0)
                .await,
        );
    }
    for id in &ids {
        rig.wait_gone(*id, Duration::from_secs(10)).await;
    }
    // 5/s, starting from a drained bucket: 10 messages take well over a second.
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sink.messages().len(), 10);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_over_ipv6_to_an_mx_with_only_an_aaaa_record() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["::1"], SinkOptions::default(), sink_dir.path());
    let dns = start_dns(&[
        Rr::mx("six.test", 10, "mx6.six.test"),
        Rr::Aaaa {
            name: "mx6.six.test".into(),
            ip: "::1".parse().unwrap(),
        },
    ])
    .await;
    let rig = rig(dns, port, |_| {}).await;
    let id = rig.submit("", &["ok@six.test"], 0, 0).await;
    rig.wait_gone(id, Duration::from_secs(5)).await;
    assert_eq!(sink.messages().len(), 1);
    let events = wait_for(Duration::from_secs(2), || {
        let e = rig.events();
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(events[0]["remote_ip"], "::1");
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_success_to_a_server_without_dsn_gets_a_relayed_report() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |_| {}).await;
    // NOTIFY=SUCCESS,FAILURE (3); aiosmtpd does not offer DSN, so we must report.
    let id = rig
        .submit("sender@senders.test", &["ok@sink.test"], 3, 0)
        .await;
    rig.wait_gone(id, Duration::from_secs(5)).await;
    let messages = sink.wait_messages(2, Duration::from_secs(5));
    let report = messages
        .iter()
        .find(|m| m["sender"] == "<>")
        .expect("success report");
    let rcpts = dsn_recipient_fields(report["content"].as_str().unwrap());
    assert_eq!(field(&rcpts[0], "Action"), Some("relayed"));
    assert_eq!(field(&rcpts[0], "Status"), Some("2.0.0"));
    // Without NOTIFY=SUCCESS nothing is reported.
    let quiet = rig
        .submit("sender@senders.test", &["ok2@sink.test"], 0, 0)
        .await;
    rig.wait_gone(quiet, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 3);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_spool_stops_delivery() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |_| {}).await;
    // Route the site first, and hold it, so the next message waits in its queue.
    let first = rig
        .submit("sender@senders.test", &["ok1@sink.test"], 0, 0)
        .await;
    rig.wait_gone(first, Duration::from_secs(5)).await;
    assert!(rig.engine.set_site_paused("mx.sink.test", true));
    let waiting = rig
        .submit("sender@senders.test", &["ok2@sink.test"], 0, 0)
        .await;
    wait_for(Duration::from_secs(5), || {
        (rig.engine.summary().ready_recipients == 1).then_some(())
    })
    .await;
    // The disk dies: the next write fails and poisons the spool.
    rig.spool.fail_fsyncs();
    let doomed = rig.spool.next_id();
    let envelope = Envelope {
        sender: String::new(),
        recipients: vec![Recipient {
            address: "x@sink.test".into(),
            notify: 0,
            orcpt: None,
        }],
        dsn_ret: 0,
        dsn_envid: None,
        flags: 0,
        received_ms: 0,
        client_ip: "127.0.0.1".into(),
        helo: "client.test".into(),
        auth_user: None,
    };
    assert!(
        rig.spool
            .insert(doomed, envelope, b"x\r\n".to_vec())
            .await
            .is_err()
    );
    assert!(rig.spool.is_poisoned());
    // Resuming the site opens no connection: the outcome could not be recorded.
    assert!(rig.engine.set_site_paused("mx.sink.test", false));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        sink.messages().len(),
        1,
        "only the message sent before the fault"
    );
    assert_eq!(
        rig.pending(waiting),
        Some(1),
        "still queued for after the restart"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_delay_warning_for_recipients_that_asked() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.delay_warning = Some(Duration::from_millis(500));
        c.retry.initial = Duration::from_millis(300);
        c.retry.factor = 1.0;
    })
    .await;
    // NOTIFY=DELAY,FAILURE (6) gets a warning; NOTIFY=FAILURE (2) does not.
    let warned = rig
        .submit("sender@senders.test", &["defer1@sink.test"], 6, 0)
        .await;
    let silent = rig
        .submit("sender@senders.test", &["defer2@sink.test"], 2, 0)
        .await;
    let messages = sink.wait_messages(1, Duration::from_secs(5));
    // Several more retries pass: still exactly one warning.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let messages_later = sink.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages_later.len(), 1, "one warning only");
    let content = messages[0]["content"].as_str().unwrap();
    assert!(content.contains("Subject: Delayed Mail (still being retried)"));
    let rcpts = dsn_recipient_fields(content);
    assert_eq!(rcpts.len(), 1);
    assert_eq!(field(&rcpts[0], "Action"), Some("delayed"));
    assert_eq!(
        field(&rcpts[0], "Final-Recipient"),
        Some("rfc822; defer1@sink.test")
    );
    assert_eq!(field(&rcpts[0], "Status"), Some("4.3.0"));
    assert_eq!(
        rig.pending(warned),
        Some(1),
        "still queued after the warning"
    );
    assert_eq!(rig.pending(silent), Some(1));
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_cap_holds_across_its_sites() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(
        &["127.0.0.1"],
        SinkOptions {
            data_delay: 0.05,
            ..Default::default()
        },
        sink_dir.path(),
    );
    // Two domains on different MX hosts (two sites) of one provider.
    let dns = start_dns(&[
        Rr::mx("one.test", 10, "mx-a.prov.test"),
        Rr::mx("two.test", 10, "mx-b.prov.test"),
        Rr::a("mx-a.prov.test", "127.0.0.1"),
        Rr::a("mx-b.prov.test", "127.0.0.1"),
    ])
    .await;
    let rig = rig(dns, port, |c| {
        c.shaping = Shaping::from_files(&[
            "[default]\nidle_timeout = \"200ms\"\n[provider.prov]\nmx_suffixes = [\".prov.test\"]\nconnections_max = 5\nprovider_connections_max = 2\n",
        ])
        .unwrap();
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..12 {
        let domain = if n % 2 == 0 { "one.test" } else { "two.test" };
        ids.push(rig.submit("", &[&format!("ok{n}@{domain}")], 0, 0).await);
    }
    for id in &ids {
        rig.wait_gone(*id, Duration::from_secs(20)).await;
    }
    assert_eq!(sink.messages().len(), 12);
    let max = sink.max_concurrent();
    assert!(
        max <= 2,
        "two sites of one provider shared 2 connections, saw {max}"
    );
    let summary = rig.engine.summary();
    assert_eq!(summary.sites.len(), 2);
    assert!(
        summary
            .sites
            .iter()
            .all(|s| s.provider.as_deref() == Some("prov"))
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_connection_is_retried_before_the_site_counts_as_down() {
    // Nothing listens yet; the MX comes up after the first failed connection.
    let sink_dir = tempfile::tempdir().unwrap();
    let port = testkit::sink::free_port("127.0.0.1");
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.shaping = Shaping::from_files(&[
            "[default]\nidle_timeout = \"300ms\"\nconnect_failures_max = 3\n",
        ])
        .unwrap();
    })
    .await;
    let id = rig.submit("", &["ok@sink.test"], 0, 0).await;
    // The first attempt has failed: the site exists, no connection is open, the mail waits.
    wait_for(Duration::from_secs(5), || {
        let s = rig.engine.summary();
        s.sites
            .iter()
            .any(|site| site.ready_recipients == 1 && site.connections == 0)
            .then_some(())
    })
    .await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let sink = MxSink::start(&[addr], sink_dir.path(), SinkOptions::default());
    rig.wait_gone(id, Duration::from_secs(5)).await;
    assert_eq!(sink.messages().len(), 1);
    // One waiting message needs one connection, not the site's whole allowance.
    assert_eq!(sink.connections(), 1, "connections opened for one message");
    rig.engine.shutdown(Duration::from_secs(5)).await;
}
