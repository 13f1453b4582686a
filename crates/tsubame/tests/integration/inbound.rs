//! Bounces and complaints coming back: tenants' mail leaves with a signed return path; a
//! remote server (Python's email + smtplib, no relay rights) sends a DSN, a feedback report
//! or a free-text bounce to it, and they become events and suppressions for that message's
//! recipients only. Forged return paths and other addresses are still refused.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::api::{add_domain, delivered, post, relaying_to_sink_with};
use crate::harness::{TestServer, python_json};

fn call(server: &TestServer, path: &str, token: &str) -> Value {
    let url = format!("http://{}{path}", server.http);
    python_json("api_client.py", &[&url, token, "-", "{}", "GET"])
}

fn events(server: &TestServer, token: &str, query: &str) -> Vec<Value> {
    call(server, &format!("/v1/events?{query}"), token)["body"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn report(server: &TestServer, return_path: &str, kind: &str, recipient: &str) -> Value {
    let port = server.smtp.port().to_string();
    python_json(
        "send_report.py",
        &["127.0.0.1", &port, return_path, kind, recipient],
    )
}

/// The rest of the first line starting with `prefix` in the message delivered to
/// `recipient`.
fn header_of(capture: &std::path::Path, recipient: &str, prefix: &str) -> String {
    for entry in std::fs::read_dir(capture).expect("capture") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).unwrap_or_default();
        if text.contains(&format!("X-Sink-Recipient: <{recipient}>")) {
            // Long fields are folded: unfold before looking.
            let unfolded = text.replace("\r\n\t", " ").replace("\r\n ", " ");
            return unfolded
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
                .to_string();
        }
    }
    panic!("nothing delivered to {recipient}");
}

/// The Return-Path the sink saw on the message to `recipient`.
fn return_path_to(capture: &std::path::Path, recipient: &str) -> String {
    header_of(capture, recipient, "Return-Path: <")
        .trim_end_matches('>')
        .to_string()
}

