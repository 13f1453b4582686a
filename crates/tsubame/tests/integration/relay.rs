//! Delivery through the real binary: SMTP in (swaks) → spool → MX from a real DNS server on
//! loopback → Postfix's smtp-sink or Python aiosmtpd; and the operator's queue controls.

use std::process::Command;
use std::time::{Duration, Instant};

use testkit::dns::{Rr, TestDns};
use testkit::sink::{MxSink, SinkOptions, free_port, postfix_sink};

use crate::harness::TestServer;

/// A runtime for the in-process DNS server; it serves while the test runs synchronously.
fn dns(records: &[Rr]) -> (tokio::runtime::Runtime, TestDns) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let dns = rt.block_on(TestDns::start(records, 60));
    (rt, dns)
}

fn delivery_config(dns: &TestDns, mx_port: u16) -> String {
    format!(
        "[delivery]\ndns_servers = [\"{}\"]\nmx_port = {mx_port}\nretry_initial = \"1h\"\nconnect_timeout = \"2s\"\n",
        dns.addr
    )
}

fn swaks(server: &TestServer, from: &str, to: &str, subject: &str) {
    let output = Command::new("swaks")
        .args([
            "--server",
            &server.smtp.to_string(),
            "--from",
            from,
            "--to",
            to,
        ])
        .args(["--header", &format!("Subject: {subject}"), "--hide-all"])
        .output()
        .expect("swaks");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn wait_until<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "condition not reached within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn events(server: &TestServer) -> Vec<serde_json::Value> {
    let path = server.data_dir.join("events").join("delivery.jsonl");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn relays_from_swaks_to_postfix_smtp_sink_found_by_mx() {
    let port = free_port("127.0.0.1");
    let _sink = postfix_sink(format!("127.0.0.1:{port}").parse().unwrap(), &[]);
    let (_rt, dns) = dns(&[
        Rr::mx("dest.test", 10, "mx.dest.test"),
        Rr::a("mx.dest.test", "127.0.0.1"),
    ]);
    let server = TestServer::start(&delivery_config(&dns, port));
    for n in 0..3 {
        swaks(
            &server,
            "sender@src.test",
            &format!("user{n}@dest.test"),
            &format!("relay {n}"),
        );
    }
    wait_until(Duration::from_secs(15), || {
        (server.admin_json("/admin/v1/queue/summary")["messages"] == 0).then_some(())
    });
    let delivered = wait_until(Duration::from_secs(5), || {
        let e = events(&server);
        (e.len() >= 3).then_some(e)
    });
    assert!(
        delivered.iter().all(|e| e["outcome"] == "delivered"
            && e["remote_host"] == "mx.dest.test"
            && e["response"].as_str().unwrap().starts_with("250")),
        "{delivered:?}"
    );
    let (_, metrics) = server.admin("/metrics");
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains(
            "tsubame_delivery_recipients_total{site=\"mx.dest.test\",outcome=\"delivered\"} 3"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("tsubame_delivery_latency_seconds_bucket{le=\"7\"} 3"),
        "{metrics}"
    );
}

#[test]
fn operators_pause_retry_bounce_and_delete_from_the_cli() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = MxSink::start_free(&["127.0.0.1"], sink_dir.path(), SinkOptions::default());
    let (_rt, dns) = dns(&[
        Rr::mx("dest.test", 10, "mx.dest.test"),
        Rr::mx("src.test", 10, "mx.dest.test"),
        Rr::a("mx.dest.test", "127.0.0.1"),
    ]);
    let server = TestServer::start(&delivery_config(&dns, port));

    swaks(&server, "sender@src.test", "defer@dest.test", "held back");
    let summary = wait_until(Duration::from_secs(10), || {
        let s = server.admin_json("/admin/v1/queue/summary");
        (s["deferred"] == 1).then_some(s)
    });
    let domain = &summary["domains"][0];
    assert_eq!(domain["domain"], "dest.test");
    assert!(
        domain["last_error"]
            .as_str()
            .unwrap()
            .contains("451 4.3.0 Try again later")
    );
    let text = server.cli(&["queue", "summary"]);
    assert!(
        text.contains("mx.dest.test") && text.contains("451 4.3.0"),
        "{text}"
    );
    let id = server.admin_json("/admin/v1/queue/messages")["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = server.cli(&["queue", "show", &id]);
    assert!(
        shown.contains("attempts:")
            && shown.contains("deferred")
            && shown.contains("<defer@dest.test>"),
        "{shown}"
    );

    // Paused: a retry-now puts it on hold instead of sending it.
    server.cli(&["queue", "pause", "--domain", "dest.test"]);
    assert!(server.cli(&["queue", "retry"]).contains("1 recipients"));
    wait_until(Duration::from_secs(5), || {
        (server.admin_json("/admin/v1/queue/summary")["held"] == 1).then_some(())
    });
    server.cli(&["queue", "resume", "--domain", "dest.test"]);
    wait_until(Duration::from_secs(5), || {
        (server.admin_json("/admin/v1/queue/summary")["deferred"] == 1).then_some(())
    });

    // Bounce by domain: the sender gets a DSN with the operator's reason.
    let out = server.cli(&[
        "queue",
        "bounce",
        "--domain",
        "dest.test",
        "--reason",
        "cleanup after test",
    ]);
    assert!(out.contains("1 recipients bounced"), "{out}");
    let messages = sink.wait_messages(1, Duration::from_secs(10));
    let dsn = messages.iter().find(|m| m["sender"] == "<>").expect("DSN");
    assert_eq!(dsn["recipients"], serde_json::json!(["sender@src.test"]));
    assert!(
        dsn["content"]
            .as_str()
            .unwrap()
            .contains("cleanup after test")
    );
    assert!(
        dsn["content"]
            .as_str()
            .unwrap()
            .contains("Subject: held back")
    );

    // Delete by sender: gone without a DSN.
    swaks(
        &server,
        "other@src.test",
        "defer@dest.test",
        "to be deleted",
    );
    wait_until(Duration::from_secs(10), || {
        (server.admin_json("/admin/v1/queue/summary")["deferred"] == 1).then_some(())
    });
    let out = server.cli(&["queue", "delete", "--sender", "other@src.test"]);
    assert!(out.contains("1 recipients deleted"), "{out}");
    wait_until(Duration::from_secs(5), || {
        (server.admin_json("/admin/v1/queue/summary")["messages"] == 0).then_some(())
    });
    // An empty filter is refused for destructive commands.
    let refused = Command::new(crate::harness::BIN)
        .args(["queue", "delete", "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("filter"));

    // Pausing a site holds new mail for it until resumed.
    server.cli(&["queue", "pause", "--site", "mx.dest.test"]);
    swaks(&server, "sender@src.test", "ok@dest.test", "after resume");
    std::thread::sleep(Duration::from_millis(500));
    let s = server.admin_json("/admin/v1/queue/summary");
    assert_eq!(s["messages"], 1, "{s}");
    assert_eq!(s["sites"][0]["hold"], "paused");
    assert_eq!(sink.messages().len(), 1, "only the DSN so far");
    server.cli(&["queue", "resume", "--site", "mx.dest.test"]);
    let messages = sink.wait_messages(2, Duration::from_secs(10));
    assert!(
        messages
            .iter()
            .any(|m| m["recipients"] == serde_json::json!(["ok@dest.test"]))
    );
}

#[test]
fn sigterm_during_delivery_keeps_the_rest_and_duplicates_nothing() {
    let sink_dir = tempfile::tempdir().unwrap();
    // A slow MX: 200 ms per message, so SIGTERM lands mid-queue.
    let (sink, port) = MxSink::start_free(
        &["127.0.0.1"],
        sink_dir.path(),
        SinkOptions {
            data_delay: 0.2,
            ..SinkOptions::default()
        },
    );
    let (_rt, dns) = dns(&[
        Rr::mx("dest.test", 10, "mx.dest.test"),
        Rr::a("mx.dest.test", "127.0.0.1"),
    ]);
    // One connection at a time, so the queue takes seconds to drain.
    let shaping = sink_dir.path().join("shaping.toml");
    std::fs::write(&shaping, "[default]\nconnections_max = 1\n").unwrap();
    let mut server = TestServer::start(&format!(
        "{}shutdown_grace = \"5s\"\nshaping_file = {:?}\n",
        delivery_config(&dns, port),
        shaping.display().to_string()
    ));
    for n in 0..30 {
        swaks(
            &server,
            "sender@src.test",
            &format!("user{n}@dest.test"),
            &format!("graceful {n}"),
        );
    }
    wait_until(Duration::from_secs(10), || {
        (sink.messages().len() >= 3).then_some(())
    });
    let status = server.terminate(Duration::from_secs(15));
    assert!(status.success(), "clean exit: {status:?}");
    let delivered_before = sink.messages().len();
    assert!(
        delivered_before < 30,
        "SIGTERM came before the queue was empty"
    );
    server.spawn(&[]);
    wait_until(Duration::from_secs(30), || {
        (server.admin_json("/admin/v1/queue/summary")["messages"] == 0).then_some(())
    });
    let mut subjects: Vec<String> = sink
        .messages()
        .iter()
        .filter_map(|m| {
            let c = m["content"].as_str()?;
            let at = c.find("Subject: graceful ")?;
            Some(c[at..].lines().next()?.to_string())
        })
        .collect();
    let total = subjects.len();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 30, "every message delivered");
    assert_eq!(
        total, 30,
        "a graceful stop records what it delivered: no duplicates"
    );
}

/// A BDAT body may end without CRLF; everything else our ingress stores is canonical and is
/// relayed byte for byte. Relayed to a second tsubame, which speaks CHUNKING, so both BDAT
/// paths of the client run: sent as stored, and normalised first.
#[test]
fn relayed_bdat_bodies_arrive_canonical_with_or_without_a_final_crlf() {
    let receiver = TestServer::start("");
    let relay = TestServer::start(&format!(
        "[delivery]\ntls = \"disabled\"\n[[delivery.route]]\ndomains = [\"far.test\"]\nhosts = [\"{}\"]\n",
        receiver.smtp
    ));
    let mut client = crate::harness::RawClient::connect(relay.smtp);
    client.reply();
    client.cmd("EHLO client.test");
    let bodies: [&[u8]; 2] = [
        b"Subject: ends with CRLF\r\n\r\nline one\r\nline two\r\n",
        b"Subject: no final CRLF\r\n\r\nline one\r\nlast line",
    ];
    for body in bodies {
        let mut command = b"MAIL FROM:<s@src.test>\r\nRCPT TO:<r@far.test>\r\n".to_vec();
        command.extend_from_slice(format!("BDAT {} LAST\r\n", body.len()).as_bytes());
        command.extend_from_slice(body);
        client.send(&command);
        for _ in 0..3 {
            let reply = client.reply();
            assert!(reply.starts_with("250"), "{reply}");
        }
    }
    let ids = wait_until(Duration::from_secs(15), || {
        let ids = receiver.queued_ids();
        (ids.len() == 2).then_some(ids)
    });
    let mut received: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| receiver.stored_content(id).expect("content"))
        .collect();
    received.sort_by_key(|c| c.windows(9).any(|w| w == b"last line"));
    for (content, ending) in received
        .iter()
        .zip([&b"line two\r\n"[..], b"last line\r\n"])
    {
        assert!(
            content.ends_with(ending),
            "{:?}",
            String::from_utf8_lossy(content)
        );
        let bare = content.iter().enumerate().any(|(i, &b)| {
            (b == b'\n' && (i == 0 || content[i - 1] != b'\r'))
                || (b == b'\r' && content.get(i + 1) != Some(&b'\n'))
        });
        assert!(
            !bare,
            "bare line ending in {:?}",
            String::from_utf8_lossy(content)
        );
        // The relay's own trace header came along.
        assert_eq!(
            content.windows(11).filter(|w| w == b"(tsubame) w").count(),
            2,
            "{:?}",
            String::from_utf8_lossy(content)
        );
    }
}

/// A message with a 3,000-octet body line and a 1,500-octet header field is accepted, then
/// delivered to aiosmtpd, which refuses lines over 1,000 octets (`500 Line too long`): the
/// body arrives quoted-printable with the same text, the field folded with the same value,
/// and no line is over 998 octets. Mail with a NUL is refused and never reaches the sink.
#[test]
fn long_lines_are_reencoded_and_delivered_to_a_strict_receiver() {
    use mail_parser::MimeHeaders as _;
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = MxSink::start_free(&["127.0.0.1"], sink_dir.path(), SinkOptions::default());
    let (_rt, dns) = dns(&[
        Rr::mx("dest.test", 10, "mx.dest.test"),
        Rr::a("mx.dest.test", "127.0.0.1"),
    ]);
    let server = TestServer::start(&delivery_config(&dns, port));
    let long_body: String = (0..500).map(|i| format!("w{i} ")).collect::<String>() + "end";
    let long_field: String = (0..250)
        .map(|i| format!("<r{i}@x.test>"))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(long_body.len() > 2000 && long_field.len() > 1000);
    let content = format!(
        "From: <a@src.test>\r\nTo: <b@dest.test>\r\nSubject: long\r\nReferences: {long_field}\r\n\r\n\
         first\r\n{long_body}\r\nlast\r\n"
    );
    let mut client = crate::harness::RawClient::connect(server.smtp);
    client.start_data("a@src.test", "b@dest.test");
    client.send(content.as_bytes());
    client.send(b".\r\n");
    assert!(client.reply().starts_with("250 "));
    client.send(b"MAIL FROM:<a@src.test>\r\nRCPT TO:<b@dest.test>\r\nDATA\r\n");
    for _ in 0..3 {
        client.reply();
    }
    client.send(b"Subject: nul\r\n\r\na\0b\r\n.\r\n");
    assert!(client.reply().starts_with("550 5.6.0"));
    client.cmd("QUIT");

    let messages = sink.wait_messages(1, Duration::from_secs(15));
    let delivered = messages[0]["content"].as_str().expect("content");
    let longest = delivered.split("\r\n").map(str::len).max().unwrap_or(0);
    assert!(
        longest <= 998,
        "a line of {longest} octets reached the receiver"
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(delivered.as_bytes())
        .expect("parses");
    assert_eq!(parsed.content_transfer_encoding(), Some("quoted-printable"));
    assert_eq!(
        parsed.body_text(0).expect("text"),
        format!("first\r\n{long_body}\r\nlast\r\n")
    );
    let references = parsed
        .header_raw("References")
        .expect("References")
        .replace("\r\n", "");
    assert_eq!(references.trim(), long_field);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        sink.messages().len(),
        1,
        "the NUL message was never relayed"
    );
}
