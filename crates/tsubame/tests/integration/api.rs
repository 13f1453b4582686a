//! The native send API against the running binary: keys and scopes, field-named errors,
//! header injection refused, and accepted messages delivered to a sink as composed.

use serde_json::Value;

use crate::harness::{TestServer, python_json};
use crate::sink::SinkProcess;

/// A tsubame that delivers x.test to a `tsubame sink` capturing into `capture`.
pub(crate) fn relaying_to_sink(capture: &std::path::Path) -> (SinkProcess, TestServer) {
    relaying_to_sink_with(capture, "")
}

/// Like [`relaying_to_sink`], with lines for the `[smtp]` section.
pub(crate) fn relaying_to_sink_with(
    capture: &std::path::Path,
    smtp: &str,
) -> (SinkProcess, TestServer) {
    let sink = SinkProcess::start(&["--capture", capture.to_str().expect("utf8")]);
    let server = TestServer::start(&format!(
        "{smtp}\n[delivery]\ntls = \"disabled\"\n[[delivery.route]]\ndomains = [\"x.test\"]\nhosts = [\"{}\"]\n",
        sink.addr
    ));
    (sink, server)
}

/// Like [`relaying_to_sink`], with more sections after the delivery route.
pub(crate) fn relaying_to_sink_with_config(
    capture: &std::path::Path,
    sections: &str,
) -> (SinkProcess, TestServer) {
    let sink = SinkProcess::start(&["--capture", capture.to_str().expect("utf8")]);
    let server = TestServer::start(&format!(
        "[delivery]\ntls = \"disabled\"\n[[delivery.route]]\ndomains = [\"x.test\"]\nhosts = [\"{}\"]\n{sections}",
        sink.addr
    ));
    (sink, server)
}

/// Gives `tenant` the sending domain `domain` with an Ed25519 key.
pub(crate) fn add_domain(server: &TestServer, tenant: &str, domain: &str) {
    server.cli(&[
        "domain",
        "add",
        domain,
        "--tenant",
        tenant,
        "--algorithm",
        "ed25519",
    ]);
}

pub(crate) fn post(server: &TestServer, token: &str, body: &str) -> Value {
    let url = format!("http://{}/v1/messages", server.http);
    python_json("api_client.py", &[&url, token, body])
}

