//! The audience and templates through the compatible APIs, driven by the official clients
//! (Mailjet's `mailjet_rest`, SendGrid's `sendgrid`) against the real binary: what customer
//! code written for those services calls works here unchanged, and another tenant sees none
//! of it.

use serde_json::Value;

use crate::api::add_domain;
use crate::harness::{TestServer, python_json};

/// The Mailjet API key and secret of a fresh tsubame key (`tsb_<id>` and the rest).
fn mailjet_pair(server: &TestServer, tenant: &str) -> (String, String) {
    let token = server.cli(&["key", "add", "--tenant", tenant, "--scopes", "all"]);
    let (id, secret) = token.trim()[4..].split_once('_').expect("token shape");
    (format!("tsb_{id}"), secret.to_string())
}

/// A queued message as Python's email parser reads it.
fn summary(server: &TestServer, id: &str) -> Value {
    let content = server.stored_content(id).expect("queued message");
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), content).expect("write");
    python_json("mime_summary.py", &[file.path().to_str().expect("utf8")])
}

fn step<'a>(steps: &'a Value, name: &str, status: u64) -> &'a Value {
    assert_eq!(steps[name]["status"], status, "{name}: {}", steps[name]);
    &steps[name]["body"]
}

#[test]
fn the_mailjet_client_manages_the_audience_and_sends_by_template() {
    let server = TestServer::start("");
    server.cli(&["tenant", "add", "acme"]);
    server.cli(&["tenant", "add", "beta"]);
    add_domain(&server, "acme", "acme.test");
    let (key, secret) = mailjet_pair(&server, "acme");
    let (other_key, other_secret) = mailjet_pair(&server, "beta");
    let url = format!("http://{}/", server.http);
    let steps = python_json(
        "mailjet_audience.py",
        &[&url, &key, &secret, &other_key, &other_secret],
    );

    // Properties, lists and contacts, with Mailjet's duplicate errors.
    assert_eq!(step(&steps, "age", 201)["Data"][0]["Datatype"], "float");
    assert_eq!(step(&steps, "metadata", 200)["Count"], 2);
    let list = &step(&steps, "list", 201)["Data"][0];
    let news = list["ID"].as_i64().expect("a numeric list id");
    let again = step(&steps, "list_again", 400);
    assert!(
        again["ErrorMessage"].as_str().unwrap().starts_with("MJ18"),
        "{again}"
    );
    assert_eq!(step(&steps, "rename", 200)["Data"][0]["Name"], "News");
    let ann = &step(&steps, "ann", 201)["Data"][0];
    assert_eq!(
        (&ann["Email"], &ann["Name"]),
        (&Value::from("ann@x.test"), &Value::from("Ann"))
    );
    step(&steps, "ann_again", 400);
    let data = &step(&steps, "ann_data_get", 200)["Data"][0]["Data"];
    let value = |name: &str| {
        data.as_array()
            .unwrap()
            .iter()
            .find(|d| d["Name"] == name)
            .map(|d| d["Value"].clone())
    };
    assert_eq!(value("age").and_then(|v| v.as_f64()), Some(35.0), "{data}");
    assert_eq!(value("city"), Some(Value::from("Kyoto")));
    let bad = step(&steps, "bad_data", 400);
    assert!(
        bad["ErrorMessage"].as_str().unwrap().contains("age"),
        "{bad}"
    );

    // Memberships: one by one, in bulk (a bad contact named in the job), and an
    // unsubscription that a later bulk add does not undo.
    step(&steps, "recipient", 201);
    step(&steps, "recipient_again", 400);
    let job = &step(&steps, "many_job", 200)["Data"][0];
    assert_eq!(job["Count"], 2, "{job}");
    assert!(
        job["Error"].as_str().unwrap().contains("Contacts[2]"),
        "{job}"
    );
    step(&steps, "bob_unsub", 200);
    step(&steps, "many_again", 201);
    let after = &step(&steps, "list_after", 200)["Data"][0];
    assert_eq!(after["SubscriberCount"], 2, "ann and cy; bob stays out");
    let members = step(&steps, "members", 200);
    assert_eq!(
        (&members["Count"], &members["Total"]),
        (&2.into(), &3.into())
    );
    let recipients = step(&steps, "recipients", 200);
    let unsubscribed: Vec<&Value> = recipients["Data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["IsUnsubscribed"] == true)
        .collect();
    assert_eq!(unsubscribed.len(), 1, "{recipients}");
    assert_eq!(
        step(&steps, "contact_lists", 200)["Data"][0]["ListID"],
        news
    );

    // The CSV import runs as a job; bad lines are in its error file; Bob, who left the
    // list, is updated but not re-subscribed.
    let status = &step(&steps, "import_status", 200)["Data"][0];
    assert_eq!(status["Status"], "Completed", "{status}");
    assert_eq!(status["Errcount"], 2, "{status}");
    assert_eq!(status["Method"], "addforce");
    let errors = step(&steps, "import_errors", 200).as_str().expect("csv");
    assert!(errors.starts_with("line,reason"), "{errors}");
    assert_eq!(errors.lines().count(), 3, "{errors}");
    let final_list = &step(&steps, "list_final", 200)["Data"][0];
    assert_eq!(final_list["SubscriberCount"], 3, "ann, cy and dan");

    // Segments from Mailjet expressions, checked against the properties.
    let filter = &step(&steps, "filter", 201)["Data"][0];
    assert_eq!(filter["Expression"], r#"(age >= 30) and (city = "Kyoto")"#);
    let bad = step(&steps, "bad_filter", 400);
    assert!(
        bad["ErrorMessage"].as_str().unwrap().contains("agee"),
        "{bad}"
    );
    step(&steps, "remove_filter", 204);

    // Templates: content read back, and sending by TemplateID renders it; an unknown
    // template (send-0010) and HTML beside a template's (send-0004) fail alone.
    let content = &step(&steps, "content_get", 200)["Data"][0];
    assert_eq!(content["Headers"]["Subject"], "Receipt {{var:order}}");
    let sent = step(&steps, "send", 400);
    let messages = sent["Messages"].as_array().expect("messages");
    assert_eq!(messages[0]["Status"], "success", "{sent}");
    assert_eq!(messages[1]["Errors"][0]["ErrorCode"], "send-0010");
    assert_eq!(messages[2]["Errors"][0]["ErrorCode"], "send-0004");
    let queued = server.queued_ids();
    assert_eq!(queued.len(), 1);
    let mail = summary(&server, &queued[0]);
    assert_eq!(mail["subject"], "Receipt 7");
    assert!(
        mail["html"]
            .as_str()
            .unwrap()
            .contains("Hi Ann &lt;3, order 7"),
        "{mail}"
    );
    // The version that was sent is kept; new content became a new version.
    step(&steps, "content_after_send", 201);
    let token = format!("{key}_{secret}");
    let url = format!("http://{}/v1/templates/Receipt", server.http);
    let template = python_json("api_client.py", &[&url, &token, "-", "{}", "GET"]);
    let versions = template["body"]["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2, "{template}");
    assert!(
        versions[0]["used_ms"].is_i64(),
        "the sent version is frozen"
    );
    assert_eq!(template["body"]["active_version"], 2);
    // The native API names the ids the compatible APIs know it by.
    assert_eq!(
        template["body"]["mailjet_id"],
        steps["template"]["body"]["Data"][0]["ID"]
    );
    assert!(
        template["body"]["sendgrid_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("d-")),
        "{template}"
    );

    // Another tenant sees none of it.
    for name in [
        "stranger_list",
        "stranger_contact",
        "stranger_template",
        "stranger_recipient",
    ] {
        step(&steps, name, 404);
    }
    assert_eq!(step(&steps, "stranger_lists", 200)["Count"], 0);
    step(&steps, "remove_recipient", 204);
    assert_eq!(
        step(&steps, "list_end", 200)["Data"][0]["SubscriberCount"],
        3
    );
}

#[test]
fn the_sendgrid_client_manages_the_audience_and_sends_dynamic_templates() {
    let server = TestServer::start("");
    server.cli(&["tenant", "add", "acme"]);
    server.cli(&["tenant", "add", "beta"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let other = server.cli(&["key", "add", "--tenant", "beta", "--scopes", "all"]);
    let host = format!("http://{}", server.http);
    let steps = python_json("sendgrid_audience.py", &[&host, key.trim(), other.trim()]);

    // Custom fields are the declared properties.
    assert_eq!(step(&steps, "field", 200)["field_type"], "Text");
    assert_eq!(
        step(&steps, "bad_field", 400)["errors"][0]["field"],
        "field_type"
    );
    let fields = step(&steps, "fields", 200);
    assert_eq!(
        fields["custom_fields"].as_array().unwrap().len(),
        2,
        "{fields}"
    );

    // Contacts upsert as a job: bad ones are named in it, the rest written and listed.
    let job = step(&steps, "job", 200);
    assert_eq!(job["results"]["created_count"], 2, "{job}");
    assert_eq!(job["results"]["errored_count"], 2, "{job}");
    let errors = job["results"]["errors"].to_string();
    assert!(
        errors.contains("contacts[2]") && errors.contains("postal_code"),
        "{errors}"
    );
    assert_eq!(step(&steps, "count", 200)["contact_count"], 2);
    assert_eq!(step(&steps, "list_count", 200)["contact_count"], 2);
    let search = step(&steps, "search", 200);
    let ann = &search["result"]["ann@x.test"]["contact"];
    assert_eq!(ann["first_name"], "Ann", "{search}");
    assert_eq!(ann["country"], "JP");
    assert_eq!(ann["custom_fields"]["plan"], "pro");
    assert_eq!(ann["list_ids"].as_array().unwrap().len(), 1);
    assert_eq!(search["result"]["zed@x.test"]["error"], "contact not found");
    step(&steps, "search_none", 404);
    assert_eq!(step(&steps, "rename", 200)["name"], "News");

    // Dynamic templates with versions; a version that does not parse is refused.
    let template = step(&steps, "template", 201)["id"].as_str().unwrap();
    assert!(template.starts_with("d-"), "{template}");
    step(&steps, "legacy", 400);
    assert_eq!(step(&steps, "version", 201)["active"], 1);
    assert_eq!(
        step(&steps, "bad_version", 400)["errors"][0]["field"],
        "subject"
    );
    let listed = step(&steps, "templates", 200);
    assert_eq!(listed["result"][0]["versions"].as_array().unwrap().len(), 1);
    step(&steps, "version_get", 200);

    // Sending by template renders each personalization with its data, HTML-escaped.
    step(&steps, "send", 202);
    let queued = server.queued_ids();
    assert_eq!(queued.len(), 2);
    let mails: Vec<Value> = queued.iter().map(|id| summary(&server, id)).collect();
    let ann_mail = mails
        .iter()
        .find(|m| m["subject"] == "Order 42 shipped")
        .unwrap_or_else(|| panic!("{mails:#?}"));
    let html = ann_mail["html"].as_str().unwrap();
    assert!(html.contains("Hi Ann &lt;b&gt;"), "{html}");
    assert!(
        html.contains("<li>Tea</li><li>Cups</li>") && html.contains("gift wrapped"),
        "{html}"
    );
    let bob_mail = mails
        .iter()
        .find(|m| m["subject"] == "Order 43 shipped")
        .expect("bob");
    assert!(bob_mail["html"].as_str().unwrap().contains("no wrap"));
    assert_eq!(
        bob_mail["text"].as_str().unwrap().trim_end(),
        "Hi Bob, order 43"
    );
    assert_eq!(
        step(&steps, "send_unknown", 400)["errors"][0]["field"],
        "template_id"
    );
    // The version that was sent is frozen.
    step(&steps, "patch_used", 400);

    // Another tenant sees none of it and cannot send with it.
    step(&steps, "stranger_template", 404);
    step(&steps, "stranger_list", 404);
    assert_eq!(
        step(&steps, "stranger_send", 400)["errors"][0]["field"],
        "template_id"
    );
    assert_eq!(
        step(&steps, "stranger_fields", 200)["custom_fields"],
        serde_json::json!([])
    );
    step(&steps, "remove_field", 204);
    step(&steps, "remove_list", 202);
    assert_eq!(step(&steps, "count_after", 200)["contact_count"], 0);
}
