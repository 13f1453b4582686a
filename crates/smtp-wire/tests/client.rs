//! The SMTP client state machine against scripted server replies, and against our own
//! server session in memory.

use std::sync::Arc;

use proptest::prelude::*;
use smtp_wire::client::{
    ClientEvent, ClientFailure, ClientSession, Outbound, OutboundRecipient, Stage,
};
use smtp_wire::{Event, PeerContext, Reply, Session, SessionConfig};

/// Feeds one chunk of server output; returns the events up to the next NeedInput.
fn server_says(client: &mut ClientSession, bytes: &str) -> Vec<ClientEvent> {
    client.feed(bytes.as_bytes());
    let mut events = Vec::new();
    loop {
        match client.poll() {
            ClientEvent::NeedInput => return events,
            ClientEvent::Closed => {
                events.push(ClientEvent::Closed);
                return events;
            }
            event => events.push(event),
        }
    }
}

fn written(client: &mut ClientSession) -> String {
    let out = String::from_utf8(client.output().to_vec()).expect("utf8");
    client.clear_output();
    out
}

const EHLO_FULL: &str = "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-8BITMIME\r\n250-DSN\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n";

fn ready(ehlo: &str) -> ClientSession {
    let mut client = ClientSession::new("out.tsubame.test");
    assert_eq!(client.stage(), Stage::Banner);
    assert!(server_says(&mut client, "220 mx.test ESMTP\r\n").is_empty());
    assert_eq!(written(&mut client), "EHLO out.tsubame.test\r\n");
    assert_eq!(server_says(&mut client, ehlo), vec![ClientEvent::Ready]);
    client
}

fn message(rcpts: &[&str]) -> Outbound {
    Outbound {
        sender: "s@tsubame.test".into(),
        recipients: rcpts
            .iter()
            .map(|a| OutboundRecipient {
                address: a.to_string(),
                notify: Some("FAILURE".into()),
                orcpt: None,
            })
            .collect(),
        dsn_ret: Some("HDRS"),
        dsn_envid: None,
        body_8bit: false,
        smtputf8: false,
        content_canonical: false,
    }
}

fn codes(event: &ClientEvent) -> Vec<u16> {
    match event {
        ClientEvent::Transaction(outcome) => outcome.recipients.iter().map(|r| r.code).collect(),
        other => panic!("expected a transaction outcome, got {other:?}"),
    }
}

#[test]
fn pipelined_transaction_keeps_per_recipient_outcomes() {
    let mut client = ready(EHLO_FULL);
    client.send(
        &message(&["a@x.test", "b@x.test", "c@x.test"]),
        b"Subject: t\r\n\r\n.hi\r\n",
    );
    assert_eq!(
        written(&mut client),
        "MAIL FROM:<s@tsubame.test> SIZE=19 RET=HDRS\r\nRCPT TO:<a@x.test> NOTIFY=FAILURE\r\n\
         RCPT TO:<b@x.test> NOTIFY=FAILURE\r\nRCPT TO:<c@x.test> NOTIFY=FAILURE\r\nDATA\r\n",
        "one write for the whole envelope"
    );
    let events = server_says(
        &mut client,
        "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n250 2.1.5 ok\r\n354 go\r\n",
    );
    assert!(events.is_empty());
    assert_eq!(written(&mut client), "Subject: t\r\n\r\n..hi\r\n.\r\n");
    assert_eq!(client.stage(), Stage::DataDot);
    let events = server_says(&mut client, "250 2.0.0 queued as X\r\n");
    assert_eq!(codes(&events[0]), vec![250, 550, 250]);
    let ClientEvent::Transaction(outcome) = &events[0] else {
        unreachable!()
    };
    assert!(outcome.any_delivered);
    assert_eq!(outcome.recipients[1].status, Some((5, 1, 1)));
    assert_eq!(
        written(&mut client),
        "",
        "no RSET after a completed transaction"
    );
    // The connection is reused for the next message.
    client.send(&message(&["d@x.test"]), b"x\r\n");
    assert!(written(&mut client).starts_with("MAIL FROM:"));
}

