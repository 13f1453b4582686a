//! Double opt-in end to end: a list's confirmation mail set over the API, the public
//! subscription form posted as a browser would (Python's urllib), the confirmation mail
//! delivered to a real sink with its signed link, the link's page, the confirming POST,
//! and the consent recorded; the honeypot, the rate limit and forged links refused.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::{add_domain, delivered, relaying_to_sink_with};
use crate::harness::{TestServer, python_json};

fn call(server: &TestServer, method: &str, path: &str, token: &str, body: Value) -> Value {
    let url = format!("http://{}{path}", server.http);
    let body = if body.is_null() {
        "-".to_string()
    } else {
        body.to_string()
    };
    python_json("api_client.py", &[&url, token, &body, "{}", method])
}

fn form(server: &TestServer, path: &str, fields: &[&str]) -> Value {
    let url = format!("http://{}{path}", server.http);
    let mut args = vec![url.as_str()];
    args.extend_from_slice(fields);
    python_json("form_post.py", &args)
}

#[test]
fn a_form_subscription_is_confirmed_through_the_mailed_link() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (sink, server) = relaying_to_sink_with(
        capture.path(),
        "[http]\npublic_url = \"https://lists.acme.test\"",
    );
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    let list = call(
        &server,
        "POST",
        "/v1/lists",
        key,
        json!({"name": "News", "double_opt_in": true}),
    );
    let list_id = list["body"]["id"].as_str().expect("id").to_string();

    // Not before the list says what to send.
    let early = form(
        &server,
        &format!("/v1/forms/{list_id}"),
        &["email=ann@x.test"],
    );
    assert_eq!(early["status"], 503, "{early}");
    let bad_from = call(
        &server,
        "POST",
        &format!("/v1/lists/{list_id}/confirmation"),
        key,
        json!({"from": "news@other.test", "subject": "Confirm", "text": "Go {{ confirm_url }}"}),
    );
    assert_eq!(bad_from["body"]["errors"][0]["field"], "from", "{bad_from}");
    let set = call(
        &server,
        "POST",
        &format!("/v1/lists/{list_id}/confirmation"),
        key,
        json!({"from": "news@acme.test", "subject": "Please confirm",
               "text": "Confirm your subscription: {{ confirm_url }}"}),
    );
    assert_eq!(set["status"], 200, "{set}");
    assert_eq!(set["body"]["confirmation"]["from"], "news@acme.test");

    // A person: unconfirmed, and the mail goes out.
    let sent = form(
        &server,
        &format!("/v1/forms/{list_id}"),
        &["email=Ann@X.test", "website="],
    );
    assert_eq!(sent["status"], 200, "{sent}");
    assert!(
        sent["body"]
            .as_str()
            .unwrap_or("")
            .contains("check your inbox"),
        "{sent}"
    );
    let news = call(
        &server,
        "GET",
        &format!("/v1/lists/{list_id}"),
        key,
        Value::Null,
    );
    assert_eq!(
        (&news["body"]["unconfirmed"], &news["body"]["subscribed"]),
        (&json!(1), &json!(0))
    );
    // A bot filling the honeypot: answered the same, nothing recorded.
    let bot = form(
        &server,
        &format!("/v1/forms/{list_id}"),
        &["email=bot@x.test", "website=http://spam"],
    );
    assert_eq!(bot["status"], 200);
    assert_eq!(
        call(&server, "GET", "/v1/contacts/bot@x.test", key, Value::Null)["status"],
        404
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    while delivered(capture.path()) < 1 {
        assert!(Instant::now() < deadline, "no confirmation mail delivered");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mail = std::fs::read_dir(capture.path())
        .expect("capture")
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| std::fs::read_to_string(e.path()).expect("read"))
        .expect("mail")
        // Quoted-printable soft line breaks (the link is longer than a line).
        .replace("=\r\n", "");
    assert!(mail.contains("Subject: Please confirm"), "{mail}");
    let link_at = mail
        .find("https://lists.acme.test/v1/confirm/")
        .expect("link in the mail");
    let token: String = mail[link_at + "https://lists.acme.test/v1/confirm/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '.')
        .collect();

    // The link's page asks; only its POST confirms. A forged token is refused.
    let url = format!("http://{}/v1/confirm/{token}", server.http);
    let shown = python_json("api_client.py", &[&url, "-", "-", "{}", "GET"]);
    assert_eq!(shown["status"], 200);
    assert!(
        shown["body"]
            .as_str()
            .unwrap_or("")
            .contains("Confirm your subscription to News")
    );
    let news = call(
        &server,
        "GET",
        &format!("/v1/lists/{list_id}"),
        key,
        Value::Null,
    );
    assert_eq!(news["body"]["subscribed"], 0, "a GET confirmed");
    let mut forged = token.clone();
    forged.replace_range(0..2, if &token[0..2] == "6c" { "6d" } else { "6c" });
    assert_eq!(
        form(&server, &format!("/v1/confirm/{forged}"), &[])["status"],
        404
    );
    let confirmed = form(&server, &format!("/v1/confirm/{token}"), &[]);
    assert_eq!(confirmed["status"], 200, "{confirmed}");
    let news = call(
        &server,
        "GET",
        &format!("/v1/lists/{list_id}"),
        key,
        Value::Null,
    );
    assert_eq!(
        (&news["body"]["unconfirmed"], &news["body"]["subscribed"]),
        (&json!(0), &json!(1))
    );
    let ann = call(&server, "GET", "/v1/contacts/ann@x.test", key, Value::Null);
    let consent = &ann["body"]["lists"][0]["consent"];
    assert_eq!(
        consent["source"], "form",
        "the first consent stays on record: {ann}"
    );
    assert_eq!(consent["address"], "127.0.0.1");
    assert!(consent["confirmed_ms"].as_i64().is_some(), "{ann}");

    // Five posts a minute per address, then 429.
    let mut statuses = Vec::new();
    for i in 0..5 {
        let email = format!("email=p{i}@x.test");
        statuses.push(form(&server, &format!("/v1/forms/{list_id}"), &[&email])["status"].clone());
    }
    assert_eq!(statuses.last(), Some(&json!(429)), "{statuses:?}");
    drop(server);
    sink.stop();
}
