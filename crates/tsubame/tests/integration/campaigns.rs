//! Campaigns over the native API against the real binary, delivered to a `tsubame sink`:
//! drafts checked field by field, a test send, a send to a list less an exclusion segment
//! and the suppressed, personalised from each contact's properties with a stored template's
//! frozen version; every recipient gets exactly one message, and another tenant sees none
//! of it.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::{add_domain, relaying_to_sink};
use crate::harness::{TestServer, python_json};

pub(crate) fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    token: &str,
    body: Value,
) -> Value {
    let url = format!("http://{}{path}", server.http);
    let body = if body.is_null() {
        "-".to_string()
    } else {
        body.to_string()
    };
    python_json("api_client.py", &[&url, token, &body, "{}", method])
}

pub(crate) fn ok(answer: Value, status: u64) -> Value {
    assert_eq!(answer["status"], status, "{answer}");
    answer["body"].clone()
}

fn refused_field(answer: &Value) -> (u64, String) {
    (
        answer["status"].as_u64().unwrap_or(0),
        answer["body"]["errors"][0]["field"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

/// Captured messages: (recipient, whole text).
pub(crate) fn captured(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("capture dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read captured");
        for line in text.lines() {
            if let Some(rcpt) = line
                .strip_prefix("X-Sink-Recipient: <")
                .and_then(|r| r.strip_suffix('>'))
            {
                out.push((rcpt.to_string(), text.clone()));
            }
        }
    }
    out
}

pub(crate) fn wait_state(server: &TestServer, token: &str, id: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let campaign = ok(
            call(
                server,
                "GET",
                &format!("/v1/campaigns/{id}"),
                token,
                Value::Null,
            ),
            200,
        );
        if campaign["state"] == state {
            return campaign;
        }
        assert!(
            Instant::now() < deadline,
            "campaign never became {state}: {campaign}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A list `name` with `addresses` subscribed (contacts made where missing, others kept as
/// they are); its id.
pub(crate) fn list_of(server: &TestServer, key: &str, name: &str, addresses: &[String]) -> String {
    let contacts: Vec<Value> = addresses.iter().map(|a| json!({"email": a})).collect();
    ok(
        call(
            server,
            "POST",
            "/v1/contacts",
            key,
            json!({"contacts": contacts}),
        ),
        200,
    );
    let list = ok(
        call(server, "POST", "/v1/lists", key, json!({"name": name})),
        201,
    );
    let id = list["id"].as_str().expect("list id").to_string();
    ok(
        call(
            server,
            "POST",
            &format!("/v1/lists/{id}/members"),
            key,
            json!({"contacts": addresses}),
        ),
        200,
    );
    id
}

/// A campaign made from `draft` and sent; its id.
/// Imports a CSV of contacts into acme's list "All" with the CLI.
pub(crate) fn import_to_all(server: &TestServer, csv: &std::path::Path) {
    server.cli(&[
        "contacts",
        "import",
        csv.to_str().expect("utf8"),
        "--tenant",
        "acme",
        "--list",
        "All",
    ]);
}

pub(crate) fn sent_campaign(server: &TestServer, key: &str, draft: Value) -> String {
    let campaign = ok(call(server, "POST", "/v1/campaigns", key, draft), 201);
    let id = campaign["id"].as_str().expect("campaign id").to_string();
    ok(
        call(
            server,
            "POST",
            &format!("/v1/campaigns/{id}/send"),
            key,
            Value::Null,
        ),
        200,
    );
    id
}

#[test]
fn a_campaign_goes_to_its_audience_once_each_personalised() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (_sink, mut server) = relaying_to_sink(capture.path());
    server.cli(&["tenant", "add", "acme"]);
    server.cli(&["tenant", "add", "beta"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    let stranger = server.cli(&["key", "add", "--tenant", "beta", "--scopes", "all"]);
    let stranger = stranger.trim();

    ok(
        call(
            &server,
            "POST",
            "/v1/contacts/properties",
            key,
            json!({"name": "first_name", "type": "text"}),
        ),
        201,
    );
    ok(
        call(
            &server,
            "POST",
            "/v1/contacts/properties",
            key,
            json!({"name": "vip", "type": "boolean"}),
        ),
        201,
    );
    let contacts: Vec<Value> = (0..40)
        .map(|i| {
            json!({"email": format!("p{i}@x.test"),
                   "properties": {"first_name": format!("Name{i}"), "vip": i % 10 == 3}})
        })
        .collect();
    ok(
        call(
            &server,
            "POST",
            "/v1/contacts",
            key,
            json!({"contacts": contacts}),
        ),
        200,
    );
    let list = ok(
        call(&server, "POST", "/v1/lists", key, json!({"name": "News"})),
        201,
    );
    let list_id = list["id"].as_str().expect("list id").to_string();
    let members: Vec<String> = (0..30).map(|i| format!("p{i}@x.test")).collect();
    ok(
        call(
            &server,
            "POST",
            &format!("/v1/lists/{list_id}/members"),
            key,
            json!({"contacts": members}),
        ),
        200,
    );
    ok(
        call(
            &server,
            "POST",
            "/v1/segments",
            key,
            json!({"name": "VIPs", "query": "vip = true"}),
        ),
        201,
    );
    ok(
        call(
            &server,
            "POST",
            "/v1/suppressions",
            key,
            json!({"addresses": ["p5@x.test"]}),
        ),
        200,
    );
    let template = ok(
        call(
            &server,
            "POST",
            "/v1/templates",
            key,
            json!({"name": "Monthly", "dialect": "native"}),
        ),
        201,
    );
    let template_id = template["id"].as_str().expect("template id").to_string();
    ok(
        call(
            &server,
            "POST",
            &format!("/v1/templates/{template_id}/versions"),
            key,
            json!({"subject": "News for {{ first_name }}",
                    "text": "Hello {{ first_name }}, v1.",
                    "html": "<p>Hello {{ first_name }}, v1.</p>",
                    "test_data": {"first_name": "Ann"}}),
        ),
        201,
    );

    // Drafts are checked field by field.
    let bad = call(
        &server,
        "POST",
        "/v1/campaigns",
        key,
        json!({"name": "X", "audience": {"lists": [7]}}),
    );
    assert_eq!(refused_field(&bad), (400, "audience.lists[0]".into()));
    let bad = call(
        &server,
        "POST",
        "/v1/campaigns",
        key,
        json!({"name": "X", "content": {"from": "news@acme.test", "subject": "a\r\nBcc: x@y.test", "text": "t"}}),
    );
    assert_eq!(refused_field(&bad), (400, "content.subject".into()));
    let campaign = ok(
        call(
            &server,
            "POST",
            "/v1/campaigns",
            key,
            json!({
                "name": "December",
                "audience": {"lists": ["News"], "exclude_segments": ["VIPs"]},
                "content": {"from": "news@acme.test", "from_name": "Acme", "template_id": "Monthly"},
            }),
        ),
        201,
    );
    let id = campaign["id"].as_str().expect("campaign id").to_string();
    assert_eq!(campaign["state"], "draft");

    // Another tenant sees nothing and can do nothing.
    assert_eq!(
        call(
            &server,
            "GET",
            &format!("/v1/campaigns/{id}"),
            stranger,
            Value::Null
        )["status"],
        404
    );
    assert_eq!(
        call(
            &server,
            "POST",
            &format!("/v1/campaigns/{id}/send"),
            stranger,
            Value::Null
        )["status"],
        404
    );
    let theirs = ok(
        call(&server, "GET", "/v1/campaigns", stranger, Value::Null),
        200,
    );
    assert_eq!(theirs["campaigns"], json!([]));

    // A test send, personalised as the contact when the address is one.
    let tested = ok(
        call(
            &server,
            "POST",
            &format!("/v1/campaigns/{id}/test"),
            key,
            json!({"to": ["p1@x.test", "someone@x.test"]}),
        ),
        200,
    );
    assert_eq!(tested["messages"].as_array().map(Vec::len), Some(2));
    let deadline = Instant::now() + Duration::from_secs(30);
    while captured(capture.path()).len() < 2 {
        assert!(Instant::now() < deadline, "test messages never arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    let tests = captured(capture.path());
    let to_p1 = &tests
        .iter()
        .find(|(r, _)| r == "p1@x.test")
        .expect("test to p1")
        .1;
    assert!(to_p1.contains("Subject: [Test] News for Name1"), "{to_p1}");
    // Someone who is no contact gets the template's test data.
    let to_other = &tests
        .iter()
        .find(|(r, _)| r == "someone@x.test")
        .expect("test to a non-contact")
        .1;
    assert!(
        to_other.contains("Subject: [Test] News for Ann"),
        "{to_other}"
    );

    // Sending freezes the active version: a new version activated later changes nothing.
    let sent = ok(
        call(
            &server,
            "POST",
            &format!("/v1/campaigns/{id}/send"),
            key,
            Value::Null,
        ),
        200,
    );
    assert!(
        matches!(sent["state"].as_str(), Some("sending" | "sent")),
        "{sent}"
    );
    assert_eq!(sent["content"]["template_version"], 1);
    ok(
        call(
            &server,
            "POST",
            &format!("/v1/templates/{template_id}/versions"),
            key,
            json!({"subject": "Changed {{ first_name }}", "text": "v2 {{ first_name }}",
                    "test_data": {"first_name": "Ann"}, "active": true}),
        ),
        201,
    );
    let done = wait_state(&server, key, &id, "sent");
    // News p0..p29, less p3, p13, p23 (VIPs) and p5 (suppressed): 26.
    assert_eq!(done["progress"]["recipients"], 26, "{done}");
    assert_eq!(done["progress"]["spooled"], 26, "{done}");
    assert_eq!(done["progress"]["remaining"], 0, "{done}");
    assert_eq!(
        call(
            &server,
            "POST",
            &format!("/v1/campaigns/{id}/send"),
            key,
            Value::Null
        )["status"],
        400,
        "a sent campaign is not sent again"
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    while captured(capture.path()).len() < 28 {
        assert!(
            Instant::now() < deadline,
            "campaign messages never all arrived"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut per_recipient: HashMap<String, Vec<String>> = HashMap::new();
    for (rcpt, text) in captured(capture.path()) {
        if !text.contains("Subject: [Test]") {
            per_recipient.entry(rcpt).or_default().push(text);
        }
    }
    let expected: Vec<String> = (0..30)
        .filter(|i| ![3, 5, 13, 23].contains(i))
        .map(|i| format!("p{i}@x.test"))
        .collect();
    let mut got: Vec<&String> = per_recipient.keys().collect();
    got.sort();
    let mut want: Vec<&String> = expected.iter().collect();
    want.sort();
    assert_eq!(got, want);
    for (rcpt, texts) in &per_recipient {
        assert_eq!(texts.len(), 1, "{rcpt} got {} messages", texts.len());
        let name = format!(
            "Name{}",
            rcpt.trim_start_matches('p').trim_end_matches("@x.test")
        );
        let text = &texts[0];
        assert!(
            text.contains(&format!("Subject: News for {name}")),
            "{text}"
        );
        assert!(text.contains("v1."), "the frozen version: {text}");
        assert!(text.contains("From: \"Acme\" <news@acme.test>"), "{text}");
        assert!(text.contains("List-Unsubscribe:"), "{text}");
        assert!(text.contains("DKIM-Signature:"), "{text}");
    }
    // Events name the campaign.
    let events = ok(
        call(
            &server,
            "GET",
            "/v1/events?type=accepted&limit=100",
            key,
            Value::Null,
        ),
        200,
    );
    let with_campaign = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["detail"]["campaign_id"] == id.as_str())
        .collect::<Vec<_>>();
    assert_eq!(with_campaign.len(), 28, "{events}");
    let tests = with_campaign
        .iter()
        .filter(|e| e["detail"]["campaign_test"] == true)
        .count();
    assert_eq!(tests, 2, "test sends are marked: {events}");

    // A campaign whose window opens only in three days: its messages wait in the queue
    // until a cancel takes them back, and none is delivered.
    let later_members: Vec<String> = (35..40).map(|i| format!("p{i}@x.test")).collect();
    list_of(&server, key, "Later", &later_members);
    let day = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .checked_add(jiff::ToSpan::days(3))
        .expect("date")
        .weekday();
    let day =
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][day.to_monday_zero_offset() as usize];
    let waiting_id = sent_campaign(
        &server,
        key,
        json!({
            "name": "Later",
            "audience": {"lists": ["Later"]},
            "content": {"from": "news@acme.test", "subject": "Later {{ email }}", "text": "Later."},
            "window": {"days": [day], "from": "09:00", "to": "10:00"},
        }),
    );
    wait_state(&server, key, &waiting_id, "sent");
    assert_eq!(server.admin_json("/admin/v1/queue/summary")["messages"], 5);
    let cancelled = ok(
        call(
            &server,
            "POST",
            &format!("/v1/campaigns/{waiting_id}/cancel"),
            key,
            Value::Null,
        ),
        200,
    );
    assert_eq!(cancelled["state"], "cancelled");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.admin_json("/admin/v1/queue/summary")["messages"] != 0 {
        assert!(Instant::now() < deadline, "cancelled messages still queued");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        captured(capture.path())
            .iter()
            .all(|(_, text)| !text.contains("Subject: Later")),
        "a cancelled campaign's message was delivered"
    );

    // At a ceiling of 1 message/s the sending domain is removed and the server restarted:
    // the campaign cannot be composed any more and pauses itself rather than retrying
    // forever.
    add_domain(&server, "acme", "promo.acme.test");
    let slow_id = sent_campaign(
        &server,
        key,
        json!({
            "name": "Slow",
            "audience": {"lists": ["News"]},
            "content": {"from": "news@promo.acme.test", "subject": "Slow", "text": "Slow."},
            "rate_per_sec": 1,
        }),
    );
    assert_eq!(
        call(
            &server,
            "DELETE",
            "/v1/domains/promo.acme.test",
            key,
            Value::Null
        )["status"],
        204
    );
    server.terminate(Duration::from_secs(10));
    server.spawn(&[]);
    let paused = wait_state(&server, key, &slow_id, "paused");
    assert!(
        paused["progress"]["remaining"].as_i64().unwrap_or(0) > 0,
        "stopped before the end: {paused}"
    );
}

/// A campaign counts against the tenant's daily quota like any mail: a batch the quota
/// cannot hold waits (the campaign stays `sending`, nothing is spooled) instead of going
/// over it.
#[test]
fn a_campaign_waits_for_the_tenants_daily_quota() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (_sink, server) = relaying_to_sink(capture.path());
    server.cli(&["tenant", "add", "small", "--daily-quota", "5"]);
    add_domain(&server, "small", "small.test");
    let key = server.cli(&["key", "add", "--tenant", "small", "--scopes", "all"]);
    let key = key.trim();
    let members: Vec<String> = (0..8).map(|i| format!("q{i}@x.test")).collect();
    list_of(&server, key, "All", &members);
    let id = sent_campaign(
        &server,
        key,
        json!({
            "name": "Too big",
            "audience": {"lists": ["All"]},
            "content": {"from": "news@small.test", "subject": "Hi", "text": "Hi"},
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .log_text()
        .contains("campaign waits for the tenant's limits")
    {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
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
    assert_eq!(now["state"], "sending", "{now}");
    assert_eq!(now["progress"]["spooled"], 0, "{now}");
    assert_eq!(now["progress"]["recipients"], 8, "{now}");
    assert!(captured(capture.path()).is_empty());
    // Cancelling a waiting campaign stops it.
    let cancelled = ok(
        call(
            &server,
            "POST",
            &format!("/v1/campaigns/{id}/cancel"),
            key,
            Value::Null,
        ),
        200,
    );
    assert_eq!(cancelled["state"], "cancelled");
}

/// A contact whose zone and country say nothing lives in the tenant's zone: its report
/// counts it there, and a zone that does not exist is refused by the CLI.
#[test]
fn contacts_without_a_zone_take_the_tenants() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (_sink, server) = relaying_to_sink(capture.path());
    server.cli(&["tenant", "add", "acme"]);
    let (done, _, refused) = server.try_cli(&["tenant", "zone", "acme", "Mars/Olympus"]);
    assert!(!done && refused.contains("not a time zone"), "{refused}");
    assert!(
        server
            .cli(&["tenant", "zone", "acme", "Asia/Tokyo"])
            .contains("Asia/Tokyo")
    );
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    list_of(&server, key, "All", &["nobody@x.test".to_string()]);
    let id = sent_campaign(
        &server,
        key,
        json!({
            "name": "Zoned",
            "audience": {"lists": ["All"]},
            "content": {"from": "news@acme.test", "subject": "Hi", "text": "Hi"},
        }),
    );
    wait_state(&server, key, &id, "sent");
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
    assert_eq!(report["zones"]["Asia/Tokyo"]["sent"], 1, "{report}");
    assert!(report["zones"].get("UTC").is_none(), "{report}");
}
