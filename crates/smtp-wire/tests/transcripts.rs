//! Session transcripts: bytes in, replies out, no sockets. Each test drives a [`Session`]
//! with what a client would send and checks the exact replies and events.

use std::sync::Arc;

use smtp_wire::{Event, PeerContext, Reply, Session, SessionConfig, Transaction};

fn config() -> Arc<SessionConfig> {
    Arc::new(SessionConfig {
        hostname: "mx.test".into(),
        message_bytes_max: 1000,
        recipients_max: 3,
        command_line_bytes_max: 512,
        bad_commands_max: 5,
        starttls_available: true,
        auth_plaintext_allowed: false,
        recipient_checks: false,
        local_checks: false,
    })
}

const TRUSTED: PeerContext = PeerContext {
    relay_trusted: true,
    tls_active: false,
};
const UNTRUSTED: PeerContext = PeerContext {
    relay_trusted: false,
    tls_active: false,
};

/// Drives a session: feeds `input`, answers every Submit with a 250 carrying a counter,
/// returns (all output, transactions, closed?).
struct Driver {
    session: Session,
    out: String,
    spooled: Vec<Transaction>,
    closed: bool,
    tls_started: bool,
}

impl Driver {
    fn new(peer: PeerContext) -> Self {
        let mut session = Session::new(config(), peer);
        let out = String::from_utf8(session.output().to_vec()).expect("utf8");
        session.clear_output();
        Driver {
            session,
            out: String::new(),
            spooled: Vec::new(),
            closed: false,
            tls_started: false,
        }
        .with_greeting(out)
    }

    fn with_greeting(mut self, greeting: String) -> Self {
        assert_eq!(greeting, "220 mx.test ESMTP tsubame\r\n");
        self.out.clear();
        self
    }

    fn send(&mut self, input: &[u8]) -> String {
        self.session.feed(input);
        loop {
            let event = self.session.advance();
            match event {
                Event::NeedInput => break,
                Event::Submit(txn) => {
                    self.spooled.push(txn);
                    let id = self.spooled.len();
                    self.session.complete_submission(Reply::new(
                        250,
                        (2, 0, 0),
                        format!("queued as {id}"),
                    ));
                }
                Event::Authenticate(creds) => {
                    let ok = creds.username == "alice" && creds.password == "pw";
                    self.session
                        .complete_auth(ok.then(|| creds.username.clone()));
                }
                Event::CheckRecipient(_) => {
                    unreachable!("recipient checks are off in this config")
                }
                Event::CheckLocal(_) => {
                    unreachable!("local checks are off in this config")
                }
                Event::StartTls => {
                    self.tls_started = true;
                    break;
                }
                Event::Close => {
                    self.closed = true;
                    break;
                }
            }
        }
        let out = String::from_utf8(self.session.output().to_vec()).expect("utf8 replies");
        self.session.clear_output();
        self.out.push_str(&out);
        out
    }
}

fn codes(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.as_bytes().get(3) == Some(&b' '))
        .map(|l| l[..3].to_string())
        .collect()
}

#[test]
fn pipelined_transaction_in_one_packet() {
    let mut d = Driver::new(TRUSTED);
    d.send(b"EHLO client\r\n");
    let out =
        d.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n");
    assert_eq!(codes(&out), ["250", "250", "250", "354"]);
    let out = d.send(b"Subject: hi\r\n\r\nbody\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<d@z.test>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n");
    assert_eq!(codes(&out), ["250", "250", "250", "354", "250", "221"]);
    assert!(d.closed);
    assert_eq!(d.spooled.len(), 2);
    assert_eq!(d.spooled[0].content, b"Subject: hi\r\n\r\nbody\r\n");
    assert_eq!(d.spooled[0].recipients.len(), 2);
    assert_eq!(d.spooled[1].sender.address, "");
    assert_eq!(d.spooled[1].content, b"x\r\n");
}

#[test]
fn ehlo_advertises_extensions() {
    let mut d = Driver::new(TRUSTED);
    let out = d.send(b"EHLO client\r\n");
    for ext in [
        "PIPELINING",
        "SIZE 1000",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "DSN",
        "STARTTLS",
    ] {
        assert!(
            out.contains(&format!("250-{ext}\r\n")),
            "{ext} missing in {out}"
        );
    }
    assert!(
        !out.contains("AUTH"),
        "AUTH must not be offered before TLS: {out}"
    );
}