#[test]
fn native_send_api_from_key_to_delivered_message() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (sink, server) = relaying_to_sink(capture.path());
    server.cli(&["tenant", "add", "acme"]);
    server.cli(&[
        "domain",
        "add",
        "acme.test",
        "--tenant",
        "acme",
        "--selector",
        "s1",
    ]);
    let sender = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "send"]);
    let reader = server.cli(&[
        "key", "add", "--tenant", "acme", "--name", "ro", "--scopes", "read",
    ]);
    let (sender, reader) = (sender.trim(), reader.trim());

    let valid = r#"{"messages":[
        {"from":{"email":"news@acme.test","name":"Acme News"},"to":["ann@x.test"],
         "bcc":["audit@x.test"],"subject":"Hello Ann","text":"Hi Ann.","html":"<p>Hi Ann.</p>",
         "headers":{"X-Campaign":"spring"},"custom_id":"order-1"},
        {"from":"news@acme.test","to":[{"email":"bob@x.test","name":"Bob"}],"subject":"Hello Bob","text":"Hi Bob."}]}"#;

    // No key, an unknown key, a key without the send scope: nothing is queued.
    assert_eq!(post(&server, "-", valid)["status"], 401);
    assert_eq!(
        post(
            &server,
            "tsb_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            valid
        )["status"],
        401
    );
    let forbidden = post(&server, reader, valid);
    assert_eq!(forbidden["status"], 403, "{forbidden}");

    // Errors name their field; an injected header line is refused, not sent.
    let injected = r#"{"messages":[{"from":"news@acme.test","to":["ann@x.test"],
        "subject":"Hi\r\nBcc: victim@elsewhere.test","text":"t"}]}"#;
    let refused = post(&server, sender, injected);
    assert_eq!(refused["status"], 400, "{refused}");
    assert_eq!(refused["body"]["errors"][0]["field"], "messages[0].subject");
    let missing = post(
        &server,
        sender,
        r#"{"messages":[{"to":["ann@x.test"],"text":"t"}]}"#,
    );
    assert_eq!(missing["body"]["errors"][0]["field"], "messages[0].from");
    assert!(
        server.queued_ids().is_empty(),
        "a refused request queued mail"
    );

    let accepted = post(&server, sender, valid);
    assert_eq!(accepted["status"], 200, "{accepted}");
    let results = accepted["body"]["messages"]
        .as_array()
        .expect("messages")
        .clone();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["custom_id"], "order-1");
    assert_eq!(results[0]["recipients"], 2);

    // Both arrive: three envelope recipients in all, the bcc one never in a header.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let files = loop {
        let files: Vec<_> = std::fs::read_dir(capture.path())
            .expect("capture")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        if files.len() >= 2 || std::time::Instant::now() > deadline {
            break files;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(files.len(), 2, "delivered: {files:?}");
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("read"))
        .collect();
    let ann = texts
        .iter()
        .find(|t| t.contains("Subject: Hello Ann"))
        .expect("Ann's message");
    assert!(ann.contains("X-Sink-Recipient: <ann@x.test>"));
    assert!(ann.contains("X-Sink-Recipient: <audit@x.test>"));
    assert!(
        !ann.to_ascii_lowercase().contains("\nbcc:"),
        "Bcc header leaked:\n{ann}"
    );
    assert!(
        ann.contains("From: \"Acme News\" <news@acme.test>"),
        "{ann}"
    );
    assert!(ann.contains("X-Campaign: spring"));
    assert!(ann.contains("multipart/alternative"));
    let id = results[0]["id"].as_str().expect("id");
    assert!(
        ann.contains(&format!("Message-ID: <{id}@mx.test>")),
        "{ann}"
    );
    let bob = texts
        .iter()
        .find(|t| t.contains("Subject: Hello Bob"))
        .expect("Bob's message");
    assert!(bob.contains("To: \"Bob\" <bob@x.test>"), "{bob}");
    drop(server);
    sink.stop();
}

