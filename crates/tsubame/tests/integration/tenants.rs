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

/// `tsubame domain check` asks a real DNS server (hickory-server on loopback) and says which
/// records are published; a missing or different DKIM key fails the check.
#[test]
fn domain_check_reads_the_published_records() {
    use testkit::dns::{Rr, TestDns};
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(d, &["tenant", "add", "acme"]);
    let out = ok(
        d,
        &[
            "domain",
            "add",
            "acme.test",
            "--tenant",
            "acme",
            "--algorithm",
            "ed25519",
            "--selector",
            "sel1",
            "--mail-host",
            "mx.platform.test",
        ],
    );
    let dkim_value = out
        .lines()
        .find(|l| l.starts_with("sel1._domainkey.acme.test TXT"))
        .and_then(|l| l.split_once(" TXT "))
        .map(|(_, v)| v.trim_matches('"').to_string())
        .expect("DKIM record printed");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dns = runtime.block_on(TestDns::start(
        &[
            Rr::txt("sel1._domainkey.acme.test", &dkim_value),
            Rr::txt("acme.test", "v=spf1 a:mx.platform.test ~all"),
        ],
        60,
    ));
    let check = |d: &std::path::Path, addr: std::net::SocketAddr| {
        run(
            d,
            &[
                "domain",
                "check",
                "acme.test",
                "--tenant",
                "acme",
                "--mail-host",
                "mx.platform.test",
                "--resolver",
                &addr.to_string(),
            ],
        )
    };
    let (passed, out, err) = check(d, dns.addr);
    assert!(passed, "{out}{err}");
    assert!(
        out.contains("OK         sel1._domainkey.acme.test TXT"),
        "{out}"
    );
    assert!(out.contains("OK         acme.test TXT"), "{out}");
    assert!(out.contains("MISSING    _dmarc.acme.test TXT"), "{out}");

    // Another key published under the selector: the check fails and says so.
    let wrong = runtime.block_on(TestDns::start(
        &[Rr::txt(
            "sel1._domainkey.acme.test",
            "v=DKIM1; k=ed25519; p=AAAA",
        )],
        60,
    ));
    let (passed, out, _) = check(d, wrong.addr);
    assert!(!passed, "a wrong DKIM key passed:\n{out}");
    assert!(
        out.contains("DIFFERENT  sel1._domainkey.acme.test TXT"),
        "{out}"
    );
}