#[test]
fn without_pipelining_commands_wait_for_replies() {
    let mut client = ready("250-mx.test\r\n250 8BITMIME\r\n");
    client.send(&message(&["a@x.test", "b@x.test"]), b"x\r\n");
    assert_eq!(
        written(&mut client),
        "MAIL FROM:<s@tsubame.test>\r\n",
        "no DSN or SIZE unless offered"
    );
    server_says(&mut client, "250 ok\r\n");
    assert_eq!(written(&mut client), "RCPT TO:<a@x.test>\r\n");
    server_says(&mut client, "550 no\r\n");
    assert_eq!(written(&mut client), "RCPT TO:<b@x.test>\r\n");
    server_says(&mut client, "250 ok\r\n");
    assert_eq!(written(&mut client), "DATA\r\n");
    server_says(&mut client, "354 go\r\n");
    assert_eq!(written(&mut client), "x\r\n.\r\n");
    let events = server_says(&mut client, "250 ok\r\n");
    assert_eq!(codes(&events[0]), vec![550, 250]);
}

#[test]
fn every_recipient_refused_resets_before_reporting() {
    let mut client = ready(EHLO_FULL);
    client.send(&message(&["a@x.test", "b@x.test"]), b"x\r\n");
    written(&mut client);
    let events = server_says(
        &mut client,
        "250 ok\r\n550 5.1.1 a\r\n452 4.2.2 full\r\n554 5.5.1 no valid recipients\r\n",
    );
    assert!(events.is_empty(), "outcome waits for the RSET reply");
    assert_eq!(written(&mut client), "RSET\r\n");
    let events = server_says(&mut client, "250 2.0.0 ok\r\n");
    assert_eq!(codes(&events[0]), vec![550, 452]);
}

#[test]
fn refused_sender_fails_every_recipient() {
    let mut client = ready(EHLO_FULL);
    client.send(&message(&["a@x.test", "b@x.test"]), b"x\r\n");
    written(&mut client);
    server_says(
        &mut client,
        "553 5.7.1 sender rejected\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n",
    );
    assert_eq!(written(&mut client), "RSET\r\n");
    let events = server_says(&mut client, "250 ok\r\n");
    assert_eq!(codes(&events[0]), vec![553, 553]);
}

#[test]
fn data_accepted_without_recipients_is_ended_empty() {
    let mut client = ready(EHLO_FULL);
    client.send(&message(&["a@x.test"]), b"secret\r\n");
    written(&mut client);
    server_says(&mut client, "250 ok\r\n550 no\r\n354 go ahead anyway\r\n");
    assert_eq!(
        written(&mut client),
        ".\r\n",
        "the content is never sent when nobody was accepted"
    );
    server_says(&mut client, "554 no recipients\r\n");
    assert_eq!(written(&mut client), "RSET\r\n");
    let events = server_says(&mut client, "250 ok\r\n");
    assert_eq!(codes(&events[0]), vec![550]);
}