/// A tenant's rate limit and daily quota: 429 with Retry-After, and the day's count kept
/// across a restart.
#[test]
fn rate_limit_and_daily_quota_answer_429_and_survive_a_restart() {
    let mut server = TestServer::start("");
    server.cli(&[
        "tenant",
        "add",
        "small",
        "--rate",
        "2",
        "--daily-quota",
        "5",
    ]);
    add_domain(&server, "small", "small.test");
    let key = server.cli(&["key", "add", "--tenant", "small"]);
    let key = key.trim();
    let batch = |n: usize| {
        let messages: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"from":"a@small.test","to":["u{i}@x.test"],"text":"t"}}"#))
            .collect();
        format!(r#"{{"messages":[{}]}}"#, messages.join(","))
    };
    assert_eq!(post(&server, key, &batch(1))["status"], 200);
    // One token left of two: three messages must wait about a second.
    let limited = post(&server, key, &batch(3));
    assert_eq!(limited["status"], 429, "{limited}");
    assert_eq!(limited["retry_after"], "1");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(post(&server, key, &batch(3))["status"], 200);
    // Four used of five today: two more exceed the quota until midnight UTC.
    let over = post(&server, key, &batch(2));
    assert_eq!(over["status"], 429, "{over}");
    assert!(
        over["body"]["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("daily quota")),
        "{over}"
    );
    let until_midnight: u64 = over["retry_after"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("Retry-After");
    assert!((1..=86_400).contains(&until_midnight));

    // The count is saved within a second; a restart does not reset it.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    server.terminate(std::time::Duration::from_secs(10));
    server.spawn(&[]);
    assert_eq!(post(&server, key, &batch(2))["status"], 429);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(post(&server, key, &batch(1))["status"], 200);
    assert_eq!(server.queued_ids().len(), 5);
}

/// The official SendGrid Python client, unchanged but for its host: 202 with X-Message-Id,
/// sandbox mode answered 200 and not sent, SendGrid-shaped errors, the scope enforced.
#[test]
fn sendgrid_python_client_sends_unchanged() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (sink, server) = relaying_to_sink(capture.path());
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme"]);
    let reader = server.cli(&[
        "key", "add", "--tenant", "acme", "--name", "ro", "--scopes", "read",
    ]);
    let host = format!("http://{}", server.http);
    let run = |scenario: &str, key: &str| {
        python_json("sendgrid_client.py", &[scenario, &host, key.trim()])
    };

    let sent = run("send", &key);
    assert_eq!(sent["status"], 202, "{sent}");
    assert_eq!(sent["body"], "");
    let id = sent["message_id"]
        .as_str()
        .expect("X-Message-Id")
        .to_string();

    let sandbox = run("sandbox", &key);
    assert_eq!(sandbox["status"], 200, "{sandbox}");

    let invalid = run("invalid", &key);
    assert_eq!(invalid["status"], 400, "{invalid}");
    let error = &invalid["body"]["errors"][0];
    assert_eq!(error["field"], "subject", "{invalid}");
    assert!(
        error.get("help").is_some(),
        "SendGrid's error shape has help: {invalid}"
    );

    let forbidden = run("send", &reader);
    assert_eq!(forbidden["status"], 403, "{forbidden}");

    // Only the one real send was queued; it reaches the sink with every recipient.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while (delivered(capture.path()) < 1 || !server.queued_ids().is_empty())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        delivered(capture.path()),
        1,
        "sandbox or refused requests were sent"
    );
    let file = std::fs::read_dir(capture.path())
        .expect("capture")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "eml"))
        .expect("delivered");
    let text = std::fs::read_to_string(file).expect("read");
    for rcpt in ["ann@x.test", "bob@x.test", "audit@x.test"] {
        assert!(
            text.contains(&format!("X-Sink-Recipient: <{rcpt}>")),
            "{rcpt}\n{text}"
        );
    }
    assert!(
        text.contains(&format!("Message-ID: <{id}@mx.test>")),
        "{text}"
    );
    assert!(text.contains("X-Campaign: sg-1"));
    drop(server);
    sink.stop();
}

pub(crate) fn delivered(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0)
}

/// The official Mailjet Python client (>= 1.9), unchanged but for its api_url: a send with
/// Mailjet's response shape, a batch with one bad message (the good one is sent, the status
/// is 400 and the body says which failed), sandbox mode, and Basic authentication.
#[test]
fn mailjet_python_client_sends_unchanged() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (sink, server) = relaying_to_sink(capture.path());
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let token = server.cli(&["key", "add", "--tenant", "acme"]);
    // Mailjet's key pair: API key "tsb_<id>", secret key the rest.
    let (api_key, secret) = token.trim()[4..].split_once('_').expect("token shape");
    let api_key = format!("tsb_{api_key}");
    let url = format!("http://{}/", server.http);
    let run = |scenario: &str, secret: &str| {
        python_json("mailjet_client.py", &[scenario, &url, &api_key, secret])
    };

    let sent = run("send", secret);
    assert_eq!(sent["status"], 200, "{sent}");
    let entry = &sent["body"]["Messages"][0];
    assert_eq!(entry["Status"], "success", "{sent}");
    assert_eq!(entry["CustomID"], "AppGettingStartedTest");
    assert_eq!(entry["To"][0]["Email"], "ann@x.test");
    assert!(
        entry["To"][0]["MessageID"].as_u64().is_some_and(|n| n > 0),
        "{sent}"
    );
    assert_eq!(entry["Bcc"][0]["Email"], "audit@x.test");
    assert_ne!(entry["To"][0]["MessageID"], entry["Bcc"][0]["MessageID"]);
    // The client sends an Idempotency-Key (its payload's fingerprint): the same send again
    // is answered the same and queues nothing new.
    let retried = run("send", secret);
    assert_eq!(retried["body"], sent["body"], "{retried}");

    let partial = run("partial", secret);
    assert_eq!(partial["status"], 400, "{partial}");
    assert_eq!(partial["error"], "ValidationError", "{partial}");
    let entries = &partial["body"]["Messages"];
    assert_eq!(entries[0]["Status"], "success", "{partial}");
    assert_eq!(entries[1]["Status"], "error");
    assert_eq!(entries[1]["Errors"][0]["ErrorCode"], "mj-0013", "{partial}");
    assert_eq!(entries[1]["Errors"][0]["ErrorRelatedTo"][0], "To[0].Email");

    let sandbox = run("sandbox", secret);
    assert_eq!(sandbox["status"], 200, "{sandbox}");
    assert_eq!(sandbox["body"]["Messages"][0]["To"][0]["MessageID"], 0);
    assert_eq!(sandbox["body"]["Messages"][0]["To"][0]["MessageUUID"], "");

    let refused = run("send", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(refused["status"], 401, "{refused}");

    // Delivered: Ann's message (with its bcc) and Bob's; neither the bad one nor the sandbox.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while (delivered(capture.path()) < 2 || !server.queued_ids().is_empty())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(delivered(capture.path()), 2);
    drop(server);
    sink.stop();
}

