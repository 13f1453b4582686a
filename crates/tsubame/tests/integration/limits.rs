//! Every limit, each with its reply and enhanced status code, against the real server.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::harness::{RawClient, TestServer};

/// A greeted connection. The harness's readiness probe may still count against the limits
/// for a moment after start-up (the server notices its close a little later), so a refusal
/// right at the start is retried briefly.
fn greeted(server: &TestServer) -> RawClient {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut client = RawClient::connect(server.smtp);
        let reply = client.reply();
        if reply.starts_with("220 ") {
            return client;
        }
        assert!(
            reply.starts_with("421 ") && Instant::now() < deadline,
            "not greeted: {reply}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn expect_closed(client: &mut RawClient) {
    let mut rest = Vec::new();
    let _ = client.stream.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "expected EOF, got {:?}",
        String::from_utf8_lossy(&rest)
    );
}

#[test]
fn connection_limits_global_per_ip_and_rate() {
    let server = TestServer::start(
        "connections_per_ip_max = 2\nconnections_max = 100\nconnection_rate_per_ip_max = 1000\n\
         connection_limit_exceptions = []",
    );
    let _a = greeted(&server);
    let _b = greeted(&server);
    let mut c = RawClient::connect(server.smtp);
    assert_eq!(
        c.reply(),
        "421 4.7.0 Too many connections from your address\r\n"
    );
    expect_closed(&mut c);
    drop(_a);
    std::thread::sleep(Duration::from_millis(200));
    let _d = greeted(&server);

    let server = TestServer::start(
        "connections_max = 2\nconnections_per_ip_max = 100\nconnection_rate_per_ip_max = 1000",
    );
    let _a = greeted(&server);
    let _b = greeted(&server);
    let mut c = RawClient::connect(server.smtp);
    assert_eq!(
        c.reply(),
        "421 4.7.0 Too many connections, try again later\r\n"
    );

    let server = TestServer::start(
        "connection_rate_per_ip_max = 3\nconnection_rate_interval = \"60s\"\nconnection_limit_exceptions = []",
    );
    // A source address of its own, so the harness's readiness probes do not count.
    let source = "127.0.0.9".parse().expect("ip");
    for _ in 0..3 {
        let mut ok = RawClient::connect_from(source, server.smtp);
        assert!(ok.reply().starts_with("220 "));
        ok.cmd("QUIT");
    }
    let mut limited = RawClient::connect_from(source, server.smtp);
    assert_eq!(
        limited.reply(),
        "421 4.7.0 Connection rate limit exceeded, slow down\r\n"
    );
    let mut other = RawClient::connect_from("127.0.0.10".parse().expect("ip"), server.smtp);
    assert!(
        other.reply().starts_with("220 "),
        "another address is not limited"
    );
}

/// Postfix's smtp-source opens one connection per message, as many mail libraries do. From
/// a trusted network (loopback is one by default) 700 such messages in well under a minute
/// all get through a rate limit of 600 a minute, and 60 at once through a per-address cap
/// of 50; with the exemption switched off the same client is refused.
#[test]
fn trusted_clients_are_exempt_from_per_address_limits() {
    let smtp_source = |server: &TestServer, messages: &str, sessions: &str| {
        std::process::Command::new("/usr/sbin/smtp-source")
            .args([
                "-s",
                sessions,
                "-m",
                messages,
                "-f",
                "app@client.test",
                "-t",
                "x@dest.test",
            ])
            .arg(server.smtp.to_string())
            .output()
            .expect("smtp-source (scripts/test installs postfix)")
    };
    let server = TestServer::start("");
    let out = smtp_source(&server, "700", "60");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let queued = server.queued_ids().len();
    assert_eq!(
        queued, 700,
        "every message of the trusted client was accepted"
    );

    let server = TestServer::start("connection_limit_exceptions = []");
    let out = smtp_source(&server, "700", "60");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() || stderr.contains("421"),
        "the untrusted path still limits: {stderr}"
    );
    assert!(server.queued_ids().len() < 700);
}

