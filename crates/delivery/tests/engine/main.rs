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

mod outcomes;
mod reports;
mod restarts;
mod shaping;

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
            not_before_ms: 0,
            attributes: None,
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

/// A minimal envelope: one recipient, no DSN parameters, from the test client.
fn envelope_to(sender: &str, recipient: &str) -> Envelope {
    Envelope {
        sender: sender.into(),
        recipients: vec![Recipient {
            address: recipient.into(),
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
        not_before_ms: 0,
        attributes: None,
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
