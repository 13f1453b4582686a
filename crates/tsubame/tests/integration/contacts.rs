//! Contacts, lists and segments over the native API, through Python's urllib against the
//! real binary: typed properties, all-or-nothing upserts with errors naming the field,
//! suppression shown on the contact, list counts and consent, segment previews with errors
//! naming the column, saved segments, and another tenant seeing none of it.

use serde_json::{Value, json};

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

fn ok(answer: Value, status: u64) -> Value {
    assert_eq!(answer["status"], status, "{answer}");
    answer["body"].clone()
}

#[test]
fn contacts_lists_and_segments_over_the_api() {
    let server = TestServer::start("");
    server.cli(&["tenant", "add", "acme"]);
    server.cli(&["tenant", "add", "beta"]);
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    let reader = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "read"]);
    let reader = reader.trim();
    let stranger = server.cli(&["key", "add", "--tenant", "beta", "--scopes", "all"]);
    let stranger = stranger.trim();

    for (name, kind) in [
        ("signed_up", "datetime"),
        ("score", "number"),
        ("vip", "boolean"),
    ] {
        ok(
            call(
                &server,
                "POST",
                "/v1/contacts/properties",
                key,
                json!({"name": name, "type": kind}),
            ),
            201,
        );
    }
    let plan = call(
        &server,
        "POST",
        "/v1/contacts/properties",
        key,
        json!({"name": "plan", "type": "choice", "choices": ["free", "pro"]}),
    );
    assert_eq!(ok(plan, 201)["choices"], json!(["free", "pro"]));
    let taken = call(
        &server,
        "POST",
        "/v1/contacts/properties",
        key,
        json!({"name": "plan", "type": "text"}),
    );
    assert_eq!(
        (&taken["status"], &taken["body"]["errors"][0]["field"]),
        (&json!(400), &json!("name"))
    );
    let read_only = call(
        &server,
        "POST",
        "/v1/contacts/properties",
        reader,
        json!({"name": "x", "type": "text"}),
    );
    assert_eq!(read_only["status"], 403);

    // All or nothing: one bad contact and none is written; each error names its field.
    let bad = call(
        &server,
        "POST",
        "/v1/contacts",
        key,
        json!({"contacts": [
            {"address": "ann@x.test", "properties": {"plan": "gold"}},
            {"address": "not an address"},
            {"address": "bob@x.test", "timezone": "Mars/Base"},
        ]}),
    );
    assert_eq!(bad["status"], 400, "{bad}");
    let fields: Vec<&str> = bad["body"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "contacts[0].properties.plan",
            "contacts[1].address",
            "contacts[2].timezone"
        ]
    );
    let none = ok(call(&server, "GET", "/v1/contacts", key, Value::Null), 200);
    assert_eq!(none["contacts"], json!([]));

    let added = ok(
        call(
            &server,
            "POST",
            "/v1/contacts",
            key,
            json!({"contacts": [
                {"address": "Ann@X.test", "country": "jp", "timezone": "Asia/Tokyo", "locale": "ja",
                 "properties": {"plan": "pro", "signed_up": "2026-11-20T09:00:00+09:00", "score": 10, "vip": true}},
                {"email": "bob@x.test", "country": "JP", "properties": {"plan": "free", "score": 3}},
                {"address": "cy@y.test", "country": "US"},
            ]}),
        ),
        200,
    );
    assert_eq!((&added["added"], &added["updated"]), (&json!(3), &json!(0)));
    let ann_id = added["ids"][0].as_i64().expect("id");
    let ann = ok(
        call(&server, "GET", "/v1/contacts/ann@x.test", key, Value::Null),
        200,
    );
    assert_eq!(ann["id"], ann_id);
    assert_eq!(ann["country"], "JP");
    assert_eq!(ann["properties"]["signed_up"], "2026-11-20T00:00:00Z");
    assert_eq!(ann["suppressed"], Value::Null);

    // The suppression list stays the source of truth: the contact shows it.
    ok(
        call(
            &server,
            "POST",
            "/v1/suppressions",
            key,
            json!({"addresses": ["bob@x.test"], "reason": "manual"}),
        ),
        200,
    );
    let bob = ok(
        call(&server, "GET", "/v1/contacts/bob@x.test", key, Value::Null),
        200,
    );
    assert_eq!(bob["suppressed"]["reason"], "manual", "{bob}");

    // A list: members by id or address (a new address becomes a contact), counts, consent.
    let news = ok(
        call(
            &server,
            "POST",
            "/v1/lists",
            key,
            json!({"name": "Newsletter"}),
        ),
        201,
    );
    let news_id = news["id"].as_str().expect("id").to_string();
    let after = ok(
        call(
            &server,
            "POST",
            &format!("/v1/lists/{news_id}/members"),
            key,
            json!({"contacts": [ann_id, "bob@x.test", "dee@z.test"], "consent_address": "192.0.2.9"}),
        ),
        200,
    );
    assert_eq!(
        (&after["subscribed"], &after["unconfirmed"]),
        (&json!(3), &json!(0))
    );
    let after = ok(
        call(
            &server,
            "POST",
            &format!("/v1/lists/{news_id}/members"),
            key,
            json!({"contacts": ["dee@z.test"], "status": "unsubscribed"}),
        ),
        200,
    );
    assert_eq!(
        (&after["subscribed"], &after["unsubscribed"]),
        (&json!(2), &json!(1))
    );
    let ann = ok(
        call(
            &server,
            "GET",
            &format!("/v1/contacts/{ann_id}"),
            key,
            Value::Null,
        ),
        200,
    );
    assert_eq!(ann["lists"][0]["consent"]["address"], "192.0.2.9");
    assert_eq!(ann["lists"][0]["consent"]["source"], "api");
    let members = ok(
        call(
            &server,
            "GET",
            &format!("/v1/lists/{news_id}/members?status=subscribed"),
            key,
            Value::Null,
        ),
        200,
    );
    assert_eq!(members["members"].as_array().map(Vec::len), Some(2));
    let double = ok(
        call(
            &server,
            "POST",
            "/v1/lists",
            key,
            json!({"name": "Offers", "double_opt_in": true}),
        ),
        201,
    );
    let offers = ok(
        call(
            &server,
            "POST",
            &format!("/v1/lists/{}/members", double["id"].as_str().expect("id")),
            key,
            json!({"contacts": ["cy@y.test"]}),
        ),
        200,
    );
    assert_eq!(
        offers["unconfirmed"], 1,
        "a double opt-in list starts members unconfirmed"
    );

    // Segments: preview with count and sample; errors name the column and the property.
    let preview = |query: &str| {
        call(
            &server,
            "POST",
            "/v1/segments/preview",
            key,
            json!({"query": query}),
        )
    };
    let japan = ok(
        preview(r#"country = "JP" and in_list("Newsletter") and not suppressed()"#),
        200,
    );
    assert_eq!(japan["count"], 1, "{japan}");
    assert_eq!(japan["sample"][0]["address"], "ann@x.test");
    let wrong = preview(r#"country = "JP" and sign_up > now() - 30d"#);
    assert_eq!(wrong["status"], 400);
    assert_eq!(wrong["body"]["errors"][0]["field"], "query");
    let message = wrong["body"]["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.starts_with("column 20: unknown property sign_up"),
        "{message}"
    );
    let saved = ok(
        call(
            &server,
            "POST",
            "/v1/segments",
            key,
            json!({"name": "Pro", "query": r#"plan = "pro""#}),
        ),
        201,
    );
    let segment = ok(
        call(
            &server,
            "GET",
            &format!("/v1/segments/{}", saved["id"].as_str().expect("id")),
            key,
            Value::Null,
        ),
        200,
    );
    assert_eq!(segment["count"], 1);

    // Export: the segment's contacts as CSV, with the columns an import maps back.
    let export = call(
        &server,
        "GET",
        "/v1/contacts/export?segment=country%20%3D%20%22JP%22",
        key,
        Value::Null,
    );
    assert_eq!(export["status"], 200, "{export}");
    let text = export["body"].as_str().expect("csv");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "email,timezone,locale,country,plan,score,signed_up,vip,suppressed"
    );
    assert_eq!(
        lines[1],
        "ann@x.test,Asia/Tokyo,ja,JP,pro,10,2026-11-20T00:00:00Z,true,"
    );
    assert_eq!(lines[2], "bob@x.test,,,JP,free,3,,,yes");
    assert_eq!(lines.len(), 3);
    let bad = call(
        &server,
        "GET",
        "/v1/contacts/export?segment=nope%20%3D%201",
        key,
        Value::Null,
    );
    assert_eq!(bad["body"]["errors"][0]["field"], "segment");

    // Another tenant: every id is a 404, and its own lists and contacts are empty.
    for path in [
        format!("/v1/contacts/{ann_id}"),
        "/v1/contacts/ann@x.test".to_string(),
        format!("/v1/lists/{news_id}"),
        format!("/v1/lists/{news_id}/members"),
        format!("/v1/segments/{}", saved["id"].as_str().expect("id")),
    ] {
        assert_eq!(
            call(&server, "GET", &path, stranger, Value::Null)["status"],
            404,
            "{path}"
        );
    }
    assert_eq!(
        call(
            &server,
            "POST",
            &format!("/v1/lists/{news_id}/members"),
            stranger,
            json!({"contacts": [ann_id]})
        )["status"],
        404
    );
    assert_eq!(
        call(
            &server,
            "DELETE",
            &format!("/v1/contacts/{ann_id}"),
            stranger,
            Value::Null
        )["status"],
        404
    );
    let theirs = ok(
        call(
            &server,
            "POST",
            "/v1/segments/preview",
            stranger,
            json!({"query": ""}),
        ),
        200,
    );
    assert_eq!(theirs["count"], 0);

    // Removing a contact keeps the list's counts right.
    assert_eq!(
        call(
            &server,
            "DELETE",
            &format!("/v1/contacts/{ann_id}"),
            key,
            Value::Null
        )["status"],
        204
    );
    let news = ok(
        call(&server, "GET", "/v1/lists/Newsletter", key, Value::Null),
        200,
    );
    assert_eq!(
        (&news["subscribed"], &news["unsubscribed"]),
        (&json!(1), &json!(1))
    );
}

#[test]
fn stored_templates_in_three_dialects_with_versions_and_previews() {
    let server = TestServer::start("");
    server.cli(&["tenant", "add", "acme"]);
    server.cli(&["tenant", "add", "beta"]);
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    let stranger = server.cli(&["key", "add", "--tenant", "beta", "--scopes", "all"]);
    let stranger = stranger.trim();
    let hb = ok(
        call(
            &server,
            "POST",
            "/v1/templates",
            key,
            json!({"name": "Welcome", "dialect": "handlebars"}),
        ),
        201,
    );
    let id = hb["id"].as_str().expect("id").to_string();
    // A version must render with its own test data; the error names the part.
    let broken = call(
        &server,
        "POST",
        &format!("/v1/templates/{id}/versions"),
        key,
        json!({"subject": "Hi", "html": "{{#if x}}open"}),
    );
    assert_eq!(
        (&broken["status"], &broken["body"]["errors"][0]["field"]),
        (&json!(400), &json!("html"))
    );
    let v1 = ok(
        call(
            &server,
            "POST",
            &format!("/v1/templates/{id}/versions"),
            key,
            json!({"subject": "Welcome, {{name}}", "html": "<p>{{name}}</p>{{#each items}}<li>{{this}}</li>{{/each}}",
                   "text": "Hi {{name}}", "test_data": {"name": "Ann", "items": ["tea"]}}),
        ),
        201,
    );
    assert_eq!(v1["version"], 1);
    let shown = ok(
        call(
            &server,
            "POST",
            &format!("/v1/templates/{id}/versions/1/preview"),
            key,
            json!({"data": {"name": "A & B", "items": ["<x>"]}}),
        ),
        200,
    );
    assert_eq!(shown["subject"], "Welcome, A & B");
    assert_eq!(shown["html"], "<p>A &amp; B</p><li>&lt;x&gt;</li>");
    assert_eq!(shown["text"], "Hi A & B");
    let default = ok(
        call(
            &server,
            "POST",
            &format!("/v1/templates/{id}/versions/1/preview"),
            key,
            json!({}),
        ),
        200,
    );
    assert_eq!(
        default["subject"], "Welcome, Ann",
        "the test data by default"
    );
    ok(
        call(
            &server,
            "POST",
            &format!("/v1/templates/{id}/versions"),
            key,
            json!({"subject": "v2", "text": "t"}),
        ),
        201,
    );
    let template = ok(
        call(&server, "GET", "/v1/templates/Welcome", key, Value::Null),
        200,
    );
    assert_eq!(
        template["active_version"], 1,
        "a later version is not active unless asked"
    );
    let active = ok(
        call(
            &server,
            "POST",
            &format!("/v1/templates/{id}/versions/2/activate"),
            key,
            Value::Null,
        ),
        200,
    );
    assert_eq!(active["active_version"], 2);

    // The native and Mailjet dialects render their own syntax.
    for (dialect, subject) in [
        ("native", "Hi {{ name }}"),
        ("mailjet", "Hi {{var:name:\"friend\"}}"),
    ] {
        let t = ok(
            call(
                &server,
                "POST",
                "/v1/templates",
                key,
                json!({"name": dialect, "dialect": dialect}),
            ),
            201,
        );
        let tid = t["id"].as_str().expect("id");
        ok(
            call(
                &server,
                "POST",
                &format!("/v1/templates/{tid}/versions"),
                key,
                json!({"subject": subject, "text": "x", "test_data": {"name": "Ann"}}),
            ),
            201,
        );
        let p = ok(
            call(
                &server,
                "POST",
                &format!("/v1/templates/{tid}/versions/1/preview"),
                key,
                json!({}),
            ),
            200,
        );
        assert_eq!(p["subject"], "Hi Ann", "{dialect}");
    }

    // Another tenant: 404 everywhere.
    assert_eq!(
        call(
            &server,
            "GET",
            &format!("/v1/templates/{id}"),
            stranger,
            Value::Null
        )["status"],
        404
    );
    assert_eq!(
        call(
            &server,
            "POST",
            &format!("/v1/templates/{id}/versions/1/preview"),
            stranger,
            json!({})
        )["status"],
        404
    );
    assert_eq!(
        call(
            &server,
            "DELETE",
            &format!("/v1/templates/{id}"),
            stranger,
            Value::Null
        )["status"],
        404
    );
    assert_eq!(
        call(
            &server,
            "DELETE",
            &format!("/v1/templates/{id}"),
            key,
            Value::Null
        )["status"],
        204
    );
}

#[test]
fn a_message_sent_by_stored_template_carries_the_rendered_version() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (sink, server) = crate::api::relaying_to_sink_with(capture.path(), "");
    server.cli(&["tenant", "add", "acme"]);
    server.cli(&["tenant", "add", "beta"]);
    crate::api::add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    let theirs = server.cli(&["key", "add", "--tenant", "beta", "--scopes", "all"]);
    let t = ok(
        call(
            &server,
            "POST",
            "/v1/templates",
            key,
            json!({"name": "Receipt", "dialect": "handlebars"}),
        ),
        201,
    );
    let id = t["id"].as_str().expect("id").to_string();
    ok(
        call(
            &server,
            "POST",
            &format!("/v1/templates/{id}/versions"),
            key,
            json!({"subject": "Receipt {{order}}", "text": "Thanks {{name}}: {{#each items}}{{this}};{{/each}}",
                   "test_data": {"order": 1, "name": "x", "items": []}}),
        ),
        201,
    );
    let message = |extra: Value| {
        let mut m = json!({"from": "shop@acme.test", "to": ["ann@x.test"], "template_id": "Receipt",
                           "variables": {"order": 42, "name": "Ann {{x}}", "items": ["tea", "cake"]}});
        if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
            m.extend(extra.clone());
        }
        json!({ "messages": [m] })
    };
    let sent = call(&server, "POST", "/v1/messages", key, message(json!({})));
    assert_eq!(sent["status"], 200, "{sent}");
    // The template gives the subject: a message cannot give it too.
    let both = call(
        &server,
        "POST",
        "/v1/messages",
        key,
        message(json!({"subject": "mine"})),
    );
    assert_eq!(
        both["body"]["errors"][0]["field"], "messages[0].subject",
        "{both}"
    );
    // Another tenant's template name means nothing to beta.
    let foreign = call(
        &server,
        "POST",
        "/v1/messages",
        theirs.trim(),
        message(json!({})),
    );
    assert_eq!(
        foreign["body"]["errors"][0]["field"], "messages[0].template_id",
        "{foreign}"
    );

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while crate::api::delivered(capture.path()) < 1 {
        assert!(std::time::Instant::now() < deadline, "not delivered");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mail = std::fs::read_dir(capture.path())
        .expect("capture")
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| std::fs::read_to_string(e.path()).expect("read"))
        .expect("mail");
    assert!(mail.contains("Subject: Receipt 42"), "{mail}");
    // Variables are data: a value that looks like a template is not rendered again.
    assert!(mail.contains("Thanks Ann {{x}}: tea;cake;"), "{mail}");
    let template = ok(
        call(
            &server,
            "GET",
            &format!("/v1/templates/{id}"),
            key,
            Value::Null,
        ),
        200,
    );
    assert!(
        template["versions"][0]["used_ms"].as_i64().is_some(),
        "the version is frozen: {template}"
    );
    drop(server);
    sink.stop();
}