/// The official Node.js client, node-mailjet 6 (npm), which always builds https:// URLs,
/// reaches the plain-HTTP listener through its `proxy` option as docs/api.md shows: the
/// message is queued and delivered; a wrong secret gets 401.
#[test]
fn mailjet_node_client_sends_through_its_proxy_option() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (sink, server) = relaying_to_sink(capture.path());
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let token = server.cli(&["key", "add", "--tenant", "acme"]);
    let (api_key, secret) = token.trim()[4..].split_once('_').expect("token shape");
    let api_key = format!("tsb_{api_key}");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node/mailjet_send.js");
    let body = r#"{"Messages":[{"From":{"Email":"news@acme.test","Name":"Acme"},
        "To":[{"Email":"ann@x.test"}],"Subject":"From Node","TextPart":"Hello from node-mailjet"}]}"#;
    let run = |secret: &str| -> Value {
        let out = std::process::Command::new("node")
            .args([script, &server.http.to_string(), &api_key, secret, body])
            .output()
            .expect("node (scripts/test installs node-mailjet)");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "node-mailjet printed {:?} {:?}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    let sent = run(secret);
    assert_eq!(sent["status"], 200, "{sent}");
    assert_eq!(sent["body"]["Messages"][0]["Status"], "success", "{sent}");
    let refused = run("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(refused["status"], 401, "{refused}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while delivered(capture.path()) < 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(delivered(capture.path()), 1);
    drop(server);
    sink.stop();
}

/// A virtual environment with `package` from PyPI, made once per build directory.
pub(crate) fn venv_with(name: &str, package: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = dir.join("bin/python");
    let ready = dir.join(".ready");
    if !ready.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let made = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .status()
            .expect("python3 -m venv");
        assert!(made.success(), "could not make a virtual environment");
        let installed = std::process::Command::new(&python)
            .args(["-m", "pip", "install", "-q", package])
            .status()
            .expect("pip");
        assert!(installed.success(), "pip install {package} failed");
        std::fs::write(&ready, package).expect("mark ready");
    }
    python
}

/// The older, still widely pinned mailjet_rest 1.3.x: no host allow-list, no exceptions on
/// errors; the same requests get the same answers.
#[test]
fn mailjet_python_client_1_3_sends_unchanged() {
    let python = venv_with("mailjet13", "mailjet_rest==1.3.4");
    let server = TestServer::start("");
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let token = server.cli(&["key", "add", "--tenant", "acme"]);
    let (api_key, secret) = token.trim()[4..].split_once('_').expect("token shape");
    let api_key = format!("tsb_{api_key}");
    let url = format!("http://{}/", server.http);
    let run = |scenario: &str| {
        crate::harness::python_json_with(
            &python,
            "mailjet_client.py",
            &[scenario, &url, &api_key, secret],
        )
    };
    let sent = run("send");
    assert_eq!(sent["status"], 200, "{sent}");
    assert_eq!(sent["body"]["Messages"][0]["Status"], "success");
    let partial = run("partial");
    assert_eq!(partial["status"], 400, "{partial}");
    assert_eq!(
        partial["body"]["Messages"][1]["Errors"][0]["ErrorCode"],
        "mj-0013"
    );
    assert_eq!(
        server.queued_ids().len(),
        2,
        "the good message of the batch is queued"
    );
}

