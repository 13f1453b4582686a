//! `tsubame sink` as a process, driven by Python's smtplib: triggers, shares, limits,
//! latency, STARTTLS, capture, /metrics and the exit summary.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{BIN, free_port, http_get};

pub struct SinkProcess {
    child: Child,
    pub addr: SocketAddr,
}

impl SinkProcess {
    pub fn start(args: &[&str]) -> SinkProcess {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        SinkProcess::start_on(addr, args)
    }

    /// On a chosen address (several sinks on 127.0.0.x with the same port play MX hosts).
    pub fn start_on(addr: SocketAddr, args: &[&str]) -> SinkProcess {
        let mut child = Command::new(BIN)
            .arg("sink")
            .args(["--listen", &addr.to_string(), "--json"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tsubame sink");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let line = lines.next().expect("a line").expect("stderr line");
        assert!(line.starts_with("sink listening on"), "{line}");
        // Keep draining stderr so the sink never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        SinkProcess { child, addr }
    }

    fn python(&self, scenario: &str) -> Value {
        let port = self.addr.port().to_string();
        crate::harness::python_json("sink_client.py", &[scenario, "127.0.0.1", &port])
    }

    /// SIGTERM, then the JSON summary it prints on the way out.
    pub fn stop(mut self) -> Value {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "sink did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("read summary");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("summary {out:?}: {e}"))
    }
}

impl Drop for SinkProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sink_triggers_starttls_capture_metrics_and_summary() {
    let capture = tempfile::tempdir().expect("tempdir");
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let sink = SinkProcess::start(&[
        "--tls",
        "--capture",
        capture.path().to_str().expect("utf8 path"),
        "--metrics-listen",
        &metrics.to_string(),
    ]);
    let seen = sink.python("triggers");
    assert_eq!(seen["starttls_offered"], true);
    let refused = &seen["refused"];
    assert_eq!(refused["tempfail+1@x.test"][0], 451, "{seen}");
    assert_eq!(refused["PermFail+2@x.test"][0], 550, "{seen}");
    assert!(refused.get("ok@x.test").is_none());

    // What a user inspecting the capture sees: the envelope, then the message as sent.
    let files: Vec<_> = std::fs::read_dir(capture.path())
        .expect("capture dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let captured = std::fs::read_to_string(&files[0]).expect("captured");
    assert!(
        captured.starts_with(
            "Return-Path: <a@example.org>\r\nX-Sink-Recipient: <ok@x.test>\r\nFrom: <a@example.org>\r\n"
        ),
        "{captured}"
    );
    assert!(captured.ends_with("Hello sink.\r\n"));

    let (status, body) = http_get(metrics, "/metrics", None).expect("metrics");
    assert_eq!(status, 200);
    let body = String::from_utf8_lossy(&body);
    for line in [
        "tsubame_sink_replies_total{stage=\"rcpt\",outcome=\"tempfail\"} 1",
        "tsubame_sink_replies_total{stage=\"rcpt\",outcome=\"permfail\"} 1",
        "tsubame_sink_replies_total{stage=\"data\",outcome=\"accepted\"} 1",
    ] {
        assert!(body.contains(line), "{line} missing from\n{body}");
    }

    let summary = sink.stop();
    assert_eq!(summary["recipients"]["accepted"], 1, "{summary}");
    assert_eq!(summary["recipients"]["tempfail"], 1);
    assert_eq!(summary["recipients"]["permfail"], 1);
    assert_eq!(summary["messages"]["accepted"], 1);
    assert_eq!(summary["tls_sessions"], 1);
    assert_eq!(summary["transaction_ms"]["count"], 1);
}

#[test]
fn sink_rcpt_shares_hold_within_sampling_error() {
    let sink = SinkProcess::start(&[
        "--rcpt-tempfail",
        "0.1",
        "--rcpt-permfail",
        "0.3",
        "--seed",
        "7",
    ]);
    let seen = sink.python("shares");
    let count = |code: &str| seen["codes"][code].as_u64().unwrap_or(0);
    // 1,000 rolls: the binomial standard deviation is ~9.5 (10 %) and ~14.5 (30 %).
    assert!((60..=140).contains(&count("451")), "{seen}");
    assert!((230..=370).contains(&count("550")), "{seen}");
    assert_eq!(count("250") + count("451") + count("550"), 1000, "{seen}");
    let summary = sink.stop();
    assert_eq!(
        summary["recipients"]["tempfail"].as_u64(),
        Some(count("451"))
    );
    assert_eq!(
        summary["recipients"]["permfail"].as_u64(),
        Some(count("550"))
    );
}

#[test]
fn sink_connection_and_message_limits_data_share_and_latency() {
    let sink = SinkProcess::start(&[
        "--connections-max",
        "1",
        "--messages-per-connection",
        "2",
        "--data-tempfail",
        "1",
        "--data-latency",
        "300ms",
    ]);
    let seen = sink.python("limits");
    assert_eq!(
        seen["second"],
        serde_json::json!(["refused", 421]),
        "{seen}"
    );
    let data = seen["data"].as_array().expect("data");
    // Two messages, each refused 451 after the configured latency, then the connection is
    // recycled: the third attempt finds it closed (421 to MAIL, or the socket gone).
    for attempt in &data[..2] {
        assert_eq!(attempt[0], 451, "{seen}");
        assert!(attempt[1].as_f64().unwrap_or(0.0) >= 0.3, "{seen}");
    }
    assert!(
        data[2] == serde_json::json!(["mail", 421]) || data[2][0] == "disconnected",
        "{seen}"
    );
    let summary = sink.stop();
    assert_eq!(summary["connections_over_limit"], 1, "{summary}");
    assert_eq!(summary["connections_recycled"], 1);
    assert_eq!(summary["messages"]["tempfail"], 2);
    assert_eq!(summary["connections_open_max"], 1);
}

/// The load generator against the sink: a size and domain mix, two recipients, connections
/// spread over source addresses, refusals at RCPT and end of data, connections recycled by
/// the sink. Every message is accounted for on both sides, and the counts agree.
#[test]
fn bench_smtp_and_sink_agree_on_every_message() {
    let sink = SinkProcess::start(&[
        "--rcpt-permfail",
        "0.2",
        "--data-tempfail",
        "0.1",
        "--messages-per-connection",
        "50",
        "--seed",
        "3",
    ]);
    let output = Command::new(BIN)
        .args(["bench", "smtp", "--server", &sink.addr.to_string()])
        .args([
            "--connections",
            "8",
            "--messages",
            "2000",
            "--recipients",
            "2",
        ])
        .args([
            "--size",
            "1k:3,20k:1",
            "--domain",
            "gmail.test:2,yahoo.test:1",
        ])
        .args(["--source", "127.9.0.0/29", "--json"])
        .output()
        .expect("run bench");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bench: Value = serde_json::from_slice(&output.stdout).expect("bench json");
    let summary = sink.stop();
    let n = |v: &Value| v.as_u64().unwrap_or(u64::MAX);
    let (accepted, tempfailed, permfailed) = (
        n(&bench["accepted"]),
        n(&bench["tempfailed"]),
        n(&bench["permfailed"]),
    );
    assert_eq!(accepted + tempfailed + permfailed, 2000, "{bench}");
    assert_eq!(n(&bench["failed"]), 0, "{bench}");
    assert_eq!(accepted, n(&summary["messages"]["accepted"]), "{summary}");
    assert_eq!(tempfailed, n(&summary["messages"]["tempfail"]), "{summary}");
    assert_eq!(
        n(&bench["recipients_refused"]),
        n(&summary["recipients"]["permfail"])
    );
    // Both recipients refused: about 0.2² of the messages, refused before their content.
    assert!((40..=130).contains(&permfailed), "{bench}");
    assert!(n(&summary["connections_recycled"]) >= 30, "{summary}");
    let per_second: u64 = bench["per_second"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(n)
        .sum();
    assert_eq!(per_second, accepted);
}

/// Without pipelining every command waits for its reply: a message whose recipients were all
/// refused is reset (RSET) and counted, and the session goes on with the next message.
#[test]
fn bench_smtp_without_pipelining_counts_refusals_and_carries_on() {
    let sink = SinkProcess::start(&["--rcpt-permfail", "0.5", "--seed", "11"]);
    let output = Command::new(BIN)
        .args(["bench", "smtp", "--server", &sink.addr.to_string()])
        .args([
            "--connections",
            "2",
            "--messages",
            "300",
            "--recipients",
            "1",
        ])
        .args(["--pipelining", "false", "--json"])
        .output()
        .expect("run bench");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bench: Value = serde_json::from_slice(&output.stdout).expect("bench json");
    let summary = sink.stop();
    let n = |v: &Value| v.as_u64().unwrap_or(u64::MAX);
    assert_eq!(n(&bench["failed"]), 0, "{bench}");
    assert_eq!(
        n(&bench["accepted"]) + n(&bench["permfailed"]),
        300,
        "{bench}"
    );
    assert_eq!(
        n(&bench["permfailed"]),
        n(&summary["recipients"]["permfail"])
    );
    assert!((100..=200).contains(&n(&bench["permfailed"])), "{bench}");
    assert_eq!(n(&bench["accepted"]), n(&summary["messages"]["accepted"]));
    // Two connections for the whole run: refusals did not end a session.
    assert_eq!(n(&summary["connections"]["accepted"]), 2, "{summary}");
}