#[test]
fn untrusted_client_cannot_relay() {
    let mut d = Driver::new(UNTRUSTED);
    d.send(b"EHLO client\r\nMAIL FROM:<a@x.test>\r\n");
    let out = d.send(b"RCPT TO:<b@y.test>\r\n");
    assert_eq!(
        out,
        "550 5.7.1 Relaying denied: authentication required\r\n"
    );
    let out = d.send(b"DATA\r\n");
    assert!(out.starts_with("554 5.5.1"));
    assert!(d.spooled.is_empty());
}

#[test]
fn auth_requires_tls_then_allows_relay() {
    let mut d = Driver::new(UNTRUSTED);
    d.send(b"EHLO client\r\n");
    assert!(
        d.send(b"AUTH PLAIN AGFsaWNlAHB3\r\n")
            .starts_with("538 5.7.11")
    );
    d.send(b"STARTTLS\r\n");
    assert!(d.tls_started);
    let out = d.send(b"EHLO client\r\n");
    assert!(out.contains("250-AUTH PLAIN LOGIN\r\n"));
    assert!(!out.contains("STARTTLS"));
    // "\0alice\0wrong"
    assert!(
        d.send(b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n")
            .starts_with("535 5.7.8")
    );
    assert!(
        d.send(b"AUTH PLAIN AGFsaWNlAHB3\r\n")
            .starts_with("235 2.7.0")
    );
    d.send(b"MAIL FROM:<alice@x.test>\r\n");
    assert!(d.send(b"RCPT TO:<b@y.test>\r\n").starts_with("250 2.1.5"));
    d.send(b"DATA\r\nhello\r\n.\r\n");
    assert_eq!(d.spooled.len(), 1);
    assert_eq!(d.spooled[0].auth_user.as_deref(), Some("alice"));
    assert_eq!(d.spooled[0].protocol(), "ESMTPSA");
}

#[test]
fn auth_login_two_steps() {
    let mut d = Driver::new(PeerContext {
        relay_trusted: false,
        tls_active: true,
    });
    d.send(b"EHLO c\r\n");
    assert_eq!(d.send(b"AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(d.send(b"YWxpY2U=\r\n"), "334 UGFzc3dvcmQ6\r\n");
    assert!(d.send(b"cHc=\r\n").starts_with("235"));
}

#[test]
fn plaintext_pipelined_after_starttls_is_discarded() {
    let mut d = Driver::new(UNTRUSTED);
    d.send(b"EHLO client\r\n");
    let out = d.send(b"STARTTLS\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<v@y.test>\r\n");
    assert_eq!(out, "220 2.0.0 Ready to start TLS\r\n");
    assert!(d.tls_started);
    assert_eq!(
        d.session.discarded_at_starttls(),
        "MAIL FROM:<evil@x.test>\r\nRCPT TO:<v@y.test>\r\n".len()
    );
    // After the handshake the injected MAIL is gone: RCPT needs a MAIL first.
    assert!(
        d.send(b"EHLO c\r\nRCPT TO:<v@y.test>\r\n")
            .contains("503 5.5.1")
    );
}

#[test]
fn smuggling_attacks_never_split_a_message() {
    let attacks: [&[u8]; 6] = [
        b"\n.\r\n", b"\r.\r\n", b"\n.\n", b"\r\n.\n", b"\n.\r", b"\r\n.\r",
    ];
    for attack in attacks {
        let mut d = Driver::new(TRUSTED);
        d.send(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n");
        let mut payload = b"first part".to_vec();
        payload.extend_from_slice(attack);
        payload.extend_from_slice(
            b"MAIL FROM:<smuggled@x.test>\r\nRCPT TO:<victim@y.test>\r\nDATA\r\nsmuggled\r\n.\r\n",
        );
        let out = d.send(&payload);
        assert_eq!(codes(&out), ["550"], "attack {attack:?}: {out}");
        assert!(d.spooled.is_empty(), "attack {attack:?} produced a message");
    }
}

#[test]
fn mixed_bare_endings_in_body_rejected() {
    let mut d = Driver::new(TRUSTED);
    d.send(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n");
    let out = d.send(b"line1\r\nline2\nline3\r\n.\r\nNOOP\r\n");
    assert_eq!(codes(&out), ["550", "250"]);
    assert!(d.spooled.is_empty());
}

/// A NUL anywhere in the content (a header, the body, split across reads, in a BDAT chunk)
/// refuses the whole message with 550 5.6.0; the session carries on.
#[test]
fn nul_bytes_refuse_the_message() {
    let mut d = Driver::new(TRUSTED);
    d.send(b"EHLO c\r\n");
    let payloads: [&[&[u8]]; 4] = [
        &[b"Subject: a\0b\r\n\r\nbody\r\n.\r\n"],
        &[b"Subject: s\r\n\r\nbo\0dy\r\n.\r\n"],
        &[b"Subject: s\r\n\r\nbody", b"\0", b"\r\n.\r\n"],
        &[b"\0\r\n.\r\n"],
    ];
    for parts in payloads {
        d.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n");
        let mut out = String::new();
        for part in parts {
            out.push_str(&d.send(part));
        }
        assert!(
            out.starts_with("550 5.6.0 Message contains NUL characters"),
            "{parts:?}: {out}"
        );
    }
    let out = d.send(
        b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT 6\r\nab\0\r\ncBDAT 3 LAST\r\nd\r\n",
    );
    assert_eq!(codes(&out), ["250", "250", "550", "550"], "{out}");
    assert!(
        out.contains("550 5.6.0 Message contains NUL characters"),
        "{out}"
    );
    assert!(d.spooled.is_empty());
    let out = d.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nclean\r\n.\r\n");
    assert_eq!(codes(&out), ["250", "250", "354", "250"], "{out}");
    assert_eq!(d.spooled.len(), 1);
}

#[test]
fn recipient_limit() {
    let mut d = Driver::new(TRUSTED);
    d.send(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\n");
    let out = d.send(
        b"RCPT TO:<1@y.test>\r\nRCPT TO:<2@y.test>\r\nRCPT TO:<3@y.test>\r\nRCPT TO:<4@y.test>\r\n",
    );
    assert_eq!(codes(&out), ["250", "250", "250", "452"]);
    assert!(out.contains("452 4.5.3 Too many recipients"));
}

#[test]
fn size_declared_and_actual() {
    let mut d = Driver::new(TRUSTED);
    d.send(b"EHLO c\r\n");
    assert!(
        d.send(b"MAIL FROM:<a@x.test> SIZE=1001\r\n")
            .starts_with("552 5.3.4")
    );
    d.send(b"MAIL FROM:<a@x.test> SIZE=10\r\nRCPT TO:<b@y.test>\r\nDATA\r\n");
    let big = format!("{}\r\n.\r\n", "x".repeat(1200));
    assert!(d.send(big.as_bytes()).starts_with("552 5.3.4"));
    assert!(d.spooled.is_empty());
}

#[test]
fn line_length_limit() {
    let mut d = Driver::new(TRUSTED);
    let long = format!("NOOP {}\r\nNOOP\r\n", "x".repeat(600));
    let out = d.send(long.as_bytes());
    assert_eq!(codes(&out), ["500", "250"]);
    // An over-long line arriving in pieces is skipped once, not reported per piece.
    let out = d.send(&[b'y'; 700]);
    assert_eq!(codes(&out), ["500"]);
    let out = d.send(b"yyy\r\nNOOP\r\n");
    assert_eq!(codes(&out), ["250"]);
}

#[test]
fn too_many_bad_commands_closes() {
    let mut d = Driver::new(TRUSTED);
    d.send(b"FOO\r\nBAR\r\nBAZ\r\nQUX\r\nQUUX\r\nNOOP\r\n");
    assert!(d.closed);
    assert!(
        d.out
            .ends_with("421 4.7.0 Too many errors, closing connection\r\n"),
        "{}",
        d.out
    );
    assert!(
        !d.out.contains("250 2.0.0 OK"),
        "commands after the limit must not run"
    );
}

#[test]
fn bdat_chunks() {
    let mut d = Driver::new(TRUSTED);
    d.send(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n");
    let out = d.send(b"BDAT 8\r\nab\r\ncd\r\nBDAT 4 LAST\r\nef\r\n");
    assert_eq!(codes(&out), ["250", "250"]);
    assert_eq!(d.spooled[0].content, b"ab\r\ncd\r\nef\r\n");
    // A chunk without a transaction is still consumed, so its bytes are never commands.
    let out = d.send(b"BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n");
    assert_eq!(codes(&out), ["503", "250"]);
    assert!(!d.closed);
}

#[test]
fn dsn_parameters_kept() {
    let mut d = Driver::new(TRUSTED);
    d.send(b"EHLO c\r\nMAIL FROM:<a@x.test> RET=HDRS ENVID=abc+2B1\r\n");
    d.send(b"RCPT TO:<b@y.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b@y.test\r\nDATA\r\nx\r\n.\r\n");
    let txn = &d.spooled[0];
    assert_eq!(txn.sender.ret, Some(smtp_wire::DsnRet::Headers));
    assert_eq!(txn.sender.envid.as_deref(), Some("abc+1"));
    assert_eq!(
        txn.recipients[0].notify.0,
        smtp_wire::Notify::FAILURE | smtp_wire::Notify::DELAY
    );
    assert_eq!(txn.recipients[0].orcpt.as_deref(), Some("rfc822;b@y.test"));
}

#[test]
fn smtputf8_addresses() {
    let mut d = Driver::new(TRUSTED);
    d.send(b"EHLO c\r\n");
    assert!(
        d.send("MAIL FROM:<送信@例え.jp>\r\n".as_bytes())
            .starts_with("553 5.6.7")
    );
    assert!(
        d.send("MAIL FROM:<送信@例え.jp> SMTPUTF8\r\n".as_bytes())
            .starts_with("250")
    );
    assert!(
        d.send("RCPT TO:<受信@例え.jp>\r\n".as_bytes())
            .starts_with("250")
    );
}

#[test]
fn sequence_errors_and_misc() {
    let mut d = Driver::new(TRUSTED);
    assert!(d.send(b"MAIL FROM:<a@x.test>\r\n").starts_with("503 5.5.1"));
    assert!(d.send(b"VRFY bob\r\n").starts_with("252 2.5.0"));
    assert!(d.send(b"HELP\r\n").starts_with("214"));
    assert!(
        d.send(b"HELO c\r\n")
            .starts_with("250 2.0.0 mx.test Hello c")
    );
    assert!(d.send(b"NOOP\r\n").starts_with("250"));
    assert!(d.send(b"RSET\r\n").starts_with("250"));
}

/// With recipient checks on, every valid RCPT waits for the driver; pipelined commands after
/// it are only processed once it has answered, and a refusal is not a protocol error.
#[test]
fn recipient_checks_hand_each_recipient_to_the_driver_in_order() {
    let mut config = (*config()).clone();
    config.recipient_checks = true;
    config.bad_commands_max = 1;
    let mut session = Session::new(Arc::new(config), TRUSTED);
    session.clear_output();
    session.feed(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<ok@y.test>\r\nRCPT TO:<gone@y.test>\r\nRCPT TO:<later@y.test>\r\nDATA\r\nhello\r\n.\r\n");
    let mut asked = Vec::new();
    let mut submitted = None;
    loop {
        match session.advance() {
            Event::CheckRecipient(address) => {
                asked.push(address.clone());
                let refusal = address
                    .starts_with("gone")
                    .then(|| Reply::new(550, (5, 1, 1), "no such user"));
                session.complete_recipient(refusal);
            }
            Event::Submit(txn) => {
                submitted = Some(txn);
                session.complete_submission(Reply::new(250, (2, 0, 0), "queued"));
            }
            Event::NeedInput => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(asked, ["ok@y.test", "gone@y.test", "later@y.test"]);
    let out = String::from_utf8(session.output().to_vec()).expect("utf8");
    assert_eq!(
        codes(&out),
        ["250", "250", "250", "550", "250", "354", "250"],
        "{out}"
    );
    assert!(out.contains("550 5.1.1 no such user\r\n"));
    let txn = submitted.expect("submitted");
    let rcpts: Vec<_> = txn.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(rcpts, ["ok@y.test", "later@y.test"]);
}

/// With local checks on, a client that may not relay can still reach the addresses the
/// driver calls local (bounce addresses); anything else is refused as relaying, as without.
#[test]
fn local_checks_let_untrusted_clients_reach_local_addresses_only() {
    let mut config = (*config()).clone();
    config.local_checks = true;
    let mut session = Session::new(Arc::new(config), UNTRUSTED);
    session.clear_output();
    session.feed(b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bounces+1.ab@bounce.acme.test>\r\nRCPT TO:<victim@elsewhere.test>\r\nDATA\r\nreport\r\n.\r\n");
    let mut asked = Vec::new();
    let mut submitted = None;
    loop {
        match session.advance() {
            Event::CheckLocal(address) => {
                let local = address.starts_with("bounces+");
                asked.push(address);
                session.complete_local(local);
            }
            Event::Submit(txn) => {
                submitted = Some(txn);
                session.complete_submission(Reply::new(250, (2, 0, 0), "taken"));
            }
            Event::NeedInput => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        asked,
        ["bounces+1.ab@bounce.acme.test", "victim@elsewhere.test"]
    );
    let out = String::from_utf8(session.output().to_vec()).expect("utf8");
    assert_eq!(
        codes(&out),
        ["250", "250", "250", "550", "354", "250"],
        "{out}"
    );
    assert!(out.contains("550 5.7.1 Relaying denied"), "{out}");
    let txn = submitted.expect("submitted");
    let rcpts: Vec<_> = txn.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(rcpts, ["bounces+1.ab@bounce.acme.test"]);
}

/// When the driver cannot check credentials, the client hears 454 4.7.0 (try later), not
/// 535, and may try again in the same session.
#[test]
fn auth_that_cannot_be_checked_is_a_temporary_failure() {
    let under_tls = PeerContext {
        relay_trusted: false,
        tls_active: true,
    };
    let mut session = Session::new(config(), under_tls);
    session.clear_output();
    session.feed(b"EHLO c\r\nAUTH PLAIN AGFsaWNlAHB3\r\n");
    let mut asked = 0;
    loop {
        match session.advance() {
            Event::Authenticate(_) => {
                asked += 1;
                if asked == 1 {
                    session.complete_auth_unavailable();
                } else {
                    session.complete_auth(Some("alice".into()));
                }
            }
            Event::NeedInput => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let out = String::from_utf8(session.output().to_vec()).expect("utf8");
    assert!(
        out.contains("454 4.7.0 Temporary authentication failure"),
        "{out}"
    );
    session.clear_output();
    session.feed(b"AUTH PLAIN AGFsaWNlAHB3\r\n");
    while let Event::Authenticate(_) = session.advance() {
        asked += 1;
        session.complete_auth(Some("alice".into()));
    }
    let out = String::from_utf8(session.output().to_vec()).expect("utf8");
    assert!(out.starts_with("235 2.7.0"), "{out}");
    assert_eq!(asked, 2);
}

/// RFC 5321 §4.1.1.3 requires `RCPT TO:<Postmaster>` without a domain to be accepted, and
/// §4.1.3 allows address literals; neither is bad syntax (relay rules still apply).
#[test]
fn postmaster_and_address_literals_are_valid_recipients() {
    let mut d = Driver::new(TRUSTED);
    d.send(b"EHLO c\r\nMAIL FROM:<a@b.test>\r\n");
    for rcpt in [
        "<postmaster>",
        "<Postmaster>",
        "<user@[192.0.2.1]>",
        "<user@[IPv6:2001:db8::1]>",
    ] {
        let out = d.send(format!("RCPT TO:{rcpt}\r\n").as_bytes());
        assert!(out.starts_with("250 2.1.5"), "{rcpt}: {out}");
        d.send(b"RSET\r\nMAIL FROM:<a@b.test>\r\n");
    }
    d.send(b"RSET\r\nMAIL FROM:<user@[192.0.2.1]>\r\nRCPT TO:<Postmaster>\r\n");
    d.send(b"RCPT TO:<x@[IPv6:::1]>\r\nDATA\r\nhi\r\n.\r\n");
    let txn = d.spooled.last().expect("spooled");
    assert_eq!(txn.sender.address, "user@[192.0.2.1]");
    let rcpts: Vec<&str> = txn.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(rcpts, ["postmaster@mx.test", "x@[IPv6:::1]"]);
    for bad in [
        "<user@[192.0.2.1>",
        "<user@[not an address]>",
        "<postmaster2>",
    ] {
        d.send(b"RSET\r\nMAIL FROM:<a@b.test>\r\n");
        let out = d.send(format!("RCPT TO:{bad}\r\n").as_bytes());
        assert!(out.starts_with("501"), "{bad}: {out}");
    }
}

/// Relay rules apply to the valid forms as to any address: a client that may not relay
/// gets 550 5.7.1, not a syntax error.
#[test]
fn postmaster_and_literals_from_untrusted_clients_are_relay_denied() {
    let mut d = Driver::new(UNTRUSTED);
    d.send(b"EHLO c\r\nMAIL FROM:<a@b.test>\r\n");
    for rcpt in ["<postmaster>", "<user@[192.0.2.1]>"] {
        let out = d.send(format!("RCPT TO:{rcpt}\r\n").as_bytes());
        assert!(out.starts_with("550 5.7.1"), "{rcpt}: {out}");
    }
}
