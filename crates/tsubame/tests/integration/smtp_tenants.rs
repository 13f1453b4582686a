//! Tenants on SMTP: an application logs in with its API key (SendGrid's and Mailjet's
//! forms), its mail is DKIM-signed like API mail, foreign domains are refused, and one daily
//! quota counts API and SMTP mail together.

use serde_json::{Value, json};

use crate::api::{delivered, post, relaying_to_sink_with};
use crate::harness::{TestServer, python_json};

fn send(server: &TestServer, user: &str, password: &str, messages: Value) -> Value {
    let port = server.smtp.port().to_string();
    python_json(
        "smtp_tenant.py",
        &["127.0.0.1", &port, user, password, &messages.to_string()],
    )
}

fn message(mail_from: &str, from: &str, to: &str) -> Value {
    json!({ "mail_from": mail_from, "from": from, "to": to, "subject": "Over SMTP" })
}

#[test]
fn a_tenant_sends_over_smtp_signed_checked_and_within_its_quota() {
    let capture = tempfile::tempdir().expect("tempdir");
    // 127.0.0.2 only: the test client on 127.0.0.1 must log in to relay.
    let (sink, server) =
        relaying_to_sink_with(capture.path(), "relay_networks = [\"127.0.0.2/32\"]");
    server.cli(&["tenant", "add", "acme", "--daily-quota", "4"]);
    let out = server.cli(&[
        "domain",
        "add",
        "acme.test",
        "--tenant",
        "acme",
        "--algorithm",
        "ed25519",
        "--selector",
        "sel1",
    ]);
    let record = out
        .lines()
        .find_map(|l| l.strip_prefix("sel1._domainkey.acme.test TXT "))
        .expect("DKIM record printed")
        .trim_matches('"')
        .to_string();
    let token = server.cli(&["key", "add", "--tenant", "acme"]);
    let token = token.trim();
    let read_only = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "read"]);

    // Wrong secret, and a key that may not send: 535 like any failed login.
    let wrong = format!("{}x", &token[..token.len() - 1]);
    assert_eq!(send(&server, "apikey", &wrong, json!([]))["login"], 535);
    assert_eq!(
        send(&server, "apikey", read_only.trim(), json!([]))["login"],
        535
    );

    // SendGrid's form: user `apikey`, the key as password.
    let sent = send(
        &server,
        "apikey",
        token,
        json!([
            message("bounces@acme.test", "news@acme.test", "ann@x.test"),
            message("bounces@acme.test", "news@other.test", "bob@x.test"),
            message("bounces@other.test", "news@acme.test", "cy@x.test"),
        ]),
    );
    assert_eq!(sent["login"], 235, "{sent}");
    assert_eq!(sent["sent"][0]["code"], 250, "{sent}");
    assert_eq!(sent["sent"][1]["code"], 550, "{sent}");
    assert!(
        sent["sent"][1]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("5.7.1 From address rejected: other.test")),
        "{sent}"
    );
    assert_eq!(sent["sent"][2]["code"], 550, "{sent}");
    assert!(
        sent["sent"][2]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("5.7.1 Sender address rejected: other.test")),
        "{sent}"
    );

    // Mailjet's form: the key's public part as user, the rest as password.
    let (public, secret) = token.rsplit_once('_').expect("tsb_<id>_<secret>");
    let sent = send(
        &server,
        public,
        secret,
        json!([message("", "news@acme.test", "dee@x.test")]),
    );
    assert_eq!(sent["sent"][0]["code"], 250, "{sent}");

    // The API and SMTP share one daily quota of 4: two by SMTP, one by API, one by SMTP,
    // then the fifth is deferred with 451 4.7.1.
    let api = post(
        &server,
        token,
        r#"{"messages":[{"from":"news@acme.test","to":["eve@x.test"],"text":"API"}]}"#,
    );
    assert_eq!(api["status"], 200, "{api}");
    let sent = send(
        &server,
        "apikey",
        token,
        json!([
            message("bounces@acme.test", "news@acme.test", "fay@x.test"),
            message("bounces@acme.test", "news@acme.test", "gus@x.test"),
        ]),
    );
    assert_eq!(sent["sent"][0]["code"], 250, "{sent}");
    assert_eq!(sent["sent"][1]["code"], 451, "{sent}");
    assert!(
        sent["sent"][1]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("4.7.1 daily quota of 4 messages reached")),
        "{sent}"
    );

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while delivered(capture.path()) < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(delivered(capture.path()), 4);
    let mut smtp_signed = 0;
    for entry in std::fs::read_dir(capture.path()).expect("capture") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|x| x != "eml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        if text.contains("Hello from SMTP.") {
            smtp_signed += 1;
            // Our return path and List-Unsubscribe, inside the signature checked below.
            assert!(text.contains("Return-Path: <bounces+"), "{text}");
            assert!(
                text.contains("List-Unsubscribe: <mailto:unsubscribe+"),
                "{text}"
            );
        }
        // Every message, API or SMTP, carries a signature dkimpy accepts.
        let verdict = python_json(
            "dkim_verify.py",
            &[
                path.to_str().expect("utf8"),
                "sel1._domainkey.acme.test",
                &record,
            ],
        );
        assert_eq!(verdict["valid"], true, "{verdict}\n{text}");
        assert_eq!(verdict["signatures"], 1, "{text}");
    }
    assert_eq!(smtp_signed, 3);
    drop(server);
    sink.stop();
}

#[test]
fn a_suspended_tenant_is_refused_on_smtp_and_the_api_saying_why() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (sink, server) =
        relaying_to_sink_with(capture.path(), "relay_networks = [\"127.0.0.2/32\"]");
    server.cli(&["tenant", "add", "acme"]);
    server.cli(&["domain", "add", "acme.test", "--tenant", "acme"]);
    let token = server.cli(&["key", "add", "--tenant", "acme"]);
    let token = token.trim();
    let body = r#"{"messages":[{"from":"news@acme.test","to":["eve@x.test"],"text":"API"}]}"#;

    // A reason on several lines would break an SMTP reply: refused, naming the field.
    let (ok, _, err) = server.try_cli(&["tenant", "suspend", "acme", "--reason", "a\r\n250 ok"]);
    assert!(!ok && err.contains("reason"), "{err}");
    server.cli(&["tenant", "suspend", "acme", "--reason", "unpaid invoice"]);
    assert!(
        server
            .cli(&["tenant", "ls"])
            .contains("suspended: unpaid invoice")
    );

    let refused = send(&server, "apikey", token, json!([]));
    assert_eq!(refused["login"], 535, "{refused}");
    assert_eq!(
        refused["login_text"],
        "5.7.1 Authentication refused: this account is suspended: unpaid invoice"
    );
    let api = post(&server, token, body);
    assert_eq!(api["status"], 403, "{api}");
    assert!(
        api["body"]
            .to_string()
            .contains("this account is suspended: unpaid invoice"),
        "{api}"
    );

    server.cli(&["tenant", "reactivate", "acme"]);
    let sent = send(
        &server,
        "apikey",
        token,
        json!([message("", "news@acme.test", "ann@x.test")]),
    );
    assert_eq!(sent["login"], 235, "{sent}");
    assert_eq!(sent["sent"][0]["code"], 250, "{sent}");
    assert_eq!(post(&server, token, body)["status"], 200);
    drop(server);
    sink.stop();
}