#[test]
fn protocol_limits_line_recipients_size_errors() {
    let server = TestServer::start(
        "command_line_bytes_max = 512\nrecipients_max = 3\nmessage_bytes_max = 2048\nbad_commands_max = 3",
    );
    let mut client = greeted(&server);
    let ehlo = client.cmd("EHLO c");
    assert!(ehlo.contains("250-SIZE 2048\r\n"), "{ehlo}");
    let long = format!("NOOP {}", "x".repeat(600));
    assert_eq!(client.cmd(&long), "500 5.5.2 Line too long\r\n");
    assert!(
        client
            .cmd("MAIL FROM:<a@example.org> SIZE=4096")
            .starts_with("552 5.3.4")
    );
    assert!(
        client
            .cmd("MAIL FROM:<a@example.org> SIZE=1000")
            .starts_with("250")
    );
    for i in 0..3 {
        assert!(
            client
                .cmd(&format!("RCPT TO:<r{i}@example.com>"))
                .starts_with("250")
        );
    }
    assert_eq!(
        client.cmd("RCPT TO:<r4@example.com>"),
        "452 4.5.3 Too many recipients\r\n"
    );
    assert!(client.cmd("DATA").starts_with("354"));
    client.send(format!("Subject: big\r\n\r\n{}\r\n.\r\n", "y".repeat(3000)).as_bytes());
    assert!(client.reply().starts_with("552 5.3.4"));
    assert!(server.queued_ids().is_empty());

    // One error so far (the long line); two more unknown commands reach the limit of 3.
    assert!(client.cmd("BOGUS").starts_with("500 5.5.2"));
    assert!(client.cmd("BOGUS").starts_with("500 5.5.2"));
    let closing = client.reply();
    assert_eq!(closing, "421 4.7.0 Too many errors, closing connection\r\n");
    expect_closed(&mut client);
}

#[test]
fn command_timeout_and_slow_command_lines() {
    let server = TestServer::start("command_timeout = \"1s\"");
    let mut idle = greeted(&server);
    let started = Instant::now();
    let reply = idle.reply();
    assert!(reply.starts_with("421 4.4.2"), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(3));
    expect_closed(&mut idle);

    // A client dribbling one command a byte at a time cannot hold the connection.
    let mut slow = greeted(&server);
    let started = Instant::now();
    for byte in b"NOOP and then some more text that never ends, one byte at a time" {
        if crate::harness::readable(&slow.stream) || slow.stream.write_all_ok(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let reply = slow.reply();
    assert!(reply.starts_with("421 4.4.2"), "{reply:?}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "held for {:?}",
        started.elapsed()
    );
}

trait WriteOk {
    fn write_all_ok(&mut self, bytes: &[u8]) -> std::io::Result<()>;
}

impl WriteOk for std::net::TcpStream {
    fn write_all_ok(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.write_all(bytes)
    }
}

#[test]
fn minimum_data_rate() {
    let server = TestServer::start(
        "data_rate_grace = \"1s\"\ndata_rate_min_bytes_per_sec = 1000\ndata_idle_timeout = \"30s\"",
    );
    let mut client = greeted(&server);
    client.cmd("EHLO c");
    client.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    for _ in 0..3 {
        client.reply();
    }
    let started = Instant::now();
    // 20 bytes every 200 ms is 100 B/s, far below the 1000 B/s minimum.
    while started.elapsed() < Duration::from_secs(6) {
        if client
            .stream
            .write_all_ok(b"slow slow slow slow\r")
            .is_err()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        client.stream.set_nonblocking(true).expect("nonblocking");
        let mut peek = [0u8; 1];
        let ready = client.stream.peek(&mut peek).is_ok();
        client.stream.set_nonblocking(false).expect("blocking");
        if ready {
            break;
        }
    }
    let reply = client.reply();
    assert!(
        reply.starts_with("421 4.4.2 Minimum data rate"),
        "{reply:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "slow client held the connection for {:?}",
        started.elapsed()
    );
    assert!(server.queued_ids().is_empty());
}

#[test]
fn early_talker_is_refused_and_polite_client_is_served() {
    let server = TestServer::start("greeting_delay = \"500ms\"");
    let mut rude = RawClient::connect(server.smtp);
    rude.send(b"EHLO impatient\r\n");
    assert_eq!(
        rude.reply(),
        "554 5.5.0 Protocol error: data sent before the greeting\r\n"
    );
    expect_closed(&mut rude);
    let started = Instant::now();
    let mut polite = greeted(&server);
    assert!(started.elapsed() >= Duration::from_millis(450));
    assert!(polite.cmd("EHLO polite").starts_with("250"));
}

#[test]
fn minimum_data_rate_spans_bdat_chunks() {
    let server = TestServer::start("data_rate_grace = \"1s\"\ndata_rate_min_bytes_per_sec = 1000");
    let mut client = greeted(&server);
    client.cmd("EHLO c");
    client.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n");
    client.reply();
    client.reply();
    let started = Instant::now();
    let mut last = String::new();
    // Small chunks, each answered quickly: about 33 B/s over the transaction.
    while started.elapsed() < Duration::from_secs(6) {
        if client
            .stream
            .write_all_ok(b"BDAT 10\r\n01234567\r\n")
            .is_err()
        {
            break;
        }
        last = client.reply();
        if !last.starts_with("250") {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(last.starts_with("421 4.4.2 Minimum data rate"), "{last:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "held for {:?}",
        started.elapsed()
    );
    assert!(server.queued_ids().is_empty());
}
