//! Unsubscribing from a campaign, end to end: the message says `List-Id` for its list and
//! `List-Unsubscribe` (RFC 8058 one-click) with a link scoped to the campaign's lists; a
//! one-click POST (as a mailbox provider's button sends it, through Python's urllib) leaves
//! that list only and suppresses nothing; the preference page is in the contact's language,
//! shows each list with its state, and its form re-joins or leaves lists; a forged link is
//! a 404. Each unsubscribe counts in the campaign's report and reaches the tenant's webhook
//! with the campaign's id.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::{add_domain, relaying_to_sink_with_config};
use crate::campaigns::{call, captured, list_of, ok, sent_campaign, wait_state};
use crate::events::Receiver;
use crate::harness::{TestServer, python_json};

fn form(server: &TestServer, path: &str, body: &str) -> Value {
    let url = format!("http://{}{path}", server.http);
    python_json(
        "api_client.py",
        &[
            &url,
            "-",
            body,
            r#"{"Content-Type": "application/x-www-form-urlencoded"}"#,
            "POST",
        ],
    )
}

fn statuses(server: &TestServer, key: &str, address: &str) -> Vec<(String, String)> {
    let contact = ok(
        call(
            server,
            "GET",
            &format!("/v1/contacts/{address}"),
            key,
            Value::Null,
        ),
        200,
    );
    let mut out: Vec<(String, String)> = contact["lists"]
        .as_array()
        .expect("lists")
        .iter()
        .map(|m| {
            (
                m["list_id"].as_str().expect("id").to_string(),
                m["status"].as_str().expect("status").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn one_click_leaves_the_campaigns_list_and_the_page_manages_the_rest() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (_sink, server) = relaying_to_sink_with_config(
        capture.path(),
        "[http]\npublic_url = \"https://mail.platform.test\"\n\
         [webhooks]\nallow_networks = [\"127.0.0.0/8\"]\nbackoff_max = \"1s\"\n",
    );
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    ok(
        call(
            &server,
            "POST",
            "/v1/contacts",
            key,
            json!({"contacts": [
                {"email": "ann@x.test", "locale": "ja-JP"},
                {"email": "bob@x.test"},
            ]}),
        ),
        200,
    );
    let receiver = Receiver::start(false);
    let hook = ok(
        call(
            &server,
            "POST",
            "/v1/webhooks",
            key,
            json!({"url": format!("http://127.0.0.1:{}/hook", receiver.port)}),
        ),
        201,
    );
    let secret = hook["secret"].as_str().expect("secret").to_string();
    let both = ["ann@x.test".to_string(), "bob@x.test".to_string()];
    let news = list_of(&server, key, "News", &both);
    let offers = list_of(&server, key, "Offers", &both);
    let id = sent_campaign(
        &server,
        key,
        json!({
            "name": "News",
            "audience": {"lists": ["News"]},
            "content": {"from": "news@acme.test", "subject": "News", "text": "Hello."},
        }),
    );
    wait_state(&server, key, &id, "sent");
    let deadline = Instant::now() + Duration::from_secs(30);
    let to_ann = loop {
        if let Some((_, text)) = captured(capture.path())
            .into_iter()
            .find(|(r, _)| r == "ann@x.test")
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the message to ann never arrived"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let list_id = format!(
        "List-Id: \"News\" <{}.list-id.acme.test>",
        news.replace('_', "-")
    );
    assert!(to_ann.contains(&list_id), "{to_ann}");
    assert!(
        to_ann.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{to_ann}"
    );
    let start = to_ann
        .find("<https://mail.platform.test/v1/preferences/")
        .expect("a one-click link")
        + "<https://mail.platform.test".len();
    let end = start + to_ann[start..].find('>').expect("end of link");
    let path: String = to_ann[start..end].split_whitespace().collect();

    // The page is in ann's language and changes nothing by itself.
    let page = python_json(
        "track_fetch.py",
        &[
            &server.http.to_string(),
            &path,
            "mail.platform.test",
            "Mozilla/5.0 (X11) Firefox/128.0",
        ],
    );
    assert_eq!(page["status"], 200, "{page}");
    assert_eq!(statuses(&server, key, "ann@x.test"), {
        let mut both = vec![
            (news.clone(), "subscribed".to_string()),
            (offers.clone(), "subscribed".to_string()),
        ];
        both.sort();
        both
    });

    // One click: ann leaves News, stays on Offers, and is not suppressed.
    let clicked = form(&server, &path, "List-Unsubscribe=One-Click");
    assert_eq!(clicked["status"], 200, "{clicked}");
    assert!(
        clicked["body"]
            .as_str()
            .expect("html")
            .contains("配信を停止しました"),
        "{clicked}"
    );
    let mut expected = vec![
        (news.clone(), "unsubscribed".to_string()),
        (offers.clone(), "subscribed".to_string()),
    ];
    expected.sort();
    assert_eq!(statuses(&server, key, "ann@x.test"), expected);
    let ann = ok(
        call(&server, "GET", "/v1/contacts/ann@x.test", key, Value::Null),
        200,
    );
    assert_eq!(
        ann["suppressed"],
        Value::Null,
        "a list unsubscribe suppresses nothing"
    );

    // The form: both checked → News again; leave all → neither.
    let saved = form(
        &server,
        &path,
        &format!("list={news}&list={offers}&action=save"),
    );
    assert!(
        saved["body"]
            .as_str()
            .expect("html")
            .contains("設定を保存しました"),
        "{saved}"
    );
    let mut expected = vec![
        (news.clone(), "subscribed".to_string()),
        (offers.clone(), "subscribed".to_string()),
    ];
    expected.sort();
    assert_eq!(statuses(&server, key, "ann@x.test"), expected);
    form(&server, &path, "action=leave_all");
    let mut expected = vec![
        (news.clone(), "unsubscribed".to_string()),
        (offers.clone(), "unsubscribed".to_string()),
    ];
    expected.sort();
    assert_eq!(statuses(&server, key, "ann@x.test"), expected);
    // Bob is untouched.
    assert!(
        statuses(&server, key, "bob@x.test")
            .iter()
            .all(|(_, s)| s == "subscribed")
    );

    // Forged or altered links: 404.
    let mut altered = path.clone();
    let last = altered.pop().expect("a character");
    altered.push(if last == '0' { '1' } else { '0' });
    assert_eq!(
        form(&server, &altered, "List-Unsubscribe=One-Click")["status"],
        404
    );
    assert_eq!(
        form(
            &server,
            "/v1/preferences/00.00",
            "List-Unsubscribe=One-Click"
        )["status"],
        404
    );

    // Every change is an event.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = ok(
            call(
                &server,
                "GET",
                "/v1/events?type=unsubscribed",
                key,
                Value::Null,
            ),
            200,
        );
        let events = page["events"].as_array().expect("events").clone();
        if events.len() == 2 {
            assert_eq!(events[0]["detail"]["lists"], json!([news]));
            for event in &events {
                assert_eq!(event["detail"]["campaign_id"], id.as_str(), "{event}");
            }
            assert_eq!(events[0]["detail"]["via"], "one-click");
            assert_eq!(events[1]["detail"]["via"], "preferences");
            break;
        }
        assert!(Instant::now() < deadline, "{events:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The campaign's report counts both, and the webhook got them with its id.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
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
        let got = receiver.verified(&secret);
        assert_eq!(got["bad_signatures"], 0, "{got}");
        let hooked: Vec<&Value> = got["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["type"] == "unsubscribed")
            .collect();
        if report["totals"]["unsubscribed"] == 2 && hooked.len() == 2 {
            for event in hooked {
                assert_eq!(event["detail"]["campaign_id"], id.as_str(), "{event}");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "report {report}, webhook {hooked:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