#[test]
fn bounces_and_complaints_to_the_return_path_become_events_and_suppressions() {
    let capture = tempfile::tempdir().expect("tempdir");
    // 127.0.0.2 only may relay: the reporting server on 127.0.0.1 has no relay rights.
    let (sink, server) =
        relaying_to_sink_with(capture.path(), "relay_networks = [\"127.0.0.2/32\"]");
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    let sent = post(
        &server,
        key,
        r#"{"messages":[
            {"from":"news@acme.test","to":["ann@x.test","bob@x.test"],"text":"t","custom_id":"c-1"},
            {"from":"news@acme.test","to":["carl@x.test","dee@x.test"],"text":"t"}]}"#,
    );
    assert_eq!(sent["status"], 200, "{sent}");
    let first = sent["body"]["messages"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while delivered(capture.path()) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let verp = return_path_to(capture.path(), "bob@x.test");
    assert!(
        verp.starts_with(&format!("bounces+{first}.")) && verp.ends_with("@bounce.acme.test"),
        "{verp}"
    );
    let other_verp = return_path_to(capture.path(), "carl@x.test");

    // A DSN: bob failed. Recorded before the 250, so visible at once, and bob is suppressed.
    let taken = report(&server, &verp, "dsn", "bob@x.test");
    assert_eq!(taken["code"], 250, "{taken}");
    let bounced = events(&server, key, "type=bounced");
    assert_eq!(bounced.len(), 1, "{bounced:?}");
    assert_eq!(bounced[0]["recipient"], "bob@x.test");
    assert_eq!(bounced[0]["message_id"], first.as_str());
    assert_eq!(bounced[0]["custom_id"], "c-1");
    assert_eq!(bounced[0]["detail"]["source"], "dsn");
    assert_eq!(bounced[0]["detail"]["status"], "5.1.1");
    assert_eq!(bounced[0]["detail"]["category"], "invalid_recipient");
    let bob = call(&server, "/v1/suppressions/bob@x.test", key);
    assert_eq!(bob["body"]["reason"], "bounce", "{bob}");

    // A complaint about the same message from ann: complained, suppressed as a complaint.
    assert_eq!(report(&server, &verp, "arf", "ann@x.test")["code"], 250);
    let complained = events(&server, key, "type=complained");
    assert_eq!(complained.len(), 1, "{complained:?}");
    assert_eq!(complained[0]["recipient"], "ann@x.test");
    let ann = call(&server, "/v1/suppressions/ann@x.test", key);
    assert_eq!(ann["body"]["reason"], "complaint", "{ann}");

    // A free-text bounce to the other message's return path.
    assert_eq!(
        report(&server, &other_verp, "text", "carl@x.test")["code"],
        250
    );
    let carl = events(&server, key, "type=bounced&recipient=carl@x.test");
    assert_eq!(carl.len(), 1, "{carl:?}");
    assert_eq!(carl[0]["detail"]["source"], "bounce-text");
    assert_eq!(carl[0]["detail"]["category"], "invalid_recipient");

    // A report can only speak of its own message's recipients: carl's return path cannot
    // bounce dave (never sent to) nor bob (another message).
    assert_eq!(
        report(&server, &other_verp, "dsn", "dave@x.test")["code"],
        250
    );
    assert_eq!(
        report(&server, &other_verp, "dsn", "bob@x.test")["code"],
        250
    );
    assert_eq!(events(&server, key, "type=bounced").len(), 2);
    assert_eq!(
        call(&server, "/v1/suppressions/dave@x.test", key)["status"],
        404
    );

    // dee's mail client follows List-Unsubscribe; a stranger writing there changes nothing.
    let unsubscribe = header_of(capture.path(), "dee@x.test", "List-Unsubscribe: <mailto:");
    let unsubscribe = unsubscribe.trim_end_matches('>');
    assert!(unsubscribe.starts_with("unsubscribe+"), "{unsubscribe}");
    let stranger = report(&server, unsubscribe, "unsubscribe", "mallory@y.test");
    assert_eq!(stranger["code"], 250);
    assert!(events(&server, key, "type=unsubscribed").is_empty());
    assert_eq!(
        report(&server, unsubscribe, "unsubscribe", "dee@x.test")["code"],
        250
    );
    let gone = events(&server, key, "type=unsubscribed");
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert_eq!(gone[0]["recipient"], "dee@x.test");
    let dee = call(&server, "/v1/suppressions/dee@x.test", key);
    assert_eq!(dee["body"]["reason"], "unsubscribe", "{dee}");

    // Forged or foreign addresses get no further than RCPT: never an open relay.
    let forged = verp.replacen(".", ".0", 1);
    for to in [
        forged.as_str(),
        "postmaster@bounce.acme.test",
        "victim@elsewhere.test",
    ] {
        let refused = report(&server, to, "dsn", "bob@x.test");
        assert_eq!(refused["code"], 550, "{to}: {refused}");
        assert!(
            refused["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("5.7.1")),
            "{refused}"
        );
    }
    assert_eq!(events(&server, key, "type=bounced").len(), 2);
    drop(server);
    sink.stop();
}

/// Reports about a campaign's messages (a late DSN, a complaint, a List-Unsubscribe mail)
/// carry the campaign's id, so they count in its report.
#[test]
fn late_bounces_complaints_and_unsubscribes_count_in_the_campaigns_report() {
    use crate::campaigns::{list_of, ok, sent_campaign, wait_state};
    let capture = tempfile::tempdir().expect("tempdir");
    let (sink, server) =
        relaying_to_sink_with(capture.path(), "relay_networks = [\"127.0.0.2/32\"]");
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    let people: Vec<String> = ["ann", "bob", "cy"]
        .iter()
        .map(|n| format!("{n}@x.test"))
        .collect();
    list_of(&server, key, "News", &people);
    let id = sent_campaign(
        &server,
        key,
        serde_json::json!({
            "name": "News",
            "audience": {"lists": ["News"]},
            "content": {"from": "news@acme.test", "subject": "News", "text": "Hello."},
        }),
    );
    wait_state(&server, key, &id, "sent");
    let deadline = Instant::now() + Duration::from_secs(20);
    while delivered(capture.path()) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let verp = |who: &str| return_path_to(capture.path(), who);
    assert_eq!(
        report(&server, &verp("ann@x.test"), "dsn", "ann@x.test")["code"],
        250
    );
    assert_eq!(
        report(&server, &verp("bob@x.test"), "arf", "bob@x.test")["code"],
        250
    );
    let unsubscribe = header_of(capture.path(), "cy@x.test", "List-Unsubscribe: <mailto:");
    let unsubscribe = unsubscribe.trim_end_matches('>');
    assert_eq!(
        report(&server, unsubscribe, "unsubscribe", "cy@x.test")["code"],
        250
    );
    for kind in ["bounced", "complained", "unsubscribed"] {
        let found = events(&server, key, &format!("type={kind}"));
        assert_eq!(found.len(), 1, "{kind}: {found:?}");
        assert_eq!(found[0]["detail"]["campaign_id"], id.as_str(), "{found:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let report = ok(
            crate::campaigns::call(
                &server,
                "GET",
                &format!("/v1/campaigns/{id}/report"),
                key,
                Value::Null,
            ),
            200,
        );
        let totals = &report["totals"];
        let counts = [
            &totals["delivered"],
            &totals["bounced"],
            &totals["complained"],
            &totals["unsubscribed"],
        ];
        if counts
            == [
                &Value::from(3),
                &Value::from(1),
                &Value::from(1),
                &Value::from(1),
            ]
        {
            assert_eq!(report["bounces"]["invalid_recipient"], 1, "{report}");
            break;
        }
        assert!(Instant::now() < deadline, "{report}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
    sink.stop();
}

/// RFC 8058: a message to one recipient carries a signed one-click link (and the POST
/// header, both covered by the DKIM signature); the provider's POST unsubscribes that
/// recipient at once; a GET only shows a button; an altered link does nothing.
#[test]
fn one_click_unsubscribe_links_unsubscribe_their_recipient_only() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (sink, server) = relaying_to_sink_with(
        capture.path(),
        "[http]\npublic_url = \"https://mail.platform.test/\"",
    );
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    let sent = post(
        &server,
        key,
        r#"{"messages":[{"from":"news@acme.test","to":["ann@x.test"],"text":"t"},
            {"from":"news@acme.test","to":["bob@x.test","cy@x.test"],"text":"t"}]}"#,
    );
    assert_eq!(sent["status"], 200, "{sent}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while delivered(capture.path()) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let links = header_of(capture.path(), "ann@x.test", "List-Unsubscribe: ");
    let url = links
        .split(", ")
        .find_map(|l| l.strip_prefix("<https://mail.platform.test"))
        .map(|l| l.trim_end_matches('>').to_string())
        .unwrap_or_else(|| panic!("no one-click link in {links}"));
    assert!(url.starts_with("/v1/unsubscribe/"), "{url}");
    assert_eq!(
        header_of(capture.path(), "ann@x.test", "List-Unsubscribe-Post: "),
        "List-Unsubscribe=One-Click"
    );
    let signature = header_of(capture.path(), "ann@x.test", "DKIM-Signature: ");
    let signed = signature
        .split(';')
        .find_map(|t| t.trim().strip_prefix("h="))
        .expect("h= tag")
        .replace(' ', "");
    assert!(
        signed.contains("List-Unsubscribe:List-Unsubscribe-Post")
            || (signed.contains("List-Unsubscribe-Post") && signed.contains("List-Unsubscribe:")),
        "{signature}"
    );
    // Two recipients share one copy: no one-click link there, the mailto only.
    let shared = header_of(capture.path(), "bob@x.test", "List-Unsubscribe: ");
    assert!(shared.starts_with("<mailto:unsubscribe+"), "{shared}");

    let http = |method: &str, path: &str| {
        let url = format!("http://{}{path}", server.http);
        python_json("api_client.py", &[&url, "-", "-", "{}", method])
    };
    let page = http("GET", &url);
    assert_eq!(page["status"], 200);
    assert!(
        page["body"]
            .as_str()
            .is_some_and(|b| b.contains("<form method=\"post\"")),
        "{page}"
    );
    assert!(
        events(&server, key, "type=unsubscribed").is_empty(),
        "a GET unsubscribed"
    );
    let altered = url.replacen("/v1/unsubscribe/3", "/v1/unsubscribe/4", 1);
    let altered = if altered == url {
        format!("{url}0")
    } else {
        altered
    };
    assert_eq!(http("POST", &altered)["status"], 404);
    let done = http("POST", &url);
    assert_eq!(done["status"], 200, "{done}");
    let gone = events(&server, key, "type=unsubscribed");
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert_eq!(gone[0]["recipient"], "ann@x.test");
    assert_eq!(gone[0]["detail"]["source"], "one-click");
    assert_eq!(
        call(&server, "/v1/suppressions/ann@x.test", key)["body"]["reason"],
        "unsubscribe"
    );
    drop(server);
    sink.stop();
}
