//! The web console end to end: the real binary, logins made with the CLI, and Debian's
//! chromium driven by playwright-core (`tests/node/console.mjs`) through sign-in, domains,
//! keys, a message found in activity, suppressions and a CSV import, CSRF and tenant
//! isolation, an expired session, and an operator pausing and resuming a site; axe-core
//! checks every page for WCAG 2.1 A/AA violations. Screenshots go to
//! `target/console-screenshots/`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::api::{add_domain, post};
use crate::harness::{TestServer, free_port, python_json};

const PASSWORD: &str = "correct horse battery";

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

#[test]
fn the_console_in_a_real_browser() {
    let closed = free_port();
    // Operations: the held site's mail makes an "oldest message" alert within seconds; the
    // browser moves the operations clock (admin API) to answer it late.
    let server = TestServer::start_with_env(
        &format!(
            "[console]\nsession_idle = \"6s\"\n[webhooks]\nallow_networks = [\"127.0.0.0/8\"]\n[delivery]\ntls = \"disabled\"\n[[delivery.route]]\ndomains = [\"held.example\"]\nhosts = [\"127.0.0.1:{closed}\"]\n\
             [[slo]]\nname = \"delivery-7s\"\nkind = \"delivery_latency\"\nthreshold = \"7s\"\nobjective = 99.9\n\
             [ops]\nevaluate_every = \"1s\"\n[ops.thresholds]\noldest_message = \"1s\"\n\
             [[ops.person]]\nname = \"ops\"\nemail = \"ops@platform.example\"\n\
             [ops.oncall]\npeople = [\"ops\"]\nstart = \"2026-01-05T00:00:00Z\"\n"
        ),
        &[("TSUBAME_OPS_CLOCK", "adjustable")],
    );
    server.cli(&["tenant", "add", "acme"]);
    server.cli(&["tenant", "add", "beta"]);
    server.cli_with_input(
        &[
            "login",
            "add",
            "ann@acme.example",
            "--tenant",
            "acme",
            "--role",
            "owner",
        ],
        &format!("{PASSWORD}\n"),
    );
    server.cli_with_input(
        &["login", "add", "ops@platform.example", "--operator"],
        &format!("{PASSWORD}\n"),
    );
    server.cli_with_input(
        &[
            "login",
            "add",
            "bob@beta.example",
            "--tenant",
            "beta",
            "--role",
            "owner",
        ],
        &format!("{PASSWORD}\n"),
    );
    // A key for the browser to revoke, and beta's things ann must not reach.
    let spare = server.cli(&["key", "add", "--tenant", "acme", "--name", "spare"]);
    let spare_id = spare.trim().split('_').nth(1).expect("key id").to_string();
    let beta_key = server.cli(&["key", "add", "--tenant", "beta", "--scopes", "all"]);
    let beta_key = beta_key.trim().to_string();
    let beta_key_id = beta_key.split('_').nth(1).expect("key id").to_string();
    add_domain(&server, "beta", "beta.example");
    let beta_sent = post(
        &server,
        &beta_key,
        r#"{"messages":[{"from":"hi@beta.example","to":["x@held.example"],"subject":"beta","text":"beta"}]}"#,
    );
    let beta_message = beta_sent["body"]["messages"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{beta_sent}"))
        .to_string();
    let beta_hook = python_json(
        "api_client.py",
        &[
            &format!("http://{}/v1/webhooks", server.http),
            &beta_key,
            r#"{"url":"http://127.0.0.1:9/beta"}"#,
            "{}",
            "POST",
        ],
    );
    let beta_webhook = beta_hook["body"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{beta_hook}"))
        .to_string();
    // Beta's contact and import, which ann must not reach; acme's declared property.
    let beta_contact = python_json(
        "api_client.py",
        &[
            &format!("http://{}/v1/contacts", server.http),
            &beta_key,
            r#"{"contacts":[{"address":"zed@beta.example"}]}"#,
        ],
    );
    let beta_contact = beta_contact["body"]["ids"][0]
        .as_i64()
        .expect("beta contact");
    let beta_csv = tempfile::NamedTempFile::new().expect("csv");
    std::fs::write(beta_csv.path(), "email\nyan@beta.example\n").expect("write");
    let beta_import = python_json(
        "upload.py",
        &[
            &format!("http://{}/v1/imports", server.http),
            &beta_key,
            beta_csv.path().to_str().expect("utf8"),
        ],
    );
    let beta_import = beta_import["body"]["id"]
        .as_str()
        .expect("beta import")
        .to_string();
    let beta_template = python_json(
        "api_client.py",
        &[
            &format!("http://{}/v1/templates", server.http),
            &beta_key,
            r#"{"name":"Beta news","dialect":"native"}"#,
        ],
    );
    let beta_template = beta_template["body"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{beta_template}"))
        .to_string();
    python_json(
        "api_client.py",
        &[
            &format!(
                "http://{}/v1/templates/{beta_template}/versions",
                server.http
            ),
            &beta_key,
            r#"{"subject":"beta","text":"beta"}"#,
        ],
    );
    let beta_campaign = python_json(
        "api_client.py",
        &[
            &format!("http://{}/v1/campaigns", server.http),
            &beta_key,
            r#"{"name":"Beta news"}"#,
        ],
    );
    let beta_campaign = beta_campaign["body"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{beta_campaign}"))
        .to_string();
    server.cli(&[
        "contacts",
        "property",
        "plan",
        "choice",
        "--choices",
        "free,pro",
        "--tenant",
        "acme",
    ]);
    // The site of held.example exists once mail went its way.
    let deadline = Instant::now() + Duration::from_secs(10);
    let site = loop {
        let summary = server.admin_json("/admin/v1/queue/summary");
        if let Some(site) = summary["sites"].as_array().and_then(|s| s.first()) {
            break site["site"].as_str().expect("site").to_string();
        }
        assert!(Instant::now() < deadline, "no site appeared: {summary}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // More mail for the site while the browser pauses it: sent now, held by the back-off
    // or the pause, counted as ready once the operator has paused it.
    for i in 0..3 {
        post(
            &server,
            &beta_key,
            &format!(
                r#"{{"messages":[{{"from":"hi@beta.example","to":["u{i}@held.example"],"subject":"s","text":"t"}}]}}"#
            ),
        );
    }
    let screenshots =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    let config = serde_json::json!({
        "chromium": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        "screenshots": screenshots,
        "idle_ms": 6000,
        "owner": { "email": "ann@acme.example", "password": PASSWORD, "spare_key": spare_id },
        "operator": { "email": "ops@platform.example", "password": PASSWORD, "site": site, "admin_token": server.token() },
        "other": { "domain": "beta.example", "message": beta_message, "key": beta_key_id, "webhook": beta_webhook, "login": "bob@beta.example", "token": beta_key, "contact": beta_contact, "import": beta_import, "template": beta_template, "campaign": beta_campaign },
        "member": { "email": "dev@acme.example", "password": "another fine password" },
    });
    let out = Command::new("node")
        .arg(node_dir().join("console.mjs"))
        .arg(format!("http://{}", server.http))
        .arg(config.to_string())
        .current_dir(node_dir())
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser test failed:\n{stdout}\n{stderr}\n--- server log ---\n{}",
        server.log_text()
    );
    assert!(stdout.contains("\"ok\":true"), "{stdout}");
}
