//! Admin API authentication, the queue CLI, /metrics content and the per-message log line.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::harness::{RawClient, TestServer, http_get};

fn send(server: &TestServer, rcpts: &[&str]) -> String {
    let mut client = RawClient::connect(server.smtp);
    client.reply();
    client.cmd("EHLO c");
    client.cmd("MAIL FROM:<s@example.org>");
    for r in rcpts {
        assert!(client.cmd(&format!("RCPT TO:<{r}>")).starts_with("250"));
    }
    client.cmd("DATA");
    let reply = client.cmd("Subject: hi\r\n\r\nhello\r\n.");
    client.cmd("QUIT");
    reply.trim().rsplit(' ').next().expect("id").to_string()
}

#[test]
fn queue_api_requires_the_token_and_cli_reads_it() {
    let server = TestServer::start("");
    let mode = std::fs::metadata(server.data_dir.join("admin.token"))
        .expect("token")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "token must be private");
    assert_eq!(
        http_get(server.http, "/admin/v1/queue/summary", None)
            .expect("get")
            .0,
        401
    );
    assert_eq!(
        http_get(server.http, "/admin/v1/queue/summary", Some("wrong"))
            .expect("get")
            .0,
        401
    );
    assert_eq!(http_get(server.http, "/health", None).expect("get").0, 200);

    let first = send(&server, &["a@one.example", "b@two.example"]);
    let second = send(&server, &["c@one.example"]);
    let summary = server.admin_json("/admin/v1/queue/summary");
    assert_eq!(summary["messages"], 2);
    assert_eq!(summary["recipients_pending"], 3);
    assert_eq!(summary["domains"][0]["domain"], "one.example");
    assert_eq!(summary["domains"][0]["recipients"], 2);
    assert_eq!(
        server
            .admin("/admin/v1/queue/messages/01M80TZRPPDRQ96H8FTGVC5G5T")
            .0,
        404
    );
    assert_eq!(server.admin("/admin/v1/queue/messages/not-an-id").0, 400);

    let cli = |args: &[&str]| {
        let out = Command::new(crate::harness::BIN)
            .args(args)
            .arg("--data-dir")
            .arg(&server.data_dir)
            .output()
            .expect("cli");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    };
    let text = cli(&["queue", "summary"]);
    assert!(
        text.contains("messages            2") && text.contains("one.example"),
        "{text}"
    );
    let text = cli(&["queue", "ls", "--limit", "1"]);
    assert!(
        text.contains(&first)
            && !text.contains(&second)
            && text.contains(&format!("--after {first}")),
        "{text}"
    );
    let text = cli(&["queue", "ls", "--after", &first]);
    assert!(text.contains(&second), "{text}");
    let text = cli(&["queue", "show", &first]);
    assert!(
        text.contains("rcpt      <b@two.example> pending") && text.contains("Received: from c"),
        "{text}"
    );
    let text = cli(&["queue", "show", &second, "--content"]);
    assert!(text.ends_with("Subject: hi\r\n\r\nhello\r\n"), "{text}");
    // The submission had no Message-ID, so one was added, built from the queue id.
    assert!(
        text.contains(&format!("\r\nMessage-ID: <{second}@mx.test>\r\n")),
        "{text}"
    );
}

#[test]
fn metrics_and_json_log_lines() {
    let server = TestServer::start("[log]\nformat = \"json\"");
    let id = send(&server, &["a@example.com", "b@example.com"]);
    let mut bad = RawClient::connect(server.smtp);
    bad.start_data("x@example.org", "y@example.com");
    bad.send(b"bare\nlf\r\n.\r\n");
    assert!(bad.reply().starts_with("550"));

    let (_, body) = http_get(server.http, "/metrics", None).expect("metrics");
    let metrics = String::from_utf8(body).expect("utf8");
    for needle in [
        "tsubame_smtp_connections_total ",
        "tsubame_smtp_connections ",
        "tsubame_smtp_messages_accepted_total 1",
        "tsubame_smtp_messages_rejected_total{reason=\"bare_line_ending\"} 1",
        "tsubame_smtp_accepted_bytes_total ",
        "tsubame_smtp_accept_latency_seconds_bucket{le=\"0.005\"}",
        "tsubame_spool_fsync_seconds_bucket{le=\"0.001\"}",
        "tsubame_spool_batch_records_bucket{le=\"1\"}",
        "tsubame_queue_messages 1",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }

    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = server.log_text();
    let accepted = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "message accepted")
        .unwrap_or_else(|| panic!("no JSON accept line in\n{log}"));
    assert_eq!(accepted["id"], id.as_str());
    assert_eq!(accepted["client"], "127.0.0.1");
    assert_eq!(accepted["sender"], "s@example.org");
    assert_eq!(accepted["recipients"], 2);
    assert!(accepted["size"].as_u64().expect("size") > 0);
    assert!(
        accepted["reply"]
            .as_str()
            .expect("reply")
            .starts_with("250 2.0.0")
    );
    let rejected = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "message rejected")
        .expect("reject line");
    assert_eq!(rejected["reason"], "bare_line_ending");
    assert!(
        rejected["reply"]
            .as_str()
            .expect("reply")
            .starts_with("550 5.6.0")
    );
}

#[test]
fn dsn_parameters_are_kept_with_the_message() {
    let server = TestServer::start("");
    let mut client = RawClient::connect(server.smtp);
    client.reply();
    client.cmd("EHLO c");
    assert!(
        client
            .cmd("MAIL FROM:<s@example.org> RET=HDRS ENVID=QQ+2B314")
            .starts_with("250")
    );
    assert!(
        client
            .cmd("RCPT TO:<a@example.com> NOTIFY=FAILURE,DELAY ORCPT=rfc822;a@example.com")
            .starts_with("250")
    );
    assert!(
        client
            .cmd("RCPT TO:<b@example.com> NOTIFY=NEVER")
            .starts_with("250")
    );
    client.cmd("DATA");
    let reply = client.cmd("Subject: dsn\r\n\r\nbody\r\n.");
    let id = reply.trim().rsplit(' ').next().expect("id").to_string();
    let shown = server.admin_json(&format!("/admin/v1/queue/messages/{id}"));
    assert_eq!(shown["dsn_ret"], "HDRS");
    assert_eq!(
        shown["dsn_envid"], "QQ+314",
        "ENVID is stored xtext-decoded"
    );
    assert_eq!(
        shown["recipients"][0]["notify"],
        serde_json::json!(["FAILURE", "DELAY"])
    );
    assert_eq!(shown["recipients"][0]["orcpt"], "rfc822;a@example.com");
    assert_eq!(
        shown["recipients"][1]["notify"],
        serde_json::json!(["NEVER"])
    );
    assert_eq!(shown["recipients"][1]["orcpt"], serde_json::Value::Null);
}
