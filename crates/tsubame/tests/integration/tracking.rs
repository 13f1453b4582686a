//! Open and click tracking end to end: a campaign's HTML, read back from the sink with
//! Python's email parser, has its links through `track.<domain>` and an open pixel; fetching
//! them (Python's http.client) answers a GIF and a redirect to the original URL, records
//! `opened`/`clicked` with the campaign id, the user agent and a truncated address, marks
//! scanners and prefetches as `machine`; a forged or altered token is a 404. The tenant's
//! webhook (a Python receiver checking the signatures) gets the opened and clicked events
//! with the campaign's id.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::{add_domain, relaying_to_sink_with_config};
use crate::campaigns::{call, list_of, ok, sent_campaign, wait_state};
use crate::events::Receiver;
use crate::harness::python_json;

const PERSON: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const SCANNER: &str = "Mozilla/5.0 (X11) AppleWebKit/537.36 HeadlessChrome/120.0";

/// The captured message whose subject is `subject`, waiting for it.
fn captured_with(dir: &std::path::Path, subject: &str) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = std::fs::read_dir(dir)
            .expect("capture")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .find(|p| {
                std::fs::read_to_string(p)
                    .is_ok_and(|t| t.contains(&format!("\r\nSubject: {subject}\r\n")))
            });
        if let Some(found) = found {
            return found;
        }
        assert!(Instant::now() < deadline, "{subject:?} never arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn send(server: &crate::harness::TestServer, key: &str, subject: &str) -> String {
    let id = sent_campaign(
        server,
        key,
        json!({
            "name": subject,
            "audience": {"lists": ["News"]},
            "content": {"from": "news@acme.test", "subject": subject,
                        "html": "<html><body><p><a href=\"https://shop.example/a?x=1&amp;y=2\">Shop</a> \
                                 <a href=\"mailto:help@acme.test\">Help</a> \
                                 <a href=\"https://acme.example/b\">B</a></p></body></html>",
                        "text": "Hi"},
        }),
    );
    wait_state(server, key, &id, "sent");
    id
}

fn path_of(url: &str) -> String {
    let rest = url.split_once("://").expect("absolute URL").1;
    format!("/{}", rest.split_once('/').expect("a path").1)
}

