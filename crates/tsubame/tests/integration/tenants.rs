//! `tsubame tenant` and `tsubame key` against a data directory: a key is shown once, listed
//! without its secret, stored only hashed, revocable, and scoped to its tenant.

use std::process::Command;

use crate::harness::BIN;

fn run(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("run tsubame");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

fn ok(dir: &std::path::Path, args: &[&str]) -> String {
    let (success, out, err) = run(dir, args);
    assert!(success, "tsubame {args:?} failed: {err}");
    out
}

#[test]
fn tenants_and_keys_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(
        d,
        &[
            "tenant",
            "add",
            "acme",
            "--rate",
            "100",
            "--daily-quota",
            "50000",
        ],
    );
    ok(d, &["tenant", "add", "beta"]);
    let (dup, _, err) = run(d, &["tenant", "add", "acme"]);
    assert!(!dup && err.contains("exists already"), "{err}");
    let (bad, _, err) = run(d, &["tenant", "add", "no spaces"]);
    assert!(!bad && err.contains("tenant name"), "{err}");

    let tenants: serde_json::Value =
        serde_json::from_str(&ok(d, &["tenant", "ls", "--json"])).expect("json");
    assert_eq!(tenants[0]["name"], "acme");
    assert_eq!(tenants[0]["rate_per_sec"], 100);
    assert_eq!(tenants[1]["daily_quota"], serde_json::Value::Null);

    let token = ok(
        d,
        &[
            "key",
            "add",
            "--tenant",
            "acme",
            "--name",
            "app",
            "--scopes",
            "send,read",
        ],
    );
    let token = token.trim();
    assert!(
        token.starts_with("tsb_") && token.len() >= 4 + 12 + 1 + 43,
        "{token}"
    );
    let key_id = token[4..16].to_string();

    let listed = ok(d, &["key", "ls", "--tenant", "acme"]);
    assert!(listed.contains(&key_id) && listed.contains("send,read") && listed.contains("active"));
    // The secret is everything after "tsb_<12 hex>_"; base64url may hold '_' itself.
    let secret = &token[4 + 12 + 1..];
    assert!(!listed.contains(secret), "key ls shows the secret");
    for entry in std::fs::read_dir(d).expect("dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).unwrap_or_default();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is stored in clear"
        );
    }

    // Another tenant cannot revoke it; its own tenant can, once.
    let (foreign, _, err) = run(d, &["key", "revoke", "--tenant", "beta", &key_id]);
    assert!(!foreign && err.contains("no active key"), "{err}");
    ok(d, &["key", "revoke", "--tenant", "acme", &key_id]);
    assert!(ok(d, &["key", "ls", "--tenant", "acme"]).contains("revoked"));
    let (again, _, _) = run(d, &["key", "revoke", "--tenant", "acme", &key_id]);
    assert!(!again);

    let (unknown, _, err) = run(d, &["key", "add", "--tenant", "acme", "--scopes", "root"]);
    assert!(!unknown && err.contains("unknown scope"), "{err}");
    ok(d, &["tenant", "rm", "acme"]);
    let (gone, _, _) = run(d, &["key", "ls", "--tenant", "acme"]);
    assert!(!gone);
}
