//! The management API over HTTP: a tenant manages its own sending domains and keys, and
//! another tenant's ids are answered exactly like ids that do not exist (404, same body).

use serde_json::Value;

use crate::api::post;
use crate::harness::{TestServer, python_json};

fn call(server: &TestServer, method: &str, path: &str, token: &str, body: &str) -> Value {
    let url = format!("http://{}{path}", server.http);
    python_json("api_client.py", &[&url, token, body, "{}", method])
}

/// The answer to a foreign id must equal the answer to an unknown one.
fn same_as_unknown(foreign: &Value, unknown: &Value) {
    assert_eq!(foreign["status"], 404, "{foreign}");
    assert_eq!(
        (&foreign["status"], &foreign["body"]),
        (&unknown["status"], &unknown["body"])
    );
}

#[test]
fn tenants_manage_their_own_domains_and_keys_and_nothing_else() {
    let server = TestServer::start("");
    server.cli(&["tenant", "add", "acme"]);
    server.cli(&["tenant", "add", "beta"]);
    let admin = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let admin = admin.trim();
    let stranger = server.cli(&["key", "add", "--tenant", "beta", "--scopes", "all"]);
    let stranger = stranger.trim();

    // A domain added over HTTP comes with its DNS records and signs mail at once.
    let added = call(
        &server,
        "POST",
        "/v1/domains",
        admin,
        r#"{"domain":"Acme.TEST","algorithm":"ed25519","selector":"s1"}"#,
    );
    assert_eq!(added["status"], 201, "{added}");
    assert_eq!(added["body"]["domain"], "acme.test");
    let records = added["body"]["records"].as_array().expect("records");
    assert!(
        records
            .iter()
            .any(|r| r["name"] == "s1._domainkey.acme.test"
                && r["value"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("v=DKIM1; k=ed25519; p="))),
        "{added}"
    );
    let invalid = call(
        &server,
        "POST",
        "/v1/domains",
        admin,
        r#"{"domain":"not a domain","colour":1}"#,
    );
    assert_eq!(invalid["status"], 400, "{invalid}");
    assert_eq!(invalid["body"]["errors"][0]["field"], "colour", "{invalid}");

    // The other tenant sees none of it and can change none of it.
    let listed = call(&server, "GET", "/v1/domains", stranger, "-");
    assert_eq!(listed["body"]["domains"], serde_json::json!([]), "{listed}");
    same_as_unknown(
        &call(&server, "GET", "/v1/domains/acme.test", stranger, "-"),
        &call(&server, "GET", "/v1/domains/nothing.test", stranger, "-"),
    );
    same_as_unknown(
        &call(&server, "DELETE", "/v1/domains/acme.test", stranger, "-"),
        &call(&server, "DELETE", "/v1/domains/nothing.test", stranger, "-"),
    );
    let taken = call(
        &server,
        "POST",
        "/v1/domains",
        stranger,
        r#"{"domain":"acme.test"}"#,
    );
    assert_eq!(taken["status"], 409, "{taken}");

    // Keys: made over HTTP (token shown once), usable at once, invisible to the stranger.
    let made = call(
        &server,
        "POST",
        "/v1/keys",
        admin,
        r#"{"name":"ci","scopes":["send"]}"#,
    );
    assert_eq!(made["status"], 201, "{made}");
    let ci_id = made["body"]["id"].as_str().expect("id").to_string();
    let ci_token = made["body"]["token"].as_str().expect("token").to_string();
    assert_eq!(made["body"]["scopes"], serde_json::json!(["send"]));
    let send = r#"{"messages":[{"from":"a@acme.test","to":["b@x.test"],"text":"t"}]}"#;
    assert_eq!(post(&server, &ci_token, send)["status"], 200);
    let listed = call(&server, "GET", "/v1/keys", admin, "-");
    let keys = listed["body"]["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2, "{listed}");
    assert!(
        !listed.to_string().contains(&ci_token[ci_id.len()..]),
        "a secret was listed"
    );
    same_as_unknown(
        &call(&server, "GET", &format!("/v1/keys/{ci_id}"), stranger, "-"),
        &call(&server, "GET", "/v1/keys/tsb_000000000000", stranger, "-"),
    );
    same_as_unknown(
        &call(
            &server,
            "DELETE",
            &format!("/v1/keys/{ci_id}"),
            stranger,
            "-",
        ),
        &call(
            &server,
            "DELETE",
            "/v1/keys/tsb_000000000000",
            stranger,
            "-",
        ),
    );
    assert_eq!(
        post(&server, &ci_token, send)["status"],
        200,
        "the stranger revoked it"
    );

    // A send-only key manages nothing; the account shows today's count.
    let forbidden = call(&server, "GET", "/v1/domains", &ci_token, "-");
    assert_eq!(forbidden["status"], 403, "{forbidden}");
    let account = call(&server, "GET", "/v1/account", admin, "-");
    assert_eq!(account["body"]["name"], "acme", "{account}");
    assert_eq!(account["body"]["sent_today"], 2, "{account}");

    // The owner revokes the key and removes the domain: both take effect at once.
    let revoked = call(&server, "DELETE", &format!("/v1/keys/{ci_id}"), admin, "-");
    assert_eq!(revoked["status"], 204, "{revoked}");
    assert_eq!(post(&server, &ci_token, send)["status"], 401);
    let removed = call(&server, "DELETE", "/v1/domains/acme.test", admin, "-");
    assert_eq!(removed["status"], 204, "{removed}");
    assert_eq!(post(&server, admin, send)["status"], 403);
}
