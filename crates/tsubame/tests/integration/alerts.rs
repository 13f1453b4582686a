//! Operations built in, end to end, on an injected clock (the server started with
//! `TSUBAME_OPS_CLOCK=adjustable`; no sleeping for hours): a provider outage at a sink
//! (every recipient 451) → deferrals → the delivery objective's burn-rate alert (P1) and
//! the provider's deferral jump (P2) → Slack, PagerDuty Events v2, a signed webhook (local
//! receivers checking each payload against its published format) and mail to the person
//! on call, sent through tsubame itself to aiosmtpd → the P2 acknowledged in time → the
//! P1 escalated to L2 when nobody answered in 15 minutes → acknowledged late → a resolve
//! without a miss reason refused, with one accepted → silenced → the weekly chat report and
//! the monthly HTML report show both with the right response attainment.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::sink::{MxSink, SinkOptions};

use crate::harness::TestServer;
use crate::sink::SinkProcess;

const SECRET: &str = "ops-hook-secret-0123456789";
const ROUTING_KEY: &str = "R0123456789abcdefR0123456789abcd";

/// The notification receivers (tests/py/ops_receiver.py).
struct Receivers {
    child: Child,
    port: u16,
    record: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Receivers {
    fn start(fail_first: u32) -> Receivers {
        let dir = tempfile::tempdir().expect("tempdir");
        let record = dir.path().join("received.jsonl");
        let mut child = Command::new("python3")
            .arg(format!(
                "{}/tests/py/ops_receiver.py",
                env!("CARGO_MANIFEST_DIR")
            ))
            .arg(&record)
            .arg(SECRET)
            .arg(fail_first.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("port");
        Receivers {
            port: line.trim().parse().expect("port"),
            child,
            record,
            _dir: dir,
        }
    }

    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until a record on `path` matches `want`; returns it.
    fn wait(&self, path: &str, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(r) = self
                .records()
                .into_iter()
                .find(|r| r["path"] == path && r["refused"].is_null() && want(&r["body"]))
            {
                assert_eq!(
                    r["errors"],
                    json!([]),
                    "{path} payload breaks its format: {r}"
                );
                return r["body"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {what} on {path}: {:#?}",
                self.records()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Receivers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn admin(server: &TestServer, method: &str, path: &str, body: Value) -> (u64, Value) {
    let answer = crate::campaigns::call(server, method, path, &server.token(), body);
    (
        answer["status"].as_u64().unwrap_or(0),
        answer["body"].clone(),
    )
}

fn evaluate(server: &TestServer) -> Vec<Value> {
    let (status, body) = admin(server, "POST", "/admin/v1/ops/evaluate", json!({}));
    assert_eq!(status, 200, "{body}");
    body["changes"].as_array().cloned().unwrap_or_default()
}

/// The operations clock now, after moving it by `by`.
fn advance(server: &TestServer, by: &str) -> jiff::Timestamp {
    let (status, body) = admin(
        server,
        "POST",
        "/admin/v1/ops/clock",
        json!({"advance": by}),
    );
    assert_eq!(status, 200, "{body}");
    body["now"].as_str().expect("now").parse().expect("time")
}

fn utc(t: jiff::Timestamp) -> jiff::Zoned {
    t.to_zoned(jiff::tz::TimeZone::UTC)
}

/// Moves the clock to `target` (plus a minute) and returns the new now.
fn advance_to(
    server: &TestServer,
    now: jiff::Timestamp,
    target: jiff::Timestamp,
) -> jiff::Timestamp {
    let seconds = (target.as_second() - now.as_second()).max(0) + 60;
    advance(server, &format!("{seconds}s"))
}

fn open_alert(server: &TestServer, rule: &str) -> Value {
    let v = server.admin_json("/admin/v1/alerts");
    v["alerts"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["rule"] == rule).cloned())
        .unwrap_or_else(|| panic!("no open {rule} alert: {v}"))
}

fn mail_to(sink: &MxSink, address: &str, contains: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(m) = sink.messages().into_iter().find(|m| {
            m["recipients"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x == address))
                && m["content"].as_str().is_some_and(|c| c.contains(contains))
        }) {
            return m["content"].as_str().unwrap_or_default().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no mail to {address} with {contains:?}: {:#?}",
            sink.messages()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_outage_pages_escalates_and_shows_in_the_weekly_and_monthly_reports() {
    let receivers = Receivers::start(1);
    let outage = SinkProcess::start(&["--rcpt-tempfail", "1.0"]);
    let mail_dir = tempfile::tempdir().expect("tempdir");
    let (oncall_mail, mail_port) =
        MxSink::start_free(&["127.0.0.1"], mail_dir.path(), SinkOptions::default());
    let hook = |path: &str| format!("http://127.0.0.1:{}{path}", receivers.port);
    let config = format!(
        r#"
[delivery]
tls = "disabled"
retry_initial = "1s"
retry_factor = 1.0
retry_jitter = 0.0
[[delivery.route]]
domains = ["x.test"]
hosts = ["{outage}"]
[[delivery.route]]
domains = ["ops.test"]
hosts = ["127.0.0.1:{mail_port}"]

[[slo]]
name = "delivery-1s"
kind = "delivery_latency"
threshold = "1s"
objective = 99.0
min_events = 5

[ops]
evaluate_every = "5m"
# Only the outage's alerts here: the machine's disk and certificate (shared with other
# tests running at once) are kept out of the scenario.
[ops.thresholds]
disk_free_min = 0.0001
disk_full_within = "1s"
oldest_message = "1d"
tls_warn = "1s"

[[ops.person]]
name = "ann"
email = "ann@ops.test"
[[ops.person]]
name = "bob"
email = "bob@ops.test"
[[ops.person]]
name = "dee"
email = "dee@ops.test"

[ops.oncall]
people = ["ann", "bob"]
managers = ["dee"]
start = "2026-01-05T00:00:00Z"
shift = "7d"

[[ops.notify]]
name = "slack"
kind = "slack"
url = "{slack}"
reports = ["weekly", "monthly"]
[[ops.notify]]
name = "pagerduty"
kind = "pagerduty"
url = "{pagerduty}"
routing_key = "{ROUTING_KEY}"
min_priority = "P2"
[[ops.notify]]
name = "hook"
kind = "webhook"
url = "{webhook}"
secret = "{SECRET}"
[[ops.notify]]
name = "oncall-mail"
kind = "mail"
from = "alerts@mx.test"
to = ["oncall"]

[ops.reports]
weekly = "mon 00:00"
monthly = true
"#,
        outage = outage.addr,
        slack = hook("/slack"),
        pagerduty = hook("/pagerduty"),
        webhook = hook("/hook"),
    );
    let server = TestServer::start_with_env(&config, &[("TSUBAME_OPS_CLOCK", "adjustable")]);
    // Keep the incident clear of a week's or a month's end on the operations clock, so
    // the reports below cover it whole.
    let z = utc(advance(&server, "1ms"));
    if z.weekday() == jiff::civil::Weekday::Sunday || z.day() >= z.days_in_month() - 1 {
        advance(&server, "3d");
    }

    server.cli(&["tenant", "add", "acme"]);
    crate::api::add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let messages: Vec<String> = (0..20)
        .map(|i| format!(r#"{{"from":"news@acme.test","to":["u{i}@x.test"],"text":"t"}}"#))
        .collect();
    let sent = crate::api::post(
        &server,
        key.trim(),
        &format!(r#"{{"messages":[{}]}}"#, messages.join(",")),
    );
    assert_eq!(sent["status"], 200, "{sent}");

    // Deferrals past the 1 s threshold burn the budget; both alerts open.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut changes = Vec::new();
    while !(changes.iter().any(|c: &Value| c["rule"] == "slo_burn")
        && changes.iter().any(|c: &Value| c["rule"] == "deferral_jump"))
    {
        assert!(
            Instant::now() < deadline,
            "no alerts: {changes:?}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
        changes.extend(evaluate(&server));
    }
    let burn = open_alert(&server, "slo_burn");
    let jump = open_alert(&server, "deferral_jump");
    assert_eq!(
        (&burn["priority"], &burn["level"]),
        (&json!("P1"), &json!(1)),
        "{burn}"
    );
    assert_eq!(burn["labels"]["slo"], "delivery-1s");
    assert_eq!(burn["response_window_minutes"], 15);
    assert_eq!(jump["priority"], "P2", "{jump}");
    let (burn_id, jump_id) = (
        burn["id"].as_str().expect("id").to_string(),
        jump["id"].as_str().expect("id").to_string(),
    );
    let oncall = server.admin_json("/admin/v1/oncall");
    let l1 = oncall["levels"][0]["name"]
        .as_str()
        .expect("L1")
        .to_string();
    let l1_mail = oncall["levels"][0]["email"]
        .as_str()
        .expect("mail")
        .to_string();

    // Every channel told, in its format (the first Slack post got 503 and was retried).
    let trigger = receivers.wait("/pagerduty", "trigger", |b| {
        b["dedup_key"] == burn_id.as_str() && b["event_action"] == "trigger"
    });
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["class"], "slo_burn");
    assert!(
        trigger["links"][0]["href"]
            .as_str()
            .is_some_and(|h| h.ends_with("operations.md#alert-slo-burn")),
        "{trigger}"
    );
    let jump_trigger = receivers.wait("/pagerduty", "trigger", |b| {
        b["dedup_key"] == jump_id.as_str()
    });
    assert_eq!(jump_trigger["payload"]["severity"], "error");
    let slack = receivers.wait("/slack", "the P1", |b| {
        b["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("[P1] slo_burn triggered"))
    });
    assert!(slack["blocks"].to_string().contains(&burn_id), "{slack}");
    assert!(
        receivers.records().iter().any(|r| r["refused"] == true),
        "the receiver refused one Slack post first"
    );
    let signed = receivers.wait("/hook", "the signed alert", |b| {
        b["alert"]["id"] == burn_id.as_str() && b["event"] == "triggered"
    });
    assert_eq!(signed["alert"]["priority"], "P1");
    let page = mail_to(&oncall_mail, &l1_mail, &burn_id);
    let parsed = mail_parser::MessageParser::default()
        .parse(page.as_bytes())
        .expect("a message");
    let subject = parsed.subject().unwrap_or_default();
    assert!(
        subject.starts_with("[tsubame P1] objective delivery-1s burns"),
        "{subject}"
    );

    // The P2 is answered at once: in time.
    let (status, acked) = admin(
        &server,
        "POST",
        &format!("/admin/v1/alerts/{jump_id}/ack"),
        json!({"by": l1}),
    );
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["in_time"], true, "{acked}");
    receivers.wait("/pagerduty", "acknowledge", |b| {
        b["dedup_key"] == jump_id.as_str() && b["event_action"] == "acknowledge"
    });

    // Nobody answers the P1 for 16 minutes: L2 is told, by Slack and by mail.
    let mut now = advance(&server, "16m");
    let escalated = evaluate(&server);
    assert!(
        escalated.iter().any(|c| c["alert"] == burn_id.as_str()
            && c["change"] == "escalated"
            && c["level"] == 2),
        "{escalated:?}"
    );
    assert!(
        !escalated.iter().any(|c| c["alert"] == jump_id.as_str()),
        "an acknowledged alert does not escalate: {escalated:?}"
    );
    receivers.wait("/slack", "the escalation", |b| {
        b["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("[P1] slo_burn escalated to L2"))
    });
    let oncall = server.admin_json("/admin/v1/oncall");
    let l2 = oncall["levels"][1]["name"]
        .as_str()
        .expect("L2")
        .to_string();
    let l2_mail = oncall["levels"][1]["email"]
        .as_str()
        .expect("mail")
        .to_string();
    mail_to(&oncall_mail, &l2_mail, "escalated to L2");

    // Acknowledged late; resolving needs a reason from the list.
    let (status, acked) = admin(
        &server,
        "POST",
        &format!("/admin/v1/alerts/{burn_id}/ack"),
        json!({"by": l2}),
    );
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["in_time"], false, "{acked}");
    let path = format!("/admin/v1/alerts/{burn_id}/resolve");
    let (status, refused) = admin(&server, "POST", &path, json!({"by": l2}));
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("miss reason")),
        "{refused}"
    );
    let (status, refused) = admin(
        &server,
        "POST",
        &path,
        json!({"by": l2, "reason": "bad luck"}),
    );
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("reason:")),
        "{refused}"
    );
    let (status, note) = admin(
        &server,
        "POST",
        &format!("/admin/v1/alerts/{burn_id}/notes"),
        json!({"by": l2, "text": "paused x.test and asked the provider"}),
    );
    assert_eq!(status, 201, "{note}");
    let (status, resolved) = admin(
        &server,
        "POST",
        &path,
        json!({"by": l2, "reason": "out_of_hours", "text": "paged at 03:00"}),
    );
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["miss_reason"], "out_of_hours");
    receivers.wait("/pagerduty", "resolve", |b| {
        b["dedup_key"] == burn_id.as_str() && b["event_action"] == "resolve"
    });
    let (status, _) = admin(
        &server,
        "POST",
        &format!("/admin/v1/alerts/{jump_id}/resolve"),
        json!({"by": l1}),
    );
    assert_eq!(status, 200);
    let shown = server.admin_json(&format!("/admin/v1/alerts/{burn_id}"));
    let actions: Vec<&str> = shown["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    for want in [
        "triggered",
        "notified",
        "escalated",
        "acknowledged",
        "note",
        "resolved",
    ] {
        assert!(actions.contains(&want), "{want} missing: {shown}");
    }

    // The provider is still down: silenced, nothing new opens.
    for rule in ["slo_burn", "deferral_jump"] {
        let (status, s) = admin(
            &server,
            "POST",
            "/admin/v1/silences",
            json!({"matchers": {"alertname": rule}, "duration": "60d", "by": l1, "comment": "provider outage, handled"}),
        );
        assert_eq!(status, 201, "{s}");
    }
    assert!(evaluate(&server).is_empty(), "silenced");

    // Next Monday: the weekly report of the incident's week.
    let z = utc(now);
    let monday = z
        .date()
        .checked_add(jiff::Span::new().days(7 - i64::from(z.weekday().to_monday_zero_offset())))
        .expect("date");
    let incident_week = z.date().iso_week_date();
    let week = format!("{}-W{:02}", incident_week.year(), incident_week.week());
    let monday_ts = monday
        .to_zoned(jiff::tz::TimeZone::UTC)
        .expect("zoned")
        .timestamp();
    now = advance_to(&server, now, monday_ts);
    evaluate(&server);
    let weekly = receivers.wait("/slack", "the weekly report", |b| {
        b["text"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("weekly report {week}")))
    });
    let text = weekly["blocks"][1]["text"]["text"]
        .as_str()
        .expect("text")
        .to_string();
    let text = format!(
        "{text}\n--- every alert: {}",
        server.admin_json("/admin/v1/alerts?state=all&days=60")
    );
    assert!(
        text.contains(
            "P1: 1 alerts, 0 of 1 answered in time (0.0 %, below target); misses: out of hours ×1"
        ),
        "{text}"
    );
    assert!(
        text.contains("P2: 1 alerts, 1 of 1 answered in time (100.0 %)"),
        "{text}"
    );
    assert!(text.contains("delivery-1s"), "{text}");

    // The 1st of next month: the monthly report, archived and downloadable.
    let first = z
        .date()
        .first_of_month()
        .checked_add(jiff::Span::new().months(1))
        .expect("date");
    let month = format!("{}-{:02}", z.year(), z.month());
    let first_ts = first
        .to_zoned(jiff::tz::TimeZone::UTC)
        .expect("zoned")
        .timestamp();
    if first_ts > now {
        advance_to(&server, now, first_ts);
        evaluate(&server);
    }
    let archive = server.admin_json("/admin/v1/reports");
    let id = archive["reports"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["kind"] == "monthly" && r["period"] == month.as_str())
        })
        .and_then(|r| r["id"].as_str())
        .unwrap_or_else(|| panic!("no monthly report {month}: {archive}"))
        .to_string();
    let (status, html) = server.admin(&format!("/admin/v1/reports/{id}"));
    assert_eq!(status, 200);
    let html = String::from_utf8(html).expect("utf8");
    assert!(
        html.starts_with("<!doctype html>") && html.contains("<svg"),
        "{html}"
    );
    assert!(
        !html.contains("<script") && !html.contains("src="),
        "self-contained"
    );
    for want in [
        burn_id.as_str(),
        jump_id.as_str(),
        "Answered late: out of hours — paged at 03:00",
        "paused x.test and asked the provider",
        "<td>P1</td><td>1</td><td>0 of 1</td><td class=\"miss\">0.0 %</td><td>out of hours ×1</td>",
        "<td>P2</td><td>1</td><td>1 of 1</td><td class=\"ok\">100.0 %</td>",
        "escalated",
    ] {
        assert!(
            html.contains(want),
            "{want:?} missing from the monthly report:\n{html}"
        );
    }
    receivers.wait("/slack", "the monthly notice", |b| {
        b["text"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("monthly report {month}")))
    });
    // Every payload the receivers saw kept to its format.
    for r in receivers.records() {
        assert!(r["refused"] == true || r["errors"] == json!([]), "{r}");
    }
    drop(outage);
}