#[test]
fn content_rejected_at_end_of_data() {
    let mut client = ready(EHLO_FULL);
    client.send(&message(&["a@x.test", "b@x.test"]), b"x\r\n");
    written(&mut client);
    server_says(&mut client, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
    written(&mut client);
    let events = server_says(&mut client, "554 5.7.1 spam\r\n");
    assert_eq!(codes(&events[0]), vec![554, 554]);
    assert_eq!(
        written(&mut client),
        "",
        "the server ended the transaction itself"
    );
}

#[test]
fn greeting_refused_and_helo_fallback() {
    let mut client = ClientSession::new("me");
    let events = server_says(&mut client, "421 4.7.0 try later\r\n");
    assert!(matches!(&events[0], ClientEvent::Failed(ClientFailure::Greeting(r)) if r.code == 421));

    let mut client = ClientSession::new("me");
    server_says(&mut client, "220 old\r\n");
    written(&mut client);
    server_says(&mut client, "502 what\r\n");
    assert_eq!(written(&mut client), "HELO me\r\n");
    assert_eq!(
        server_says(&mut client, "250 hi\r\n"),
        vec![ClientEvent::Ready]
    );
    assert!(!client.capabilities().pipelining);
}

#[test]
fn starttls_then_ehlo_again() {
    let mut client = ready(EHLO_FULL);
    assert!(client.capabilities().starttls);
    client.start_tls();
    assert_eq!(written(&mut client), "STARTTLS\r\n");
    assert_eq!(
        server_says(&mut client, "220 2.0.0 ready\r\n"),
        vec![ClientEvent::TlsReady]
    );
    client.tls_established();
    assert_eq!(written(&mut client), "EHLO out.tsubame.test\r\n");
    assert_eq!(
        server_says(&mut client, "250-mx.test\r\n250 PIPELINING\r\n"),
        vec![ClientEvent::Ready]
    );
    assert!(
        client.tls_active() && client.capabilities().pipelining && !client.capabilities().starttls
    );

    let mut client = ready(EHLO_FULL);
    client.start_tls();
    let events = server_says(&mut client, "454 4.7.0 TLS not available\r\n");
    assert!(matches!(&events[0], ClientEvent::StartTlsRefused(r) if r.code == 454));
}

#[test]
fn smtputf8_and_size_are_checked_before_sending() {
    let mut client = ready("250-mx.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n");
    let mut utf8 = message(&["受信@例え.jp"]);
    utf8.smtputf8 = true;
    client.send(&utf8, b"x\r\n");
    let event = client.poll();
    assert_eq!(codes(&event), vec![550]);
    let ClientEvent::Transaction(outcome) = event else {
        unreachable!()
    };
    assert_eq!(outcome.recipients[0].status, Some((5, 6, 7)));
    client.send(&message(&["a@x.test"]), &[b'x'; 200]);
    let ClientEvent::Transaction(outcome) = client.poll() else {
        panic!("outcome")
    };
    assert_eq!(outcome.recipients[0].status, Some((5, 3, 4)));
    assert_eq!(
        written(&mut client),
        "",
        "nothing is sent for a message the server cannot take"
    );
}

#[test]
fn connection_lost_mid_transaction_and_quit() {
    let mut client = ready(EHLO_FULL);
    client.send(&message(&["a@x.test"]), b"x\r\n");
    server_says(&mut client, "250 ok\r\n");
    client.eof();
    assert_eq!(
        client.poll(),
        ClientEvent::Failed(ClientFailure::ConnectionLost(Stage::RcptTo))
    );

    let mut client = ready(EHLO_FULL);
    client.quit();
    assert_eq!(written(&mut client), "QUIT\r\n");
    assert_eq!(
        server_says(&mut client, "221 bye\r\n"),
        vec![ClientEvent::Closed]
    );

    let mut client = ClientSession::new("me");
    let events = server_says(&mut client, "garbage\r\n");
    assert!(matches!(
        events[0],
        ClientEvent::Failed(ClientFailure::Protocol(_))
    ));
}

/// Our client delivering to our own server, both sans-IO, bytes shuttled in memory.
fn deliver_in_memory(content: &[u8], rcpts: &[&str]) -> (Vec<smtp_wire::Transaction>, Vec<u16>) {
    let config = Arc::new(SessionConfig {
        hostname: "mx.test".into(),
        message_bytes_max: 1 << 20,
        recipients_max: 100,
        command_line_bytes_max: 1024,
        bad_commands_max: 10,
        starttls_available: false,
        auth_plaintext_allowed: false,
        recipient_checks: false,
        local_checks: false,
    });
    let mut server = Session::new(
        config,
        PeerContext {
            relay_trusted: true,
            tls_active: false,
        },
    );
    let mut client = ClientSession::new("client.test");
    let mut received = Vec::new();
    let mut outcome = Vec::new();
    let mut sent = false;
    for _ in 0..50 {
        client.feed(server.output());
        server.clear_output();
        loop {
            match client.poll() {
                ClientEvent::Ready if !sent => {
                    sent = true;
                    client.send(&message(rcpts), content);
                }
                ClientEvent::Transaction(o) => {
                    outcome = o.recipients.iter().map(|r| r.code).collect();
                    client.quit();
                }
                ClientEvent::NeedInput | ClientEvent::Ready => break,
                ClientEvent::Closed => return (received, outcome),
                other => panic!("unexpected {other:?}"),
            }
        }
        server.feed(client.output());
        client.clear_output();
        loop {
            match server.advance() {
                Event::NeedInput => break,
                Event::Submit(txn) => {
                    received.push(txn);
                    server.complete_submission(Reply::new(250, (2, 0, 0), "queued"));
                }
                Event::Close => break,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    panic!("conversation did not finish");
}

#[test]
fn our_client_delivers_to_our_server() {
    let (received, outcome) = deliver_in_memory(
        b"Subject: hi\r\n\r\n.dot line\r\nlast",
        &["a@x.test", "b@y.test"],
    );
    assert_eq!(outcome, vec![250, 250]);
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].content,
        b"Subject: hi\r\n\r\n.dot line\r\nlast\r\n"
    );
    assert_eq!(received[0].recipients.len(), 2);
}

proptest! {
    /// Whatever the stored content holds (bare CR, bare LF, lone dots), the client's DATA is
    /// accepted by our strict server and arrives with only the line endings normalised.
    #[test]
    fn any_content_survives_the_strict_receiver(content in proptest::collection::vec(
        prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'a'), Just(b' ')], 0..80)) {
        let (received, outcome) = deliver_in_memory(&content, &["a@x.test"]);
        prop_assert_eq!(outcome, vec![250]);
        let mut expected = Vec::new();
        let text = content.clone();
        let mut i = 0;
        while i < text.len() {
            match text[i] {
                b'\r' if text.get(i + 1) == Some(&b'\n') => { expected.extend_from_slice(b"\r\n"); i += 2; continue; }
                b'\r' | b'\n' => expected.extend_from_slice(b"\r\n"),
                b => expected.push(b),
            }
            i += 1;
        }
        if !expected.is_empty() && !expected.ends_with(b"\r\n") {
            expected.extend_from_slice(b"\r\n");
        }
        prop_assert_eq!(&received[0].content, &expected);
    }
}

