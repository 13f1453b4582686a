//! SMTP smuggling and STARTTLS injection against the real server: no attack sequence may
//! split one message into two, and nothing from an attack is queued.

use crate::harness::{RawClient, TestServer};

const ATTACKS: [&[u8]; 8] = [
    b"\n.\r\n",
    b"\r.\r\n",
    b"\n.\n",
    b"\r\n.\n",
    b"\n.\r",
    b"\r\n.\r",
    b"\n.\n\r\n.\r",
    b"\r\n.\r\r\n\n.\n",
];

#[test]
fn known_smuggling_sequences_never_split_a_message() {
    let server = TestServer::start("");
    for attack in ATTACKS {
        let mut client = RawClient::connect(server.smtp);
        client.start_data("a@example.org", "b@example.com");
        let mut payload = b"Subject: first\r\n\r\nfirst message".to_vec();
        payload.extend_from_slice(attack);
        payload.extend_from_slice(
            b"MAIL FROM:<smuggled@example.org>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n",
        );
        client.send(&payload);
        let reply = client.reply();
        assert!(reply.starts_with("550 5.6.0"), "attack {attack:?}: {reply}");
        // The connection is still in sync: the next command gets its own reply.
        assert!(
            client.cmd("NOOP").starts_with("250"),
            "attack {attack:?} desynchronised the session"
        );
        client.cmd("QUIT");
    }
    assert!(
        server.queued_ids().is_empty(),
        "an attack produced a queued message"
    );
    let metrics = String::from_utf8(
        crate::harness::http_get(server.http, "/metrics", None)
            .expect("metrics")
            .1,
    )
    .expect("utf8");
    assert!(
        metrics.contains("tsubame_smtp_messages_rejected_total{reason=\"bare_line_ending\"} 8"),
        "{metrics}"
    );
}

#[test]
fn bdat_content_with_bare_lf_is_rejected_and_counted_chunks_stay_in_sync() {
    let server = TestServer::start("");
    let mut client = RawClient::connect(server.smtp);
    client.reply();
    client.cmd("EHLO c");
    client.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n");
    client.reply();
    client.reply();
    // 25 bytes that contain a bare LF and a would-be command.
    client.send(b"BDAT 25 LAST\r\nx\n.\r\nMAIL FROM:<evil@x>\r\n");
    assert!(client.reply().starts_with("550 5.6.0"));
    assert!(client.cmd("NOOP").starts_with("250"));
    assert!(server.queued_ids().is_empty());
}

/// A NUL in a header or the body, by DATA or BDAT, refuses the message: nothing is queued
/// (so nothing is relayed), and the refusals are counted by reason.
#[test]
fn nul_bytes_are_refused_and_never_queued() {
    let server = TestServer::start("");
    for content in [
        &b"Subject: hi\0there\r\n\r\nbody\r\n.\r\n"[..],
        &b"Subject: hi\r\n\r\nbo\0dy\r\n.\r\n"[..],
    ] {
        let mut client = RawClient::connect(server.smtp);
        client.start_data("a@example.org", "b@example.com");
        client.send(content);
        let reply = client.reply();
        assert!(reply.starts_with("550 5.6.0"), "{reply}");
    }
    let mut client = RawClient::connect(server.smtp);
    client.reply();
    client.cmd("EHLO c");
    client.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n");
    client.reply();
    client.reply();
    client.send(b"BDAT 14 LAST\r\nSubject: \0\r\n\r\n");
    assert!(client.reply().starts_with("550 5.6.0"));
    assert!(client.cmd("NOOP").starts_with("250"));
    assert!(server.queued_ids().is_empty());
    let metrics = String::from_utf8(
        crate::harness::http_get(server.http, "/metrics", None)
            .expect("metrics")
            .1,
    )
    .expect("utf8");
    assert!(
        metrics.contains("tsubame_smtp_messages_rejected_total{reason=\"nul\"} 3"),
        "{metrics}"
    );
}