/// A request retried with the same Idempotency-Key is answered as the first time and sends
/// nothing more; the key with another body is refused; the key is the tenant's own.
#[test]
fn idempotency_key_makes_a_retried_request_send_once() {
    let server = TestServer::start("");
    server.cli(&["tenant", "add", "acme"]);
    server.cli(&["tenant", "add", "beta"]);
    add_domain(&server, "acme", "acme.test");
    add_domain(&server, "beta", "beta.test");
    let acme = server.cli(&["key", "add", "--tenant", "acme"]);
    let beta = server.cli(&["key", "add", "--tenant", "beta"]);
    let url = format!("http://{}/v1/messages", server.http);
    let body = r#"{"messages":[{"from":"a@acme.test","to":["b@x.test"],"text":"once"}]}"#;
    let key = r#"{"Idempotency-Key":"order-42-confirmation"}"#;
    let send =
        |token: &str, body: &str| python_json("api_client.py", &[&url, token.trim(), body, key]);

    let first = send(&acme, body);
    assert_eq!(first["status"], 200, "{first}");
    assert_eq!(first["replayed"], serde_json::Value::Null);
    let again = send(&acme, body);
    assert_eq!(again["status"], 200, "{again}");
    assert_eq!(again["replayed"], "true");
    assert_eq!(again["body"], first["body"], "the same ids, not new ones");
    assert_eq!(server.queued_ids().len(), 1, "sent once");

    let changed = send(
        &acme,
        r#"{"messages":[{"from":"a@acme.test","to":["c@x.test"],"text":"x"}]}"#,
    );
    assert_eq!(changed["status"], 422, "{changed}");
    // Another tenant's identical key is its own.
    let beta_body = r#"{"messages":[{"from":"a@beta.test","to":["b@x.test"],"text":"once"}]}"#;
    assert_eq!(send(&beta, beta_body)["status"], 200);
    assert_eq!(server.queued_ids().len(), 2);
}