const EHLO_CHUNKING: &str = "250-mx.test\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n";

#[test]
fn chunking_sends_the_whole_message_in_one_write_with_bdat_last() {
    let mut client = ready(EHLO_CHUNKING);
    client.send(
        &message(&["a@x.test", "b@x.test"]),
        b"Subject: t\n\r\n.hi\r\n",
    );
    assert_eq!(
        written(&mut client),
        "MAIL FROM:<s@tsubame.test>\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n\
         BDAT 19 LAST\r\nSubject: t\r\n\r\n.hi\r\n",
        "no dot-stuffing, bare LF normalised, length counts the CRLFs"
    );
    assert_eq!(client.stage(), Stage::MailFrom);
    let events = server_says(
        &mut client,
        "250 2.1.0 ok\r\n550 5.1.1 no such user\r\n250 2.1.5 ok\r\n250 2.0.0 queued\r\n",
    );
    assert_eq!(codes(&events[0]), vec![550, 250]);
    assert_eq!(
        written(&mut client),
        "",
        "no RSET after an accepted LAST chunk"
    );

    // Every recipient refused: the server refuses the chunk too, and the client resets.
    client.send(&message(&["c@x.test"]), b"x\r\n");
    let _ = written(&mut client);
    let events = server_says(
        &mut client,
        "250 2.1.0 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n",
    );
    assert!(events.is_empty(), "outcome held until RSET is answered");
    assert_eq!(written(&mut client), "RSET\r\n");
    let events = server_says(&mut client, "250 2.0.0 reset\r\n");
    assert_eq!(codes(&events[0]), vec![550]);
}

#[test]
fn auth_login_when_plain_is_not_offered_and_refusal() {
    let mut client = ready("250-mx.test\r\n250 AUTH LOGIN\r\n");
    assert!(client.authenticate("user", "pa ss"));
    assert_eq!(written(&mut client), "AUTH LOGIN\r\n");
    assert_eq!(client.stage(), Stage::Auth);
    assert!(server_says(&mut client, "334 VXNlcm5hbWU6\r\n").is_empty());
    assert_eq!(written(&mut client), "dXNlcg==\r\n");
    assert!(server_says(&mut client, "334 UGFzc3dvcmQ6\r\n").is_empty());
    assert_eq!(written(&mut client), "cGEgc3M=\r\n");
    assert_eq!(
        server_says(&mut client, "235 2.7.0 Authentication successful\r\n"),
        vec![ClientEvent::Ready]
    );

    let mut client = ready("250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n");
    assert!(client.authenticate("user", "bad"));
    assert_eq!(written(&mut client), "AUTH PLAIN AHVzZXIAYmFk\r\n");
    let events = server_says(
        &mut client,
        "535 5.7.8 Authentication credentials invalid\r\n",
    );
    assert!(matches!(&events[0], ClientEvent::Failed(ClientFailure::Auth(r)) if r.code == 535));

    let mut client = ready("250-mx.test\r\n250 AUTH CRAM-MD5\r\n");
    assert!(!client.authenticate("user", "x"), "no mechanism we speak");
    assert_eq!(written(&mut client), "");
}
