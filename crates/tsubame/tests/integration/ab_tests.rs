//! A/B tests end to end against the real binary and a `tsubame sink`: a random test group
//! gets the variants in equal shares, opens made by the test (Python fetching the pixels of
//! the captured messages) decide the winner after the wait, the rest of the audience gets
//! the winner, and the report shows each variant with the decision; an operator may pick
//! the winner instead; test sends go out in every variant.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{add_domain, relaying_to_sink_with_config};
use crate::campaigns::{call, captured, list_of, ok, sent_campaign, wait_state};
use crate::harness::python_json;

const PERSON: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15";

/// Captured messages to addresses starting with `prefix`, counted by subject.
fn subjects(dir: &std::path::Path, prefix: &str) -> (usize, HashMap<String, usize>) {
    let mut by_subject = HashMap::new();
    let mut count = 0;
    for (rcpt, text) in captured(dir) {
        if !rcpt.starts_with(prefix) {
            continue;
        }
        count += 1;
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("")
            .to_string();
        *by_subject.entry(subject).or_default() += 1;
    }
    (count, by_subject)
}

fn wait_captured(dir: &std::path::Path, prefix: &str, count: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while subjects(dir, prefix).0 < count {
        assert!(
            std::time::Instant::now() < deadline,
            "only {:?} of {count} arrived",
            subjects(dir, prefix)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_winner_is_decided_by_human_opens_and_sent_to_the_rest() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (_sink, server) = relaying_to_sink_with_config(
        capture.path(),
        "[http]\npublic_url = \"https://mail.platform.test\"\n",
    );
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    let people: Vec<String> = (0..200).map(|i| format!("ab{i:03}@x.test")).collect();
    list_of(&server, key, "News", &people);
    let content = json!({"from": "news@acme.test", "subject": "Plain news",
                         "html": "<p>Our news. <a href=\"https://acme.example/\">More</a></p>",
                         "text": "Our news."});

    // The document is checked field by field.
    let bad = call(
        &server,
        "POST",
        "/v1/campaigns",
        key,
        json!({"name": "Bad", "content": content, "ab": {"variants": [{}]}}),
    );
    assert_eq!(bad["body"]["errors"][0]["field"], "ab.variants", "{bad}");
    let bad = call(
        &server,
        "POST",
        "/v1/campaigns",
        key,
        json!({"name": "Bad", "content": content,
               "ab": {"variants": [{}, {"subject": "a\nBcc: x@evil.test"}]}}),
    );
    assert_eq!(
        bad["body"]["errors"][0]["field"], "ab.variants[1].subject",
        "{bad}"
    );

    // A test send goes out in every variant.
    let draft = json!({
        "name": "Subject test",
        "audience": {"lists": ["News"]},
        "content": content,
        "ab": {"variants": [{"name": "A"}, {"name": "B", "subject": "Big news"}],
               "test_percent": 20, "metric": "opens", "wait_minutes": 0.25},
    });
    let made = ok(
        call(&server, "POST", "/v1/campaigns", key, draft.clone()),
        201,
    );
    let draft_id = made["id"].as_str().expect("id");
    let tests = ok(
        call(
            &server,
            "POST",
            &format!("/v1/campaigns/{draft_id}/test"),
            key,
            json!({"to": ["proof@x.test"]}),
        ),
        200,
    );
    assert_eq!(tests["messages"].as_array().map(Vec::len), Some(2));
    wait_captured(capture.path(), "proof@", 2);
    let (_, proofs) = subjects(capture.path(), "proof@");
    assert_eq!(proofs.get("[Test A] Plain news"), Some(&1), "{proofs:?}");
    assert_eq!(proofs.get("[Test B] Big news"), Some(&1), "{proofs:?}");
    ok(
        call(
            &server,
            "POST",
            &format!("/v1/campaigns/{draft_id}/cancel"),
            key,
            Value::Null,
        ),
        200,
    );

    // The send: 40 in the test group, 20 each.
    let id = sent_campaign(&server, key, draft);
    wait_captured(capture.path(), "ab", 40);
    let (count, by_subject) = subjects(capture.path(), "ab");
    assert_eq!(count, 40, "only the test group before the decision");
    assert_eq!(
        (by_subject.get("Plain news"), by_subject.get("Big news")),
        (Some(&20), Some(&20)),
        "{by_subject:?}"
    );
    let testing = ok(
        call(
            &server,
            "GET",
            &format!("/v1/campaigns/{id}"),
            key,
            Value::Null,
        ),
        200,
    );
    assert_eq!(testing["state"], "sending");
    assert_eq!(testing["ab_progress"]["test_recipients"], 40, "{testing}");
    assert!(testing["ab_progress"]["winner"].is_null());
    // People open: 15 of B's 20, 2 of A's (after the seconds in which opens are taken
    // for image prefetching).
    std::thread::sleep(Duration::from_millis(2_500));
    let dir = capture.path().to_str().expect("utf8");
    let http = server.http.to_string();
    let b = python_json("open_pixels.py", &[dir, &http, "Big news", "15", PERSON]);
    let a = python_json("open_pixels.py", &[dir, &http, "Plain news", "2", PERSON]);
    assert_eq!(b["opened"].as_array().map(Vec::len), Some(15), "{b}");
    assert_eq!(a["opened"].as_array().map(Vec::len), Some(2), "{a}");

    // After the wait the winner goes to the other 160.
    let sent = wait_state(&server, key, &id, "sent");
    assert_eq!(sent["ab_progress"]["winner"], 1, "{sent}");
    wait_captured(capture.path(), "ab", 200);
    let (count, by_subject) = subjects(capture.path(), "ab");
    assert_eq!(count, 200, "everyone exactly once");
    assert_eq!(
        (by_subject.get("Plain news"), by_subject.get("Big news")),
        (Some(&20), Some(&180)),
        "{by_subject:?}"
    );
    let mut recipients: Vec<String> = captured(capture.path())
        .into_iter()
        .map(|(r, _)| r)
        .filter(|r| r.starts_with("ab"))
        .collect();
    recipients.sort_unstable();
    recipients.dedup();
    assert_eq!(recipients, people, "nobody twice, nobody missed");

    let report = ok(
        call(
            &server,
            "GET",
            &format!("/v1/campaigns/{id}/report"),
            key,
            Value::Null,
        ),
        200,
    );
    let reason = report["ab"]["winner_reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("B wins on unique opens"), "{report}");
    assert_eq!(report["variants"][0]["name"], "A");
    assert_eq!(report["variants"][1]["winner"], true);
    assert_eq!(
        report["variants"][0]["totals"]["opened_unique"], 2,
        "{report}"
    );
    assert_eq!(
        report["variants"][1]["totals"]["opened_unique"], 15,
        "{report}"
    );
    assert_eq!(report["variants"][0]["totals"]["sent"], 20);
    assert_eq!(report["variants"][1]["totals"]["sent"], 180);
    assert_eq!(report["totals"]["sent"], 200);
    assert_eq!(report["totals"]["opened_unique"], 17);
    assert_eq!(
        report["variants"][1]["rates"]["open"], 0.0833,
        "15 of 180 delivered"
    );
    assert_eq!(report["zones"]["UTC"]["opened_unique"], 17, "{report}");
}

#[test]
fn an_operator_may_pick_the_winner() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (_sink, server) = relaying_to_sink_with_config(capture.path(), "");
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    let people: Vec<String> = (0..10).map(|i| format!("m{i}@x.test")).collect();
    list_of(&server, key, "Few", &people);
    let plain = sent_campaign(
        &server,
        key,
        json!({"name": "No test", "audience": {"lists": ["Few"]},
               "content": {"from": "news@acme.test", "subject": "Hello", "text": "Hi"}}),
    );
    let none = call(
        &server,
        "POST",
        &format!("/v1/campaigns/{plain}/winner"),
        key,
        json!({}),
    );
    assert_eq!(
        (&none["status"], &none["body"]["errors"][0]["field"]),
        (&json!(400), &json!("ab")),
        "{none}"
    );
    wait_state(&server, key, &plain, "sent");
    wait_captured(capture.path(), "m", 10);

    let id = sent_campaign(
        &server,
        key,
        json!({"name": "Long test", "audience": {"lists": ["Few"]},
               "content": {"from": "news@acme.test", "subject": "Version one", "text": "Hi"},
               "ab": {"variants": [{}, {"subject": "Version two"}, {"subject": "Version three"}],
                      "test_percent": 50, "wait_minutes": 600}}),
    );
    // The test group (5 of 10) goes out; the decision would be ten hours away.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = ok(
            call(
                &server,
                "GET",
                &format!("/v1/campaigns/{id}"),
                key,
                Value::Null,
            ),
            200,
        );
        if now["ab_progress"]["decide_at_ms"].is_i64() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{now}");
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_captured(capture.path(), "m", 15);
    let bad = call(
        &server,
        "POST",
        &format!("/v1/campaigns/{id}/winner"),
        key,
        json!({"variant": 3}),
    );
    assert_eq!(bad["body"]["errors"][0]["field"], "variant", "{bad}");
    let picked = ok(
        call(
            &server,
            "POST",
            &format!("/v1/campaigns/{id}/winner"),
            key,
            json!({"variant": 2}),
        ),
        200,
    );
    assert_eq!(picked["ab_progress"]["winner"], 2);
    assert_eq!(
        picked["ab_progress"]["winner_reason"], "C chosen by an operator",
        "{picked}"
    );
    let again = call(
        &server,
        "POST",
        &format!("/v1/campaigns/{id}/winner"),
        key,
        json!({}),
    );
    assert_eq!(again["body"]["errors"][0]["field"], "state", "{again}");
    wait_state(&server, key, &id, "sent");
    wait_captured(capture.path(), "m", 20);
    let (count, by_subject) = subjects(capture.path(), "m");
    assert_eq!(count, 20, "10 for each campaign, nobody twice");
    // Test group: 5 recipients dealt in turn (2, 2, 1); the other 5 get C.
    assert_eq!(by_subject.get("Hello"), Some(&10));
    let three = by_subject.get("Version three").copied().unwrap_or(0);
    let one = by_subject.get("Version one").copied().unwrap_or(0);
    let two = by_subject.get("Version two").copied().unwrap_or(0);
    assert_eq!((one, two, three), (2, 2, 6), "{by_subject:?}");
}
