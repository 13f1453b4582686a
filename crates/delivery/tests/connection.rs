//! The delivery connection against real receiving servers: our own SMTP server in-process
//! (real TCP and TLS), Postfix's smtp-sink, and scripted TCP peers for the failure cases.

use std::net::SocketAddr;
use std::time::Duration;

use delivery::{ClientTimeouts, Connection, ConnectionError, Destination, TlsClients, TlsPolicy};
use smtp_server::cidr::Cidr;
use smtp_server::{ConnectionLimits, ServerConfig, Timeouts};
use smtp_wire::client::{Outbound, OutboundRecipient, Stage};
use spool::{Spool, SpoolConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

struct Receiver {
    addr: SocketAddr,
    spool: Spool,
    _dir: tempfile::TempDir,
}

/// Our own SMTP server as the receiving MX, on a free port.
async fn receiver(tls: bool, recipients_max: usize, relay: &str) -> Receiver {
    let dir = tempfile::tempdir().expect("tempdir");
    let (spool, _) = Spool::open(&SpoolConfig {
        dir: dir.path().join("spool"),
        segment_bytes_max: 1 << 20,
        batch_bytes_max: 1 << 20,
    })
    .expect("spool");
    let config = ServerConfig {
        listen: vec!["127.0.0.1:0".parse().expect("addr")],
        listen_tls: vec![],
        hostname: "mx.receiver.test".into(),
        message_bytes_max: 1 << 20,
        recipients_max,
        command_line_bytes_max: 4096,
        bad_commands_max: 100,
        auth_plaintext_allowed: false,
        relay_networks: vec![relay.parse::<Cidr>().expect("cidr")],
        proxy_protocol_from: Vec::new(),
        limits: ConnectionLimits {
            connections_max: 100,
            connections_per_ip_max: 100,
            connection_rate_per_ip_max: 10_000,
            rate_interval: Duration::from_secs(60),
            exempt_networks: Vec::new(),
        },
        timeouts: Timeouts {
            greeting_delay: Duration::ZERO,
            command: Duration::from_secs(30),
            data_idle: Duration::from_secs(30),
            data_rate_bytes_per_sec_min: 1,
            data_grace: Duration::from_secs(30),
            tls_handshake: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(1),
        },
    };
    let tls = tls.then(|| {
        smtp_server::tls::server_config(
            &smtp_server::tls::TlsSource::SelfSigned {
                dir: dir.path().join("tls"),
            },
            "mx.receiver.test",
        )
        .expect("tls")
    });
    let server =
        smtp_server::Server::bind(config, spool.clone(), tls, dir.path().join("users"), None)
            .expect("bind");
    let addr = server.local_addrs()[0];
    tokio::spawn(server.run(std::future::pending()));
    Receiver {
        addr,
        spool,
        _dir: dir,
    }
}

fn destination(addr: SocketAddr, tls: TlsPolicy) -> Destination {
    Destination {
        addr,
        host_name: "mx.receiver.test".into(),
        tls,
        auth: None,
    }
}

fn message(rcpts: &[&str]) -> Outbound {
    Outbound {
        sender: "bounce@sender.test".into(),
        recipients: rcpts
            .iter()
            .map(|a| OutboundRecipient {
                address: a.to_string(),
                notify: None,
                orcpt: None,
            })
            .collect(),
        dsn_ret: None,
        dsn_envid: None,
        body_8bit: false,
        smtputf8: false,
        content_canonical: false,
    }
}

fn quick() -> ClientTimeouts {
    let s = Duration::from_millis(700);
    ClientTimeouts {
        connect: s,
        banner: s,
        command: s,
        tls_handshake: s,
        mail: s,
        rcpt: s,
        data: s,
        data_block: s,
        data_dot: s,
    }
}

/// Opens a connection with short timeouts, as every test but the first does.
async fn open(addr: SocketAddr, policy: TlsPolicy) -> Result<Connection, ConnectionError> {
    Connection::open(
        &destination(addr, policy),
        "out.test",
        quick(),
        &TlsClients::new(),
    )
    .await
}

#[tokio::test]
async fn opportunistic_tls_and_connection_reuse() {
    let rx = receiver(true, 100, "127.0.0.0/8").await;
    let tls = TlsClients::new();
    let mut conn = Connection::open(
        &destination(rx.addr, TlsPolicy::Opportunistic),
        "out.test",
        ClientTimeouts::default(),
        &tls,
    )
    .await
    .expect("connect");
    assert_eq!(conn.tls_version.as_deref(), Some("TLSv1_3"));
    for n in 0..3 {
        let content =
            format!("Subject: {n}\r\nMessage-ID: <{n}@t>\r\n\r\n.leading dot\nbare lf line\r\n")
                .into_bytes();
        let outcome = conn
            .deliver(&message(&["a@example.com", "b@example.net"]), &content)
            .await
            .expect("deliver");
        assert!(outcome.any_delivered);
        assert!(
            outcome.recipients.iter().all(|r| r.code == 250),
            "{outcome:?}"
        );
    }
    assert_eq!(conn.messages_sent, 3);
    conn.quit().await;
    let queued = rx.spool.list(None, 10);
    assert_eq!(queued.len(), 3);
    let (envelope, content, _) = rx.spool.read(queued[0].id).expect("read");
    assert_eq!(envelope.recipients.len(), 2);
    assert!(
        content.ends_with(b"\r\n\r\n.leading dot\r\nbare lf line\r\n"),
        "{}",
        String::from_utf8_lossy(&content)
    );
    let stored = String::from_utf8_lossy(&content).into_owned();
    assert!(
        stored.contains("with ESMTPS"),
        "delivered over TLS: {stored}"
    );
}

#[tokio::test]
async fn per_recipient_outcomes_from_a_real_server() {
    // The receiver takes at most 2 recipients per transaction: the third gets 452 4.5.3.
    let rx = receiver(false, 2, "127.0.0.0/8").await;
    let mut conn = open(rx.addr, TlsPolicy::Opportunistic)
        .await
        .expect("connect");
    let outcome = conn
        .deliver(&message(&["a@x.test", "b@x.test", "c@x.test"]), b"hi\r\n")
        .await
        .expect("deliver");
    let codes: Vec<u16> = outcome.recipients.iter().map(|r| r.code).collect();
    assert_eq!(codes, vec![250, 250, 452]);
    assert_eq!(outcome.recipients[2].status, Some((4, 5, 3)));

    // Refused relaying: every RCPT 550 5.7.1, the transaction is reset, the connection reusable.
    let rx = receiver(false, 100, "10.0.0.0/8").await;
    let mut conn = open(rx.addr, TlsPolicy::Disabled).await.expect("connect");
    let outcome = conn
        .deliver(&message(&["a@x.test", "b@x.test"]), b"hi\r\n")
        .await
        .expect("deliver");
    assert!(!outcome.any_delivered);
    assert!(
        outcome
            .recipients
            .iter()
            .all(|r| r.code == 550 && r.status == Some((5, 7, 1)))
    );
    let again = conn
        .deliver(&message(&["a@x.test"]), b"hi\r\n")
        .await
        .expect("connection still usable");
    assert_eq!(again.recipients[0].code, 550);
}

#[tokio::test]
async fn tls_policies_required_and_verify() {
    let plain = receiver(false, 100, "127.0.0.0/8").await;
    let err = open(plain.addr, TlsPolicy::Required)
        .await
        .err()
        .expect("must fail");
    assert!(
        matches!(&err, ConnectionError::Tls(m) if m.contains("not offered")),
        "{err}"
    );

    let self_signed = receiver(true, 100, "127.0.0.0/8").await;
    let err = open(self_signed.addr, TlsPolicy::Verify)
        .await
        .err()
        .expect("self-signed certificate must not verify");
    assert!(
        matches!(&err, ConnectionError::Tls(m) if m.contains("handshake failed")),
        "{err}"
    );
    let conn = open(self_signed.addr, TlsPolicy::Required)
        .await
        .expect("required without verification accepts a self-signed certificate");
    assert!(conn.tls_version.is_some());
}

/// A TCP peer that plays a fixed script: for each line it reads, the next canned reply.
async fn scripted(greeting: Option<&'static str>, replies: &'static [&'static str]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (read, mut write) = stream.into_split();
        if let Some(greeting) = greeting {
            let _ = write.write_all(greeting.as_bytes()).await;
        }
        let mut lines = BufReader::new(read).lines();
        let mut replies = replies.iter();
        while let Ok(Some(_)) = lines.next_line().await {
            match replies.next() {
                Some(reply) if !reply.is_empty() => {
                    let _ = write.write_all(reply.as_bytes()).await;
                }
                Some(_) => {}
                None => break,
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    addr
}

#[tokio::test]
async fn refusal_at_connect_and_stage_timeouts() {
    let busy = scripted(Some("421 4.7.0 Too busy, try later\r\n"), &[]).await;
    let err = open(busy, TlsPolicy::Opportunistic).await.err();
    assert!(
        matches!(&err, Some(ConnectionError::Refused(r)) if r.code == 421),
        "{err:?}"
    );

    let silent = scripted(None, &[]).await;
    let err = open(silent, TlsPolicy::Opportunistic).await.err();
    assert!(
        matches!(err, Some(ConnectionError::Timeout(Stage::Banner))),
        "{err:?}"
    );

    // Accepts everything, then never answers the final dot: lines are EHLO, MAIL, RCPT, DATA,
    // then the content line and the dot (no replies).
    let stalls = scripted(
        Some("220 ok\r\n"),
        &[
            "250 ok\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "354 go\r\n",
            "",
            "",
            "",
        ],
    )
    .await;
    let mut conn = open(stalls, TlsPolicy::Opportunistic)
        .await
        .expect("connect");
    let err = conn.deliver(&message(&["a@x.test"]), b"x\r\n").await.err();
    assert!(
        matches!(err, Some(ConnectionError::Timeout(Stage::DataDot))),
        "{err:?}"
    );

    let refused = "127.0.0.1:1".parse().expect("addr");
    let err = open(refused, TlsPolicy::Opportunistic).await.err();
    assert!(
        matches!(err, Some(ConnectionError::Connect { .. })),
        "{err:?}"
    );
}

/// Postfix's smtp-sink (Debian package postfix) as the receiving server.
#[tokio::test]
async fn pipelined_delivery_to_postfix_smtp_sink() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let mut args = vec![];
    // SAFETY: geteuid has no preconditions. smtp-sink refuses to run as root without -u.
    if unsafe { libc::geteuid() } == 0 {
        args.extend(["-u", "nobody"]);
    }
    let listen = format!("127.0.0.1:{port}");
    args.extend([listen.as_str(), "64"]);
    let sink = std::process::Command::new("/usr/sbin/smtp-sink")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("smtp-sink from Debian's postfix package (scripts/test installs it)");
    // Killed even when an assertion below fails, so no sink outlives the test.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _sink = KillOnDrop(sink);
    let addr: SocketAddr = listen.parse().expect("addr");
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut conn = open(addr, TlsPolicy::Opportunistic)
        .await
        .expect("connect to smtp-sink");
    assert!(
        conn.capabilities().pipelining,
        "smtp-sink offers PIPELINING"
    );
    for _ in 0..5 {
        let outcome = conn
            .deliver(
                &message(&["a@x.test", "b@y.test"]),
                b"Subject: sink\r\n\r\nbody\r\n",
            )
            .await
            .expect("deliver");
        assert_eq!(
            outcome
                .recipients
                .iter()
                .map(|r| r.code)
                .collect::<Vec<_>>(),
            vec![250, 250]
        );
    }
    conn.quit().await;
}

/// A smarthost that wants AUTH: our own server with relaying only for authenticated users.
#[tokio::test]
async fn smarthost_auth_over_starttls_and_refusals() {
    // 127.0.0.2/32 is trusted; we connect from 127.0.0.1, so relaying needs AUTH.
    let smarthost = receiver(true, 100, "127.0.0.2/32").await;
    let users = smarthost._dir.path().join("users");
    tokio::task::spawn_blocking(move || {
        smtp_server::users::add(&users, "relay-user", "s3cret pass")
    })
    .await
    .expect("join")
    .expect("add user");
    // Password hashing (argon2) in a debug build takes longer than quick() allows.
    let patient = ClientTimeouts {
        command: Duration::from_secs(30),
        ..quick()
    };
    let with_auth = |password: &str, tls: TlsPolicy| Destination {
        auth: Some(delivery::Credentials {
            user: "relay-user".into(),
            password: password.into(),
        }),
        ..destination(smarthost.addr, tls)
    };

    let mut conn = Connection::open(
        &with_auth("s3cret pass", TlsPolicy::Required),
        "out.test",
        patient,
        &TlsClients::new(),
    )
    .await
    .expect("authenticated");
    let outcome = conn
        .deliver(
            &message(&["far@away.test"]),
            b"Subject: relayed\r\n\r\nhi\r\n",
        )
        .await
        .expect("deliver");
    assert_eq!(outcome.recipients[0].code, 250);
    conn.quit().await;
    let queued = smarthost.spool.list(None, 10);
    let (envelope, _, _) = smarthost.spool.read(queued[0].id).expect("read");
    assert_eq!(envelope.auth_user.as_deref(), Some("relay-user"));

    match Connection::open(
        &with_auth("wrong", TlsPolicy::Required),
        "out.test",
        patient,
        &TlsClients::new(),
    )
    .await
    {
        Err(ConnectionError::Auth(reply)) => assert_eq!(reply.code, 535, "{reply:?}"),
        other => panic!("expected an AUTH refusal, got {:?}", other.err()),
    }
    // Credentials never go out in clear text.
    match Connection::open(
        &with_auth("s3cret pass", TlsPolicy::Disabled),
        "out.test",
        patient,
        &TlsClients::new(),
    )
    .await
    {
        Err(ConnectionError::Tls(why)) => assert!(why.contains("only sent under TLS"), "{why}"),
        other => panic!(
            "expected a refusal to authenticate in clear, got {:?}",
            other.err()
        ),
    }
    assert!(!format!("{:?}", with_auth("s3cret pass", TlsPolicy::Required)).contains("s3cret"));
}
