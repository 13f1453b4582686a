//! Campaigns through Mailjet's v3 REST API, driven by the official `mailjet_rest` client
//! against the real binary delivering to a `tsubame sink`: a draft with its content in
//! Mailjet's template language, a test send, refusals in Mailjet's error shape, a schedule
//! set and removed, the send to a list (and to a list narrowed by a segment), and
//! `statcounters` agreeing with what the sink received; another account sees none of it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::api::{add_domain, relaying_to_sink};
use crate::campaigns::captured;
use crate::harness::python_json;

fn step<'a>(steps: &'a Value, name: &str, status: u64) -> &'a Value {
    assert_eq!(steps[name]["status"], status, "{name}: {}", steps[name]);
    &steps[name]["body"]
}

fn message_of(steps: &Value, name: &str) -> String {
    step(steps, name, 400)["ErrorMessage"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn the_mailjet_client_runs_a_campaign() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (_sink, server) = relaying_to_sink(capture.path());
    server.cli(&["tenant", "add", "acme"]);
    server.cli(&["tenant", "add", "beta"]);
    add_domain(&server, "acme", "acme.test");
    let pair = |tenant: &str| {
        let token = server.cli(&["key", "add", "--tenant", tenant, "--scopes", "all"]);
        let (id, secret) = token.trim()[4..].split_once('_').expect("token shape");
        (format!("tsb_{id}"), secret.to_string())
    };
    let (key, secret) = pair("acme");
    let (other_key, other_secret) = pair("beta");
    let url = format!("http://{}/", server.http);
    let steps = python_json(
        "mailjet_campaigns.py",
        &[&url, &key, &secret, &other_key, &other_secret],
    );

    // Refusals name Mailjet's properties.
    assert!(message_of(&steps, "missing_subject").contains("\"Subject\" is required"));
    assert!(
        message_of(&steps, "injected").contains("\"Subject\""),
        "{steps}"
    );
    assert!(message_of(&steps, "unknown_list").contains("\"ContactsListID\""));
    assert!(
        message_of(&steps, "no_body_send").contains("html or text is required"),
        "{}",
        steps["no_body_send"]
    );
    let draft = &step(&steps, "draft", 201)["Data"][0];
    let id = draft["ID"].as_i64().expect("a numeric draft id");
    assert_eq!(
        (&draft["Status"], &draft["Title"], &draft["SenderName"]),
        (
            &Value::from(0),
            &Value::from("December letter"),
            &Value::from("Acme News")
        )
    );
    assert_eq!(
        step(&steps, "content", 201)["Data"][0]["Html-part"],
        "<p>Dear [[data:firstname:\"friend\"]], our December news.</p>"
    );
    let content = &step(&steps, "content_get", 200)["Data"][0];
    assert_eq!(
        content["Text-part"], "Dear [[data:firstname:\"friend\"]], our December news (text).",
        "PUT changed the text part only"
    );
    assert!(
        content["Html-part"]
            .as_str()
            .unwrap_or("")
            .starts_with("<p>Dear")
    );
    assert_eq!(step(&steps, "test", 201)["Data"][0]["Status"], "Draft");
    assert_eq!(steps["stranger_get"]["status"], 404);
    assert_eq!(steps["stranger_send"]["status"], 404);

    // A schedule: refused in the past, set, read back, removed.
    assert!(message_of(&steps, "schedule_past").contains("past"));
    assert_eq!(
        step(&steps, "schedule", 201)["Data"][0]["Status"],
        "Programmed"
    );
    assert_eq!(step(&steps, "scheduled_draft", 200)["Data"][0]["Status"], 1);
    assert!(step(&steps, "schedule_get", 200)["Data"][0]["Date"].is_string());
    assert_eq!(steps["unschedule"]["status"], 204);
    assert_eq!(
        step(&steps, "unscheduled_draft", 200)["Data"][0]["Status"],
        0
    );

    assert_eq!(step(&steps, "send", 201)["Data"][0]["Status"], "Programmed");
    assert!(message_of(&steps, "send_again").contains("only a draft is sent"));
    let stats = &step(&steps, "stats", 200)["Data"][0];
    assert_eq!(stats["SourceID"], id);
    assert_eq!(stats["Total"], 6, "{stats}");
    assert_eq!(stats["MessageSentCount"], 6, "{stats}");
    assert_eq!(stats["MessageQueuedCount"], 0);
    assert_eq!(stats["MessageHardBouncedCount"], 0);
    assert!(message_of(&steps, "stats_bad").contains("Lifetime"));
    assert_eq!(steps["stats_stranger"]["status"], 404);
    let sent = &step(&steps, "sent_draft", 200)["Data"][0];
    assert_eq!(
        (&sent["Status"], &sent["CampaignID"]),
        (&Value::from(2), &Value::from(id))
    );
    assert!(step(&steps, "drafts", 200)["Total"].as_i64() >= Some(2));

    // What the sink received: each person once, personalised from contact data; the test
    // marked; the segment-narrowed campaign to the two named people only.
    let deadline = Instant::now() + Duration::from_secs(30);
    let subjects = loop {
        let mut subjects: HashMap<String, Vec<String>> = HashMap::new();
        for (rcpt, text) in captured(capture.path()) {
            let subject = text
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or("")
                .to_string();
            subjects.entry(rcpt).or_default().push(subject);
        }
        if subjects.values().map(Vec::len).sum::<usize>() >= 9 || Instant::now() > deadline {
            break subjects;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(subjects["mcproof@x.test"], ["[Test] Hello friend"]);
    for i in 0..6 {
        let mut got = subjects[&format!("mc{i}@x.test")].clone();
        got.sort();
        let mut want = vec![if i % 2 == 0 {
            format!("Hello Name{i}")
        } else {
            "Hello friend".to_string()
        }];
        if i == 0 || i == 2 {
            want.push("Only for you".to_string());
        }
        want.sort();
        assert_eq!(got, want, "mc{i}");
    }
}
