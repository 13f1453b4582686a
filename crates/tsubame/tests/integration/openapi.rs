//! The OpenAPI document against the running server, checked by schemathesis (PyPI): it
//! generates requests from the document, valid and invalid, and checks every answer: no
//! 5xx, every status, content type, header and body as documented, and invalid input
//! refused.

use crate::api::venv_with;
use crate::harness::TestServer;

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,negative_data_rejection";

fn schemathesis(server: &TestServer, key: &str, filter: &[&str]) -> (bool, String) {
    let python = venv_with("schemathesis", "schemathesis==4.32.5");
    let bin = python.with_file_name("schemathesis");
    let report = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(bin)
        .current_dir(report.path())
        .args(["run", &format!("http://{}/openapi.json", server.http)])
        .args(["-H", &format!("Authorization: Bearer {key}")])
        .args([
            "--checks",
            CHECKS,
            "--max-examples",
            "25",
            "--seed",
            "20261126",
        ])
        .args(["--no-color", "--request-timeout", "30"])
        .args(filter)
        .output()
        .expect("schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let server = TestServer::start("");
    server.cli(&["tenant", "add", "acme"]);
    // The document's example sends from example.com: make it a domain of the account, so
    // the examples reach the spool.
    server.cli(&[
        "domain",
        "add",
        "example.com",
        "--tenant",
        "acme",
        "--algorithm",
        "ed25519",
    ]);
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    // Revoking keys is run on its own: following links from the key list, it revokes
    // the key the run itself uses.
    let (ok, text) = schemathesis(
        &server,
        key.trim(),
        &["--exclude-operation-id", "revoke_key"],
    );
    assert!(ok, "{text}");
    assert!(text.contains("74 selected / 75 total"), "{text}");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let (ok, text) = schemathesis(
        &server,
        key.trim(),
        &["--include-operation-id", "revoke_key"],
    );
    assert!(ok, "{text}");
    // The examples reached the spool: the document's example is a valid request.
    assert!(
        !server.queued_ids().is_empty(),
        "no generated request was accepted"
    );
}