/// Mail from a domain the tenant has added is DKIM-signed, and dkimpy (an independent
/// verifier) accepts the signature with the record `tsubame domain` told the tenant to
/// publish; mail from any other domain is refused naming the field.
#[test]
fn api_mail_is_dkim_signed_and_foreign_domains_are_refused() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (sink, server) = relaying_to_sink(capture.path());
    server.cli(&["tenant", "add", "acme"]);
    server.cli(&["tenant", "add", "other"]);
    let mut published = Vec::new();
    for (domain, algorithm) in [("rsa.acme.test", "rsa"), ("ed.acme.test", "ed25519")] {
        let out = server.cli(&[
            "domain",
            "add",
            domain,
            "--tenant",
            "acme",
            "--algorithm",
            algorithm,
            "--selector",
            "sel1",
            "--mail-host",
            "mx.platform.test",
        ]);
        // The DKIM record line: NAME TXT "v=DKIM1; k=...; p=..."
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("sel1._domainkey.{domain} TXT")))
            .unwrap_or_else(|| panic!("no DKIM record printed:\n{out}"));
        let value = line
            .split_once(" TXT ")
            .expect("TXT")
            .1
            .trim_matches('"')
            .to_string();
        assert!(
            out.contains(&format!("{domain} TXT \"v=spf1 a:mx.platform.test ~all\"")),
            "{out}"
        );
        assert!(
            out.contains(&format!("_dmarc.{domain} TXT \"v=DMARC1; p=none\"")),
            "{out}"
        );
        assert!(
            out.contains(&format!("bounce.{domain} MX \"10 mx.platform.test.\"")),
            "{out}"
        );
        published.push((domain, format!("sel1._domainkey.{domain}"), value));
    }
    let taken = std::process::Command::new(crate::harness::BIN)
        .args([
            "domain",
            "add",
            "rsa.acme.test",
            "--tenant",
            "other",
            "--data-dir",
        ])
        .arg(&server.data_dir)
        .output()
        .expect("run");
    assert!(!taken.status.success(), "another tenant took acme's domain");

    let key = server.cli(&["key", "add", "--tenant", "acme"]);
    let body = |from: &str| {
        format!(
            r#"{{"messages":[{{"from":"news@{from}","to":["ann@x.test"],"subject":"Signed","text":"Hello.\n","html":"<p>Hello.</p>"}}]}}"#
        )
    };
    let refused = post(&server, key.trim(), &body("elsewhere.test"));
    assert_eq!(refused["status"], 403, "{refused}");
    assert_eq!(refused["body"]["errors"][0]["field"], "messages[0].from");
    for (domain, _, _) in &published {
        assert_eq!(post(&server, key.trim(), &body(domain))["status"], 200);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while delivered(capture.path()) < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let files: Vec<_> = std::fs::read_dir(capture.path())
        .expect("capture")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(files.len(), 2);
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        let (domain, name, value) = published
            .iter()
            .find(|(d, _, _)| text.contains(&format!("d={d};")))
            .unwrap_or_else(|| panic!("no known d= in\n{text}"));
        let verdict = python_json(
            "dkim_verify.py",
            &[file.to_str().expect("utf8"), name, value],
        );
        assert_eq!(verdict["valid"], true, "{domain}: {verdict}\n{text}");
        // A changed byte breaks it: the verifier really checks.
        let tampered = file.with_extension("tampered");
        std::fs::write(&tampered, text.replace("Hello.", "Hullo.")).expect("write");
        let verdict = python_json(
            "dkim_verify.py",
            &[tampered.to_str().expect("utf8"), name, value],
        );
        assert_eq!(verdict["valid"], false, "{domain}: tampering not detected");
    }
    drop(server);
    sink.stop();
}

/// A message id is only visible to its own tenant: another tenant's key gets 404, exactly
/// as for an id that never existed; a key without the read scope gets 403.
#[test]
fn message_lookup_is_scoped_to_the_tenant() {
    use crate::harness::http_get;
    let server = TestServer::start("");
    server.cli(&["tenant", "add", "acme"]);
    server.cli(&["tenant", "add", "beta"]);
    add_domain(&server, "acme", "acme.test");
    let sender = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "send"]);
    let reader = server.cli(&[
        "key", "add", "--tenant", "acme", "--name", "ro", "--scopes", "read",
    ]);
    let stranger = server.cli(&["key", "add", "--tenant", "beta", "--scopes", "all"]);
    let sent = post(
        &server,
        sender.trim(),
        r#"{"messages":[{"from":"a@acme.test","to":["b@x.test","c@x.test"],"text":"t"}]}"#,
    );
    let id = sent["body"]["messages"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let path = format!("/v1/messages/{id}");

    let (status, body) = http_get(server.http, &path, Some(reader.trim())).expect("get");
    assert_eq!(status, 200);
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["recipients"][1]["email"], "c@x.test");
    assert_eq!(body["recipients"][1]["status"], "pending");

    let (foreign, foreign_body) = http_get(server.http, &path, Some(stranger.trim())).expect("get");
    let unknown = http_get(
        server.http,
        "/v1/messages/01KBZZZZZZZZZZZZZZZZZZZZZZ",
        Some(stranger.trim()),
    )
    .expect("get");
    assert_eq!(foreign, 404);
    assert_eq!(
        (foreign, foreign_body),
        unknown,
        "a foreign id looks like no id at all"
    );
    let (no_scope, _) = http_get(server.http, &path, Some(sender.trim())).expect("get");
    assert_eq!(no_scope, 403);
}
