//! Events, suppressions and webhooks end to end: mail sent by API and SMTP is delivered to
//! a sink or bounced by it; the events are queryable, the bounce suppresses the address for
//! the tenant (and only that tenant), a suppressed recipient is never attempted again, and
//! a webhook receiver in Python gets every event, signed, once it comes back up.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::{add_domain, post, relaying_to_sink_with};
use crate::harness::{TestServer, python_json};

/// A webhook receiver (Python http.server), answering 503 while its control file says
/// "down".
pub(crate) struct Receiver {
    child: Child,
    pub(crate) port: u16,
    record: std::path::PathBuf,
    control: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    pub(crate) fn start(down: bool) -> Receiver {
        Receiver::start_in(if down { "down" } else { "up" })
    }

    fn start_in(mode: &str) -> Receiver {
        let dir = tempfile::tempdir().expect("tempdir");
        let record = dir.path().join("received.jsonl");
        let control = dir.path().join("control");
        std::fs::write(&control, mode).expect("control");
        let script = format!(
            "{}/tests/py/webhook_receiver.py",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut child = Command::new("python3")
            .arg(script)
            .arg(&record)
            .arg(&control)
            .stdout(Stdio::piped())
            .spawn()
            .expect("receiver");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("port");
        let port = line.trim().parse().expect("port number");
        Receiver {
            child,
            port,
            record,
            control,
            _dir: dir,
        }
    }

    fn set_down(&self, down: bool) {
        self.set_mode(if down { "down" } else { "up" });
    }

    fn set_mode(&self, mode: &str) {
        std::fs::write(&self.control, mode).expect("control");
    }

    pub(crate) fn verified(&self, secret: &str) -> Value {
        if !self.record.exists() {
            return json!({"deliveries": 0, "accepted": 0, "bad_signatures": 0, "events": []});
        }
        python_json(
            "webhook_verify.py",
            &[secret, self.record.to_str().expect("utf8")],
        )
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> Value {
    let url = format!("http://{}{path}", server.http);
    python_json("api_client.py", &[&url, token, body, "{}", method])
}

pub(crate) fn events(server: &TestServer, token: &str, query: &str) -> Vec<Value> {
    let got = call(server, "GET", &format!("/v1/events?{query}"), token, "-");
    assert_eq!(got["status"], 200, "{got}");
    got["body"]["events"].as_array().expect("events").clone()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn smtp_send(server: &TestServer, token: &str, to: &str) -> Value {
    let port = server.smtp.port().to_string();
    let messages = json!([{ "mail_from": "news@acme.test", "from": "news@acme.test", "to": to, "subject": "By SMTP" }]);
    python_json(
        "smtp_tenant.py",
        &["127.0.0.1", &port, "apikey", token, &messages.to_string()],
    )
}

#[test]
fn events_suppressions_and_signed_webhooks_end_to_end() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (sink, server) = relaying_to_sink_with(
        capture.path(),
        "relay_networks = [\"127.0.0.2/32\"]\n[webhooks]\nallow_networks = [\"127.0.0.0/8\"]\nbackoff_max = \"1s\"",
    );
    server.cli(&["tenant", "add", "acme"]);
    server.cli(&["tenant", "add", "beta"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    let stranger = server.cli(&["key", "add", "--tenant", "beta", "--scopes", "all"]);
    let stranger = stranger.trim();

    // The tenant's receiver is down at first.
    let receiver = Receiver::start(true);
    let hook = call(
        &server,
        "POST",
        "/v1/webhooks",
        key,
        &json!({"url": format!("http://127.0.0.1:{}/hook", receiver.port)}).to_string(),
    );
    assert_eq!(hook["status"], 201, "{hook}");
    let hook_id = hook["body"]["id"].as_str().expect("id").to_string();
    let secret = hook["body"]["secret"].as_str().expect("secret").to_string();

    // API: one delivered, one refused by the sink with 550 5.1.1; SMTP: one delivered.
    let sent = post(
        &server,
        key,
        r#"{"messages":[
            {"from":"news@acme.test","to":["ann@x.test"],"text":"t","custom_id":"order-1","tags":["receipt"]},
            {"from":"news@acme.test","to":["permfail+bob@x.test"],"text":"t"}]}"#,
    );
    assert_eq!(sent["status"], 200, "{sent}");
    let ann_id = sent["body"]["messages"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        smtp_send(&server, key, "carl@x.test")["sent"][0]["code"],
        250
    );

    wait_for("delivery events", Duration::from_secs(20), || {
        events(&server, key, "type=delivered,bounced").len() == 3
    });
    let delivered = events(&server, key, "type=delivered");
    let mut who: Vec<&str> = delivered
        .iter()
        .filter_map(|e| e["recipient"].as_str())
        .collect();
    who.sort();
    assert_eq!(who, ["ann@x.test", "carl@x.test"]);
    let bounced = events(&server, key, "type=bounced");
    assert_eq!(bounced[0]["recipient"], "permfail+bob@x.test");
    assert_eq!(
        bounced[0]["detail"]["category"], "invalid_recipient",
        "{bounced:?}"
    );
    let accepted = events(&server, key, "type=accepted");
    assert_eq!(accepted.len(), 3);
    assert!(accepted.iter().any(|e| e["detail"]["via"] == "smtp"));

    // Lookups: by custom id, tag, recipient, and the message's own timeline after delivery.
    assert_eq!(events(&server, key, "custom_id=order-1").len(), 2);
    assert_eq!(events(&server, key, "tag=receipt&type=delivered").len(), 1);
    assert_eq!(events(&server, key, "recipient=carl@x.test").len(), 2);
    let page = events(&server, key, "limit=2");
    let rest = events(&server, key, &format!("after={}", page[1]["id"]));
    assert_eq!(
        page.len() + rest.len(),
        6,
        "cursor pages cover every event once"
    );
    let by_custom_id = call(&server, "GET", "/v1/messages?custom_id=order-1", key, "-");
    let found = by_custom_id["body"]["messages"]
        .as_array()
        .expect("messages");
    assert_eq!(found.len(), 1, "{by_custom_id}");
    assert_eq!(found[0]["id"], ann_id.as_str());
    assert_eq!(found[0]["events"].as_array().map(Vec::len), Some(2));
    let by_recipient = call(
        &server,
        "GET",
        "/v1/messages?recipient=carl@x.test",
        key,
        "-",
    );
    assert_eq!(
        by_recipient["body"]["messages"].as_array().map(Vec::len),
        Some(1)
    );
    let message = call(&server, "GET", &format!("/v1/messages/{ann_id}"), key, "-");
    assert_eq!(message["status"], 200, "{message}");
    let kinds: Vec<&str> = message["body"]["events"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(kinds, ["accepted", "delivered"]);

    // The hard bounce suppressed bob for acme: by API and by SMTP he is dropped, not tried.
    wait_for("the suppression", Duration::from_secs(10), || {
        call(
            &server,
            "GET",
            "/v1/suppressions/permfail+bob@x.test",
            key,
            "-",
        )["status"]
            == 200
    });
    let again = post(
        &server,
        key,
        r#"{"messages":[{"from":"news@acme.test","to":["permfail+bob@x.test"],"text":"t"},
            {"from":"news@acme.test","to":["ann@x.test","permfail+bob@x.test"],"text":"t"}]}"#,
    );
    assert_eq!(
        again["body"]["messages"][0]["status"], "suppressed",
        "{again}"
    );
    assert_eq!(again["body"]["messages"][1]["status"], "queued", "{again}");
    assert_eq!(
        again["body"]["messages"][1]["suppressed"][0],
        "permfail+bob@x.test"
    );
    let by_smtp = smtp_send(&server, key, "permfail+bob@x.test");
    assert_eq!(by_smtp["sent"][0]["code"], 250, "{by_smtp}");
    wait_for("suppressed events", Duration::from_secs(10), || {
        events(&server, key, "type=suppressed").len() == 3
    });
    wait_for(
        "the second delivery to ann",
        Duration::from_secs(20),
        || events(&server, key, "type=delivered&recipient=ann@x.test").len() == 2,
    );
    assert_eq!(
        events(&server, key, "type=bounced").len(),
        1,
        "a suppressed recipient was attempted"
    );

    // Another tenant sees and changes none of it.
    assert!(events(&server, stranger, "").is_empty());
    let theirs = call(&server, "GET", "/v1/suppressions", stranger, "-");
    assert_eq!(theirs["body"]["suppressions"], json!([]), "{theirs}");
    let gone = call(
        &server,
        "DELETE",
        "/v1/suppressions/permfail+bob@x.test",
        stranger,
        "-",
    );
    assert_eq!(gone["status"], 404);
    let foreign = call(
        &server,
        "GET",
        &format!("/v1/webhooks/{hook_id}/deliveries"),
        stranger,
        "-",
    );
    let unknown = call(
        &server,
        "GET",
        "/v1/webhooks/wh_0000000000000000/deliveries",
        stranger,
        "-",
    );
    assert_eq!(
        (&foreign["status"], &foreign["body"]),
        (&unknown["status"], &unknown["body"])
    );
    assert_eq!(foreign["status"], 404);
    let message = call(
        &server,
        "GET",
        &format!("/v1/messages/{ann_id}"),
        stranger,
        "-",
    );
    assert_eq!(message["status"], 404);
    assert_eq!(
        call(
            &server,
            "GET",
            "/v1/suppressions/permfail+bob@x.test",
            key,
            "-"
        )["status"],
        200,
        "the stranger removed acme's suppression"
    );

    // The receiver was down: deliveries failed (logged). Once it is up it gets every event,
    // in order, each delivery signed.
    let log = call(
        &server,
        "GET",
        &format!("/v1/webhooks/{hook_id}/deliveries"),
        key,
        "-",
    );
    let failed = log["body"]["deliveries"].as_array().expect("log");
    assert!(failed.iter().any(|d| d["status"] == 503), "{log}");
    receiver.set_down(false);
    let all = events(&server, key, "limit=1000");
    wait_for("the webhook to catch up", Duration::from_secs(20), || {
        receiver.verified(&secret)["events"]
            .as_array()
            .map_or(0, Vec::len)
            >= all.len()
    });
    let got = receiver.verified(&secret);
    assert_eq!(got["bad_signatures"], 0, "{got}");
    let ids: Vec<i64> = got["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["id"].as_i64())
        .collect();
    let expected: Vec<i64> = all.iter().filter_map(|e| e["id"].as_i64()).collect();
    assert_eq!(ids, expected, "every event once, in order");
    let log = call(
        &server,
        "GET",
        &format!("/v1/webhooks/{hook_id}/deliveries"),
        key,
        "-",
    );
    assert_eq!(log["body"]["deliveries"][0]["status"], 200, "{log}");

    // A test batch on demand: marked as a test, signed, logged, the cursor left alone.
    let test = call(
        &server,
        "POST",
        &format!("/v1/webhooks/{hook_id}/test"),
        key,
        "-",
    );
    assert_eq!(
        (&test["status"], &test["body"]["status"]),
        (&json!(200), &json!(200)),
        "{test}"
    );
    let got = receiver.verified(&secret);
    assert_eq!(got["bad_signatures"], 0, "{got}");
    let last = got["events"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (&last["id"], &last["message_id"]),
        (&json!(0), &json!("test")),
        "{got}"
    );

    // Rotating the secret: shown once; another tenant cannot; deliveries are signed with
    // both secrets for a while, so a receiver still on the old one keeps accepting.
    let theirs = call(
        &server,
        "POST",
        &format!("/v1/webhooks/{hook_id}/rotate"),
        stranger,
        "-",
    );
    assert_eq!(theirs["status"], 404, "{theirs}");
    let rotated = call(
        &server,
        "POST",
        &format!("/v1/webhooks/{hook_id}/rotate"),
        key,
        "-",
    );
    assert_eq!(rotated["status"], 200, "{rotated}");
    let new_secret = rotated["body"]["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    assert_ne!(new_secret, secret);
    assert!(
        rotated["body"]["previous_secret_expires_ms"]
            .as_i64()
            .is_some(),
        "{rotated}"
    );
    // The endpoint's task picks up the new secret within its 2 s listing period.
    std::thread::sleep(Duration::from_millis(2500));
    let sent = post(
        &server,
        key,
        r#"{"messages":[{"from":"news@acme.test","to":["dan@x.test"],"text":"t"}]}"#,
    );
    assert_eq!(sent["status"], 200, "{sent}");
    wait_for(
        "events signed with the new secret",
        Duration::from_secs(20),
        || {
            receiver.verified(&new_secret)["events"]
                .as_array()
                .is_some_and(|e| {
                    e.iter()
                        .any(|e| e["recipient"] == "dan@x.test" && e["type"] == "delivered")
                })
        },
    );
    assert_eq!(
        receiver.verified(&secret)["bad_signatures"],
        0,
        "the old secret still verifies"
    );
    drop(server);
    sink.stop();
}

#[test]
fn webhooks_to_internal_addresses_are_refused_and_undeliverable_events_are_dropped_after_the_retry_period()
 {
    let server = TestServer::start("[webhooks]\nretry_for = \"2s\"\nbackoff_max = \"1s\"");
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/",
        "http://10.0.0.1/",
        // IPv6 forms that lead to an internal IPv4 address through a translator or tunnel.
        "http://[64:ff9b::127.0.0.1]:9/",
        "http://[64:ff9b:1::a9fe:a9fe]/",
        "http://[2002:7f00:1::]:9/",
        "http://[2001:0:7f00:1::]:9/",
        "http://[::127.0.0.1]:9/",
        "http://[fec0::1]/",
        "ftp://example.com/",
    ] {
        let refused = call(
            &server,
            "POST",
            "/v1/webhooks",
            key,
            &json!({ "url": url }).to_string(),
        );
        assert_eq!(refused["status"], 400, "{url}: {refused}");
        assert_eq!(refused["body"]["errors"][0]["field"], "url", "{refused}");
    }

    // Allowed by the operator: an endpoint that never answers 2xx. After the retry period
    // the events are dropped and the log says so.
    drop(server);
    let server = TestServer::start(
        "[webhooks]\nretry_for = \"2s\"\nbackoff_max = \"1s\"\nallow_networks = [\"127.0.0.1\"]",
    );
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    let receiver = Receiver::start(true);
    let hook = call(
        &server,
        "POST",
        "/v1/webhooks",
        key,
        &json!({"url": format!("http://127.0.0.1:{}/h", receiver.port), "events": ["accepted"]})
            .to_string(),
    );
    assert_eq!(hook["status"], 201, "{hook}");
    let hook_id = hook["body"]["id"].as_str().expect("id");
    let sent = post(
        &server,
        key,
        r#"{"messages":[{"from":"a@acme.test","to":["b@x.test"],"text":"t"}]}"#,
    );
    assert_eq!(sent["status"], 200);
    wait_for("the events to be given up", Duration::from_secs(20), || {
        let log = call(
            &server,
            "GET",
            &format!("/v1/webhooks/{hook_id}/deliveries"),
            key,
            "-",
        );
        log["body"]["deliveries"].as_array().is_some_and(|d| {
            d.iter().any(|d| {
                d["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("dropped 1 events"))
            })
        })
    });
    // Nothing is sent again once dropped: the receiver saw only failing attempts.
    receiver.set_down(false);
    std::thread::sleep(Duration::from_secs(3));
    let seen = receiver.verified(hook["body"]["secret"].as_str().expect("secret"));
    assert_eq!(seen["accepted"], 0, "{seen}");
    assert_eq!(seen["bad_signatures"], 0);
}

#[test]
fn a_suppression_list_imported_from_csv_and_managed_by_cli_and_api_is_honoured() {
    let server = TestServer::start("");
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("export.csv");
    std::fs::write(
        &csv,
        "email,reason,created\n\"ann@x.test\",bounce,2024\nBob@X.test,unsubscribe,2024\nnot an address,manual\ncy@x.test\n",
    )
    .expect("csv");
    let out = server.cli(&[
        "suppression",
        "import",
        csv.to_str().expect("utf8"),
        "--tenant",
        "acme",
    ]);
    assert!(
        out.contains("3 addresses read: 3 added, 0 already suppressed, 1 invalid lines skipped"),
        "{out}"
    );
    assert!(out.contains("invalid lines: 4"), "{out}");
    let listed = server.cli(&["suppression", "ls", "--tenant", "acme"]);
    assert!(
        listed.contains("bob@x.test") && listed.contains("unsubscribe"),
        "{listed}"
    );
    let sent = post(
        &server,
        key.trim(),
        r#"{"messages":[{"from":"a@acme.test","to":["BOB@x.test"],"text":"t"}]}"#,
    );
    assert_eq!(
        sent["body"]["messages"][0]["status"], "suppressed",
        "{sent}"
    );
    server.cli(&["suppression", "rm", "bob@x.test", "--tenant", "acme"]);
    let out = server.cli(&[
        "suppression",
        "add",
        "fay@x.test",
        "cy@x.test",
        "--tenant",
        "acme",
    ]);
    assert!(out.contains("1 added, 1 already suppressed"), "{out}");

    // The same list over HTTP.
    let added = call(
        &server,
        "POST",
        "/v1/suppressions",
        key.trim(),
        r#"{"addresses":["gil@x.test","ANN@x.test"],"reason":"manual"}"#,
    );
    assert_eq!(added["body"], json!({"added": 1, "already": 1}), "{added}");
    let bad = call(
        &server,
        "POST",
        "/v1/suppressions",
        key.trim(),
        r#"{"addresses":["gil@x.test","not an address"]}"#,
    );
    assert_eq!(bad["status"], 400);
    assert_eq!(bad["body"]["errors"][0]["field"], "addresses[1]");
    let page = call(&server, "GET", "/v1/suppressions?limit=2", key.trim(), "-");
    assert_eq!(
        page["body"]["suppressions"].as_array().map(Vec::len),
        Some(2)
    );
    let next = page["body"]["next"]
        .as_str()
        .expect("next page")
        .to_string();
    let rest = call(
        &server,
        "GET",
        &format!("/v1/suppressions?after={next}"),
        key.trim(),
        "-",
    );
    // ann, cy, fay, gil: bob was removed.
    assert_eq!(
        rest["body"]["suppressions"].as_array().map(Vec::len),
        Some(2),
        "{rest}"
    );
    let removed = call(
        &server,
        "DELETE",
        "/v1/suppressions/gil@x.test",
        key.trim(),
        "-",
    );
    assert_eq!(removed["status"], 204);
    let sent = post(
        &server,
        key.trim(),
        r#"{"messages":[{"from":"a@acme.test","to":["bob@x.test"],"text":"t"}]}"#,
    );
    assert_eq!(sent["body"]["messages"][0]["status"], "queued", "{sent}");
}

/// A dead endpoint that holds connections, and one that redirects, delay nobody: a healthy
/// endpoint of the same tenant gets its events at once, and the redirect is not followed.
#[test]
fn a_hanging_or_redirecting_webhook_delays_no_other_and_redirects_are_not_followed() {
    let server = TestServer::start(
        "[webhooks]\nallow_networks = [\"127.0.0.1\"]\ntimeout = \"20s\"\nbackoff_max = \"1s\"",
    );
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    let hanging = Receiver::start_in("hang");
    let target = Receiver::start(false);
    let redirecting =
        Receiver::start_in(&format!("redirect http://127.0.0.1:{}/stolen", target.port));
    let healthy = Receiver::start(false);
    let mut secrets = Vec::new();
    for receiver in [&hanging, &redirecting, &healthy] {
        let hook = call(
            &server,
            "POST",
            "/v1/webhooks",
            key,
            &json!({"url": format!("http://127.0.0.1:{}/hook", receiver.port)}).to_string(),
        );
        assert_eq!(hook["status"], 201, "{hook}");
        secrets.push((
            hook["body"]["id"].as_str().expect("id").to_string(),
            hook["body"]["secret"].as_str().expect("secret").to_string(),
        ));
    }
    let started = Instant::now();
    for batch in 0..3 {
        let sent = post(
            &server,
            key,
            &format!(
                r#"{{"messages":[{{"from":"a@acme.test","to":["u{batch}@x.test"],"text":"t"}}]}}"#
            ),
        );
        assert_eq!(sent["status"], 200);
    }
    wait_for("the healthy endpoint", Duration::from_secs(10), || {
        healthy.verified(&secrets[2].1)["events"]
            .as_array()
            .map_or(0, Vec::len)
            == 3
    });
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the healthy endpoint waited {:?} for the hanging one",
        started.elapsed()
    );
    // The redirect is an answer like any non-2xx: logged, retried, never followed.
    wait_for("the redirect to be logged", Duration::from_secs(10), || {
        let log = call(
            &server,
            "GET",
            &format!("/v1/webhooks/{}/deliveries", secrets[1].0),
            key,
            "-",
        );
        log["body"]["deliveries"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["status"] == 307))
    });
    assert_eq!(
        target.verified(&secrets[1].1)["deliveries"],
        0,
        "the redirect was followed"
    );
}
