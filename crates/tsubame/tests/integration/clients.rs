//! Real clients nobody here wrote: Python's smtplib and swaks.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::TestServer;

fn python(args: &[&str]) -> Value {
    crate::harness::python_json("smtp_client.py", args)
}

fn add_user(server: &TestServer, name: &str, password: &str) {
    use std::io::Write;
    let mut child = Command::new(crate::harness::BIN)
        .args(["user", "add", name, "--data-dir"])
        .arg(&server.data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("password");
    assert!(child.wait().expect("wait").success());
}

/// Every message a client got a queue id for is in the spool, content intact after our
/// Received header.
fn assert_spooled(server: &TestServer, id: &str, expect_suffix: &[u8]) {
    let stored = server
        .stored_content(id)
        .unwrap_or_else(|| panic!("{id} not in spool"));
    assert!(
        stored.starts_with(b"Received: from "),
        "missing Received header"
    );
    assert!(
        stored.ends_with(expect_suffix),
        "content changed: {}",
        String::from_utf8_lossy(&stored)
    );
}

#[test]
fn smtplib_starttls_auth_plain_and_login_several_messages_per_connection() {
    // 127.0.0.2/32 only: the test client on 127.0.0.1 must authenticate to relay.
    let server = TestServer::start("relay_networks = [\"127.0.0.2/32\"]");
    add_user(&server, "alice", "correct horse battery");
    let port = server.smtp.port().to_string();
    for mechanism in ["PLAIN", "LOGIN"] {
        let result = python(&[
            "starttls_auth",
            "127.0.0.1",
            &port,
            "alice",
            "correct horse battery",
            mechanism,
        ]);
        assert_eq!(result["auth_before_tls"], false, "AUTH offered before TLS");
        assert_eq!(result["auth_after_tls"], " PLAIN LOGIN");
        assert_eq!(result["starttls_after_tls"], false);
        let sent = result["sent"].as_array().expect("sent");
        assert_eq!(sent.len(), 3);
        for s in sent {
            assert_eq!(s["code"], 250);
            let id = s["id"].as_str().expect("queue id");
            let n = s["n"].as_u64().expect("n");
            assert_spooled(
                &server,
                id,
                format!("Body of message {n}.\r\n.leading dot line\r\n").as_bytes(),
            );
            let shown = server.admin_json(&format!("/admin/v1/queue/messages/{id}"));
            assert_eq!(shown["auth_user"], "alice");
            assert!(
                shown["headers"]
                    .as_str()
                    .expect("headers")
                    .contains("with ESMTPSA")
            );
        }
    }
    let injected = python(&["starttls_injection", "127.0.0.1", &port]);
    assert_eq!(injected["ready"], "220 2.0.0 Ready to start TLS");
    // The MAIL pipelined in clear text after STARTTLS was discarded: RCPT has no MAIL.
    assert!(
        injected["rcpt_reply"]
            .as_str()
            .expect("reply")
            .starts_with("503 5.5.1"),
        "{injected}"
    );

    let wrong = python(&["wrong_password", "127.0.0.1", &port, "alice"]);
    assert_eq!(wrong["error"], 535);
    let refused = python(&["untrusted", "127.0.0.1", &port]);
    assert_eq!(refused["refused"], 550);
    assert!(refused["text"].as_str().expect("text").starts_with("5.7.1"));

    // The CLI lists and removes users; a removed user can no longer log in.
    let cli = |args: &[&str]| {
        Command::new(crate::harness::BIN)
            .args(args)
            .arg("--data-dir")
            .arg(&server.data_dir)
            .output()
            .expect("cli")
    };
    let listed = cli(&["user", "ls"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout), "alice\n");
    assert!(cli(&["user", "rm", "alice"]).status.success());
    assert!(
        !cli(&["user", "rm", "alice"]).status.success(),
        "removing twice is an error"
    );
    let gone = python(&["wrong_password", "127.0.0.1", &port, "alice"]);
    assert_eq!(gone["error"], 535);
}

#[test]
fn smtplib_implicit_tls_smtputf8_and_pipelining() {
    let server = TestServer::start("");
    let tls = python(&[
        "implicit_tls",
        "127.0.0.1",
        &server.smtps.port().to_string(),
    ]);
    let id = tls["sent"][0]["id"].as_str().expect("id");
    assert!(
        server.admin_json(&format!("/admin/v1/queue/messages/{id}"))["headers"]
            .as_str()
            .expect("headers")
            .contains("with ESMTPS")
    );

    let port = server.smtp.port().to_string();
    let utf8 = python(&["smtputf8", "127.0.0.1", &port]);
    assert_eq!(utf8["refused_without"], 553, "{utf8}");
    assert!(
        utf8["features"]
            .as_array()
            .expect("features")
            .iter()
            .any(|f| f == "smtputf8")
    );
    let queued = server.admin_json("/admin/v1/queue/messages?limit=1000");
    let utf8_msg = queued["messages"]
        .as_array()
        .expect("list")
        .iter()
        .find(|m| m["sender"] == "送信者@例え.jp");
    let utf8_id = utf8_msg.expect("SMTPUTF8 message queued")["id"]
        .as_str()
        .expect("id");
    let shown = server.admin_json(&format!("/admin/v1/queue/messages/{utf8_id}"));
    assert_eq!(shown["smtputf8"], true);
    assert_eq!(shown["recipients"][0]["address"], "受信者@例え.jp");

    let piped = python(&["pipelined", "127.0.0.1", &port, "20"]);
    assert_eq!(piped["pipelining"], true);
    for id in piped["ids"].as_array().expect("ids") {
        let id = id.as_str().expect("every pipelined message got a queue id");
        let shown = server.admin_json(&format!("/admin/v1/queue/messages/{id}"));
        assert_eq!(shown["recipients"].as_array().expect("rcpts").len(), 2);
    }
}

fn swaks(args: &[&str]) -> (bool, String) {
    let output = Command::new("swaks")
        .args(args)
        .arg("--hide-informational")
        .output()
        .expect("run swaks (apt install swaks)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn swaks_plain_starttls_auth_implicit_tls_and_pipelining() {
    let server = TestServer::start("relay_networks = [\"127.0.0.2/32\"]");
    add_user(&server, "bob", "s3cret-pass");
    let server_arg = format!("127.0.0.1:{}", server.smtp.port());
    let smtps_arg = format!("127.0.0.1:{}", server.smtps.port());

    // Unauthenticated from an untrusted address: refused.
    let (ok, out) = swaks(&[
        "--server",
        &server_arg,
        "--to",
        "x@example.com",
        "--from",
        "y@example.org",
    ]);
    assert!(!ok && out.contains("550 5.7.1"), "{out}");

    let (ok, out) = swaks(&[
        "--server",
        &server_arg,
        "--to",
        "x@example.com",
        "--from",
        "y@example.org",
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        "bob",
        "--auth-password",
        "s3cret-pass",
    ]);
    assert!(ok && out.contains("250 2.0.0 Ok: queued as"), "{out}");

    let (ok, out) = swaks(&[
        "--server",
        &smtps_arg,
        "--tlsc",
        "--to",
        "x@example.com",
        "--from",
        "y@example.org",
        "--auth",
        "LOGIN",
        "--auth-user",
        "bob",
        "--auth-password",
        "s3cret-pass",
        "--pipeline",
    ]);
    assert!(ok && out.contains("250 2.0.0 Ok: queued as"), "{out}");
    assert_eq!(server.queued_ids().len(), 2);
}

/// The certificate generated on first start, as OpenSSL sees it on the implicit-TLS port:
/// it names the configured host name (subject and subjectAltName) and is valid from about
/// now for about a year, not the generator's defaults (a generic subject, 1975 to 4096).
#[test]
fn generated_certificate_names_the_host_and_has_a_sensible_validity() {
    let server = TestServer::start("");
    let script = format!(
        "openssl s_client -connect {} -servername mx.test </dev/null 2>/dev/null \
         | openssl x509 -noout -subject -ext subjectAltName -startdate -enddate -dateopt iso_8601",
        server.smtps
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.replace(" = ", "=").contains("subject=CN=mx.test"),
        "{text}"
    );
    assert!(text.contains("DNS:mx.test"), "{text}");
    let date = |key: &str| -> i64 {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key}: {text}"));
        // ISO 8601 "2026-12-03 07:33:27Z": days since the epoch from the date part.
        let d: Vec<i64> = line[..10]
            .split('-')
            .map(|p| p.parse().expect("date"))
            .collect();
        days_from_civil(d[0], d[1], d[2])
    };
    let today = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        / 86_400) as i64;
    let (start, end) = (date("notBefore="), date("notAfter="));
    assert!(
        (today - 2..=today).contains(&start),
        "notBefore {start}, today {today}"
    );
    assert!(
        (today + 300..=today + 400).contains(&end),
        "notAfter {end}, today {today}"
    );
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
