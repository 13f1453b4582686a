//! Contact imports against the real binary: a CSV uploaded with Python's urllib becomes a
//! job that runs in the server (progress over the API, refused rows in the error file,
//! contacts on a list); a server killed with SIGKILL mid-import finishes the job after a
//! restart with every row written once; the CLI imports a Shift_JIS file with a progress
//! bar and writes the error file.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{TestServer, python_json};

fn get(server: &TestServer, path: &str, token: &str) -> Value {
    let url = format!("http://{}{path}", server.http);
    python_json("api_client.py", &[&url, token, "-", "{}", "GET"])
}

fn upload(server: &TestServer, query: &str, token: &str, file: &std::path::Path) -> Value {
    let url = format!("http://{}/v1/imports?{query}", server.http);
    python_json("upload.py", &[&url, token, file.to_str().expect("utf8")])
}

/// A CSV of `rows` contacts; every 10th row has a plan that is not a choice.
fn csv_file(dir: &std::path::Path, rows: usize) -> std::path::PathBuf {
    let mut text = String::from("email,plan,country\n");
    for i in 0..rows {
        let plan = if i % 10 == 3 { "gold" } else { "pro" };
        text.push_str(&format!("user{i}@example.com,{plan},JP\n"));
    }
    let path = dir.join(format!("contacts-{rows}.csv"));
    std::fs::write(&path, text).expect("write csv");
    path
}

fn wait_done(server: &TestServer, id: &str, token: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let job = get(server, &format!("/v1/imports/{id}"), token);
        if job["body"]["state"] == "done" || job["body"]["state"] == "failed" {
            return job["body"].clone();
        }
        assert!(Instant::now() < deadline, "import not done: {job}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn setup(server: &TestServer) -> String {
    server.cli(&["tenant", "add", "acme"]);
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim().to_string();
    let url = format!("http://{}/v1/contacts/properties", server.http);
    let body = json!({"name": "plan", "type": "choice", "choices": ["free", "pro"]}).to_string();
    assert_eq!(
        python_json("api_client.py", &[&url, &key, &body])["status"],
        201
    );
    key
}

#[test]
fn an_uploaded_csv_is_imported_by_the_server_with_an_error_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start("");
    let key = setup(&server);
    let url = format!("http://{}/v1/lists", server.http);
    assert_eq!(
        python_json("api_client.py", &[&url, &key, r#"{"name":"Newsletter"}"#])["status"],
        201
    );
    let file = csv_file(dir.path(), 20_000);
    let job = upload(&server, "name=spring.csv&list=Newsletter", &key, &file);
    assert_eq!(job["status"], 202, "{job}");
    let id = job["body"]["id"].as_str().expect("id").to_string();
    let done = wait_done(&server, &id, &key, Duration::from_secs(120));
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(
        (&done["added"], &done["refused"], &done["percent"]),
        (&json!(18_000), &json!(2000), &json!(100))
    );
    let errors = get(&server, &format!("/v1/imports/{id}/errors"), &key);
    let text = errors["body"].as_str().expect("csv text");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2001, "header and one line per refused row");
    // user3 is on file line 5 (the header is line 1).
    assert_eq!(lines[1], "5,\"plan: \"\"gold\"\" is not one of free, pro\"");
    let list = get(&server, "/v1/lists/Newsletter", &key);
    assert_eq!(list["body"]["subscribed"], 18_000);
    assert_eq!(
        server
            .cli(&["contacts", "count", "--tenant", "acme"])
            .trim(),
        "18000"
    );

    // Refused before it becomes a job: no address column, an unknown list.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "name,plan\nx,pro\n").expect("write");
    let refused = upload(&server, "", &key, &bad);
    assert_eq!(
        (&refused["status"], &refused["body"]["errors"][0]["field"]),
        (&json!(400), &json!("map"))
    );
    let refused = upload(&server, "list=Nope", &key, &file);
    assert_eq!(refused["body"]["errors"][0]["field"], "list", "{refused}");
    // Another tenant cannot see the job.
    server.cli(&["tenant", "add", "beta"]);
    let stranger = server.cli(&["key", "add", "--tenant", "beta", "--scopes", "all"]);
    assert_eq!(
        get(&server, &format!("/v1/imports/{id}"), stranger.trim())["status"],
        404
    );
    assert_eq!(
        get(
            &server,
            &format!("/v1/imports/{id}/errors"),
            stranger.trim()
        )["status"],
        404
    );
}

#[test]
fn a_server_killed_mid_import_finishes_it_after_a_restart_writing_each_row_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::start("");
    let key = setup(&server);
    let rows = 200_000;
    let file = csv_file(dir.path(), rows);
    let job = upload(&server, "", &key, &file);
    assert_eq!(job["status"], 202, "{job}");
    let id = job["body"]["id"].as_str().expect("id").to_string();
    // Kill it somewhere in the middle.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = get(&server, &format!("/v1/imports/{id}"), &key);
        let rows_done = now["body"]["rows"].as_i64().unwrap_or(0);
        if rows_done >= 20_000 {
            assert!(rows_done < rows as i64, "finished before the kill: {now}");
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {now}");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.kill9();
    server.spawn(&[]);
    let done = wait_done(&server, &id, &key, Duration::from_secs(180));
    let refused = (0..rows).filter(|i| i % 10 == 3).count() as i64;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["rows"], rows as i64);
    assert_eq!(
        (done["added"].as_i64(), done["updated"].as_i64()),
        (Some(rows as i64 - refused), Some(0)),
        "{done}"
    );
    assert_eq!(done["refused"], refused);
    let errors = get(&server, &format!("/v1/imports/{id}/errors"), &key);
    let lines = errors["body"].as_str().expect("csv").lines().count() as i64;
    assert_eq!(lines, refused + 1, "each refused row reported once");
    assert_eq!(
        server
            .cli(&["contacts", "count", "--tenant", "acme"])
            .trim(),
        (rows as i64 - refused).to_string()
    );
}

#[test]
fn the_cli_imports_a_shift_jis_file_with_a_progress_bar() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start("");
    setup(&server);
    let mut text = String::from("メールアドレス,plan,国\r\n");
    for i in 0..3000 {
        let plan = if i == 7 { "ゴールド" } else { "free" };
        text.push_str(&format!("yamada{i}@example.jp,{plan},JP\r\n"));
    }
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(&text);
    let file = dir.path().join("顧客.csv");
    std::fs::write(&file, &sjis).expect("write");
    let errors = dir.path().join("errors.csv");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tsubame"))
        .args(["contacts", "import"])
        .arg(&file)
        .args(["--tenant", "acme", "--errors"])
        .arg(&errors)
        .arg("--data-dir")
        .arg(&server.data_dir)
        .output()
        .expect("cli");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("3000 rows, 2999 added"), "{stdout}");
    assert!(
        stderr.contains("100%"),
        "a progress bar to the end: {stderr}"
    );
    let errors = std::fs::read_to_string(&errors).expect("error file");
    assert!(
        errors.contains("9,\"plan: \"\"ゴールド\"\" is not one of free, pro\""),
        "{errors}"
    );
}
