//! What a message can carry beyond its text, through every send API: attachments and
//! inline images, template variables, metadata and tags (kept, never sent), and scheduled
//! sending, which holds even across a crash.

use serde_json::Value;

use crate::api::{add_domain, delivered, post, relaying_to_sink};
use crate::harness::{http_get, python_json};

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn wait_delivered(dir: &std::path::Path, n: usize, limit_secs: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(limit_secs);
    while delivered(dir) < n && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Every delivered message, read by Python's email parser, by subject.
fn summaries(dir: &std::path::Path) -> Vec<Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("capture") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "eml") {
            let mut summary = python_json("mime_summary.py", &[path.to_str().expect("utf8")]);
            summary["raw"] = std::fs::read_to_string(&path).expect("read").into();
            out.push(summary);
        }
    }
    out
}

fn by_subject<'a>(all: &'a [Value], subject: &str) -> &'a Value {
    all.iter()
        .find(|s| s["subject"] == subject)
        .unwrap_or_else(|| panic!("no message with subject {subject:?} in {all:#?}"))
}

fn text_of(summary: &Value) -> &str {
    summary["text"].as_str().expect("a text part").trim_end()
}

fn file<'a>(summary: &'a Value, filename: &str) -> &'a Value {
    summary["files"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["filename"] == filename))
        .unwrap_or_else(|| panic!("no {filename} in {summary:#}"))
}

#[test]
fn attachments_templates_and_tags_arrive_through_every_api() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (sink, server) = relaying_to_sink(capture.path());
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "send,read"]);
    let key = key.trim();

    // Native: variables, a file, an inline image, metadata, tags, custom id.
    let native = post(
        &server,
        key,
        r#"{"messages":[{"from":"shop@acme.test","to":["ann@x.test"],
            "subject":"Receipt {{ order }}","text":"Thanks {{ name }}, {{ items | length }} items.",
            "html":"<p>Thanks {{ name }} <img src=\"cid:logo\"></p>",
            "variables":{"order":7,"name":"<Ann>","items":["a","b"]},
            "attachments":[{"filename":"receipt.pdf","content_type":"application/pdf","content":"JVBERi0xLjQgbmF0aXZl"},
                           {"filename":"logo.png","content_type":"image/png","content":"iVBORyBuYXRpdmU=","content_id":"logo"}],
            "custom_id":"order-7","metadata":{"order":"7","secret-note":"internal"},"tags":["receipt"]}]}"#,
    );
    assert_eq!(native["status"], 200, "{native}");
    let id = native["body"]["messages"][0]["id"].as_str().expect("id");
    // What the sender attached is kept with the message and shown to its tenant.
    let (status, shown) =
        http_get(server.http, &format!("/v1/messages/{id}"), Some(key)).expect("get");
    if status == 200 {
        let shown: Value = serde_json::from_slice(&shown).expect("json");
        assert_eq!(shown["custom_id"], "order-7", "{shown}");
        assert_eq!(shown["metadata"]["secret-note"], "internal", "{shown}");
        assert_eq!(shown["tags"][0], "receipt", "{shown}");
    } else {
        // Already delivered and gone: 404 is the only other answer.
        assert_eq!(status, 404);
    }

    let host = format!("http://{}", server.http);
    let sendgrid = python_json("sendgrid_client.py", &["attachments", &host, key]);
    assert_eq!(sendgrid["status"], 202, "{sendgrid}");
    let (public, secret) = key.rsplit_once('_').expect("key");
    let mailjet = python_json("mailjet_client.py", &["templated", &host, public, secret]);
    assert_eq!(mailjet["status"], 200, "{mailjet}");

    wait_delivered(capture.path(), 3, 20);
    let all = summaries(capture.path());
    assert_eq!(all.len(), 3, "{all:#?}");

    let receipt = by_subject(&all, "Receipt 7");
    assert_eq!(
        receipt["parts"],
        serde_json::json!([
            "multipart/mixed",
            "multipart/alternative",
            "text/plain",
            "multipart/related",
            "text/html",
            "image/png",
            "application/pdf"
        ])
    );
    assert_eq!(text_of(receipt), "Thanks <Ann>, 2 items.");
    assert!(
        receipt["html"]
            .as_str()
            .is_some_and(|h| h.contains("Thanks &lt;Ann&gt;")),
        "{receipt:#}"
    );
    assert_eq!(file(receipt, "receipt.pdf")["content"], "%PDF-1.4 native");
    let logo = file(receipt, "logo.png");
    assert_eq!(logo["content"], "\u{89}PNG native");
    assert_eq!(logo["content_id"], "<logo>");
    assert_eq!(logo["disposition"], "inline");
    let raw = receipt["raw"].as_str().expect("raw");
    assert!(
        !raw.contains("internal") && !raw.contains("order-7"),
        "metadata leaked into the message:\n{raw}"
    );

    let files = by_subject(&all, "Files");
    assert_eq!(file(files, "invoice.pdf")["content"], "%PDF-1.4 sendgrid");
    assert_eq!(file(files, "invoice.pdf")["disposition"], "attachment");
    assert_eq!(file(files, "logo.png")["content_id"], "<logo>");
    assert_eq!(file(files, "logo.png")["disposition"], "inline");

    let order = by_subject(&all, "Order 42");
    assert_eq!(text_of(order), "Dear customer, order 42 is on its way.");
    assert_eq!(file(order, "invoice.pdf")["content"], "%PDF-1.4 mailjet");
    assert_eq!(file(order, "logo.png")["content_id"], "<logo>");
    let raw = order["raw"].as_str().expect("raw");
    assert!(
        !raw.contains("order-42") && !raw.contains("autumn"),
        "{raw}"
    );
    drop(server);
    sink.stop();
}

/// A message with send_at is accepted at once, survives a crash, and is delivered at its
/// time, not before.
#[test]
fn a_scheduled_message_waits_for_its_time_even_across_a_crash() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (sink, mut server) = relaying_to_sink(capture.path());
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "send,read"]);
    let key = key.trim();
    let send_at = now_secs() + 5;
    let sent = post(
        &server,
        key,
        &format!(
            r#"{{"messages":[{{"from":"a@acme.test","to":["later@x.test"],"subject":"Later","text":"t","send_at":{send_at}}}]}}"#
        ),
    );
    assert_eq!(sent["status"], 200, "{sent}");
    let id = sent["body"]["messages"][0]["id"].as_str().expect("id");
    let (status, shown) =
        http_get(server.http, &format!("/v1/messages/{id}"), Some(key)).expect("get");
    assert_eq!(status, 200);
    let shown: Value = serde_json::from_slice(&shown).expect("json");
    assert_eq!(shown["status"], "scheduled", "{shown}");
    assert_eq!(shown["send_at_ms"], send_at * 1000);

    server.kill9();
    server.spawn(&[]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        now_secs() < send_at,
        "the test machine is too slow for this check"
    );
    assert_eq!(delivered(capture.path()), 0, "sent before its time");
    assert_eq!(server.queued_ids(), [id.to_string()]);

    wait_delivered(capture.path(), 1, 20);
    assert_eq!(delivered(capture.path()), 1);
    assert!(now_secs() >= send_at);
    drop(server);
    sink.stop();
}
