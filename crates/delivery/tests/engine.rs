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
use testkit::sink::{MxSink, SinkOptions, free_port};

struct Rig {
    spool: Spool,
    engine: Engine,
    dir: tempfile::TempDir,
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
        events_file: Some(dir.path().join("events.jsonl")),
    };
    tweak(&mut config);
    let engine = Engine::start(spool.clone(), config).expect("engine");
    Rig {
        spool,
        engine,
        dir,
        _dns: dns,
    }
}

impl Rig {
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
    // One port free on every address used.
    let port = loop {
        let port = free_port(ips[0]);
        if ips
            .iter()
            .all(|ip| std::net::TcpListener::bind((*ip, port)).is_ok())
        {
            break port;
        }
    };
    let addrs: Vec<SocketAddr> = ips
        .iter()
        .map(|ip| SocketAddr::new(ip.parse().unwrap(), port))
        .collect();
    (MxSink::start(&addrs, dir, options), port)
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
    assert_eq!(
        rig.engine.attempts(id).len() >= 2,
        true,
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