#[test]
fn opens_and_clicks_are_recorded_and_forged_links_refused() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (_sink, server) = relaying_to_sink_with_config(
        capture.path(),
        "[http]\npublic_url = \"https://mail.platform.test\"\n\
         [webhooks]\nallow_networks = [\"127.0.0.0/8\"]\nbackoff_max = \"1s\"\n",
    );
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let records = server.cli(&["domain", "records", "acme.test", "--tenant", "acme"]);
    assert!(
        records.contains("track.acme.test CNAME"),
        "the tracking host is among the records to publish:\n{records}"
    );
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    list_of(&server, key, "News", &["ann@x.test".to_string()]);
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
    let id = send(&server, key, "Tracked");
    let eml = captured_with(capture.path(), "Tracked");
    let html = python_json("tracking_links.py", &[eml.to_str().expect("utf8")]);
    let links: Vec<String> = html["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| l.as_str().expect("href").to_string())
        .collect();
    assert_eq!(links.len(), 3, "{html}");
    assert!(
        links[0].starts_with("https://track.acme.test/t/c/"),
        "{html}"
    );
    assert_eq!(
        links[1], "mailto:help@acme.test",
        "not an http link: left alone"
    );
    assert!(
        links[2].starts_with("https://track.acme.test/t/c/"),
        "{html}"
    );
    let pixel = html["pixels"][0].as_str().expect("a pixel").to_string();
    assert!(pixel.starts_with("https://track.acme.test/t/o/"), "{html}");

    let http = server.http.to_string();
    let fetch = |url: &str, agent: &str| {
        python_json(
            "track_fetch.py",
            &[&http, &path_of(url), "track.acme.test", agent],
        )
    };
    // Seconds after sending, a scanner follows the link and an image proxy prefetches.
    let scanned = fetch(&links[0], SCANNER);
    assert_eq!(scanned["status"], 302);
    assert_eq!(scanned["location"], "https://shop.example/a?x=1&y=2");
    // Later, the person opens and clicks.
    std::thread::sleep(Duration::from_millis(10_500));
    let opened = fetch(&pixel, PERSON);
    assert_eq!(
        (&opened["status"], &opened["content_type"]),
        (&json!(200), &json!("image/gif"))
    );
    let clicked = fetch(&links[2], PERSON);
    assert_eq!(clicked["location"], "https://acme.example/b");

    // Forged and altered tokens: 404, nothing recorded.
    let mut altered = path_of(&links[2]);
    let last = altered.pop().expect("a character");
    altered.push(if last == 'A' { 'B' } else { 'A' });
    for path in [altered.as_str(), "/t/c/AAAA", "/t/o/forged.gif"] {
        let answer = python_json("track_fetch.py", &[&http, path, "track.acme.test", PERSON]);
        assert_eq!(answer["status"], 404, "{path}: {answer}");
    }
    // An open token is no click token.
    let swapped = path_of(&pixel)
        .replace("/t/o/", "/t/c/")
        .replace(".gif", "");
    assert_eq!(
        python_json(
            "track_fetch.py",
            &[&http, &swapped, "track.acme.test", PERSON]
        )["status"],
        404
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let events = loop {
        let page = ok(
            call(
                &server,
                "GET",
                "/v1/events?type=opened,clicked",
                key,
                Value::Null,
            ),
            200,
        );
        let events = page["events"].as_array().expect("events").clone();
        if events.len() >= 3 || Instant::now() > deadline {
            break events;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(events.len(), 3, "{events:?}");
    for event in &events {
        assert_eq!(event["recipient"], "ann@x.test");
        assert_eq!(event["detail"]["campaign_id"], id.as_str());
        assert_eq!(
            event["detail"]["ip"], "127.0.0.0",
            "the address is truncated"
        );
    }
    // The webhook got the same events, signed, with the campaign's id.
    let deadline = Instant::now() + Duration::from_secs(20);
    let hooked = loop {
        let got = receiver.verified(&secret);
        assert_eq!(got["bad_signatures"], 0, "{got}");
        let engaged: Vec<Value> = got["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["type"] == "opened" || e["type"] == "clicked")
            .cloned()
            .collect();
        if engaged.len() >= 3 || Instant::now() > deadline {
            break engaged;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let kinds: Vec<&str> = hooked.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds, ["clicked", "opened", "clicked"], "{hooked:?}");
    for event in &hooked {
        assert_eq!(event["detail"]["campaign_id"], id.as_str(), "{event}");
    }
    let scan = &events[0];
    assert_eq!(
        (&scan["type"], &scan["detail"]["machine"]),
        (&json!("clicked"), &json!(true))
    );
    assert_eq!(scan["detail"]["link"], 1);
    let open = &events[1];
    assert_eq!(
        (&open["type"], &open["detail"]["machine"]),
        (&json!("opened"), &json!(false))
    );
    assert_eq!(open["detail"]["user_agent"], PERSON);
    let click = &events[2];
    assert_eq!(
        (&click["type"], &click["detail"]["machine"]),
        (&json!("clicked"), &json!(false))
    );
    assert_eq!(click["detail"]["link"], 2);
    assert_eq!(click["detail"]["url"], "https://acme.example/b");

    // The campaign's report counts what happened, machines apart.
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = loop {
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
        if report["totals"]["delivered"] == 1 || Instant::now() > deadline {
            break report;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let totals = &report["totals"];
    assert_eq!(
        [
            &totals["sent"],
            &totals["delivered"],
            &totals["opened"],
            &totals["opened_unique"],
            &totals["clicked"],
            &totals["clicked_unique"],
            &totals["clicked_machine"]
        ],
        [
            &json!(1),
            &json!(1),
            &json!(1),
            &json!(1),
            &json!(1),
            &json!(1),
            &json!(1)
        ],
        "{report}"
    );
    assert_eq!(
        report["links"],
        json!([{"link": 2, "clicks": 1, "unique": 1}]),
        "{report}"
    );
    assert_eq!(report["rates"]["open"], 1.0, "{report}");
    assert_eq!(report["rates"]["click"], 1.0, "{report}");
    assert_eq!(report["providers"]["other"]["delivered"], 1, "{report}");
    // ann has no zone or country: UTC.
    assert_eq!(report["zones"]["UTC"]["sent"], 1, "{report}");
    assert_eq!(report["zones"]["UTC"]["delivered"], 1, "{report}");
    let csv = python_json(
        "api_client.py",
        &[
            &format!("http://{}/v1/campaigns/{id}/report.csv", server.http),
            key,
            "-",
            "{}",
            "GET",
        ],
    );
    let csv = csv["body"].as_str().expect("csv text").to_string();
    assert!(csv.starts_with("metric,dimension,count\r\n"), "{csv}");
    assert!(csv.contains("clicked_machine,,1\r\n"), "{csv}");
    assert!(csv.contains("clicked,link:2,1\r\n"), "{csv}");

    // The tenant turns tracking off: links and images are left as they are.
    server.cli(&["tenant", "tracking", "acme", "off"]);
    send(&server, key, "Untracked");
    let eml = captured_with(capture.path(), "Untracked");
    let html = python_json("tracking_links.py", &[eml.to_str().expect("utf8")]);
    assert_eq!(
        html,
        json!({"links": ["https://shop.example/a?x=1&y=2", "mailto:help@acme.test", "https://acme.example/b"], "pixels": []})
    );
    // Full: the whole client address is kept.
    server.cli(&["tenant", "tracking", "acme", "full"]);
    send(&server, key, "Full");
    let eml = captured_with(capture.path(), "Full");
    let html = python_json("tracking_links.py", &[eml.to_str().expect("utf8")]);
    let pixel = html["pixels"][0].as_str().expect("a pixel").to_string();
    assert_eq!(fetch(&pixel, PERSON)["status"], 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = ok(
            call(&server, "GET", "/v1/events?type=opened", key, Value::Null),
            200,
        );
        let events = page["events"].as_array().expect("events").clone();
        if events.len() == 2 {
            assert_eq!(events[1]["detail"]["ip"], "127.0.0.1", "{events:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{events:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
