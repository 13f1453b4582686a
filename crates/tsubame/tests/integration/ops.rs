//! `tsubame ops export-rules`: the `[[slo]]` tables of a config become Prometheus rules and
//! Sloth specs; Prometheus's own `promtool` checks the rules and, with synthetic series,
//! that the page and ticket alerts fire when the budget burns, and that a quiet objective
//! (fewer events than its minimum) raises nothing however bad its events.

use std::path::Path;
use std::process::Command;

use crate::harness::BIN;

const CONFIG: &str = r#"
[[slo]]
name = "delivery-7s"
kind = "delivery_latency"
threshold = "7s"
objective = 99.9

[[slo]]
name = "acceptance"
kind = "acceptance"
objective = 99.99
min_events = 100

[[slo]]
name = "webhooks-1m"
kind = "webhook_freshness"
threshold = "60s"
objective = 99.0

[[slo]]
name = "acme-delivery"
kind = "delivery_latency"
threshold = "10s"
objective = 99.0
tenant = "acme"
"#;

fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool (Debian package prometheus; scripts/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn exported_rules_pass_promtool_and_alert_when_the_budget_burns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tsubame.toml");
    std::fs::write(&config, CONFIG).expect("config");
    let out = Command::new(BIN)
        .args(["ops", "export-rules", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("tsubame ops export-rules");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rules = std::fs::read_to_string(dir.path().join("tsubame-slo-rules.yml")).expect("rules");
    let sloth = std::fs::read_to_string(dir.path().join("tsubame-slo-sloth.yml")).expect("sloth");
    assert!(
        rules.contains("# not exported: acme-delivery: per tenant"),
        "{rules}"
    );
    assert!(
        sloth.contains("name: 'delivery-7s'") && sloth.contains("objective: 99.9"),
        "{sloth}"
    );
    assert!(
        rules.contains("tsubame_webhook_event_age_seconds_bucket{le=\"60\"}"),
        "{rules}"
    );
    promtool(&["check", "rules", "tsubame-slo-rules.yml"], dir.path());

    // 3 % of deliveries late against a 0.1 % budget (30×) for three hours, one message a
    // second; acceptance: one refusal by our fault every ten minutes and nothing else,
    // 100 % bad but far under its 100-event minimum, so the page alerts listed are exactly
    // the delivery objective's (an acceptance alert would be an unexpected one).
    let tests = r#"
rule_files:
  - tsubame-slo-rules.yml
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'tsubame_delivery_latency_seconds_count'
        values: '0+60x180'
      - series: 'tsubame_delivery_latency_seconds_bucket{le="7"}'
        values: '0+58.2x180'
      - series: 'tsubame_smtp_messages_rejected_total{reason="spool_error"}'
        values: '0+0.1x180'
    alert_rule_test:
      - eval_time: 2h
        alertname: TsubameSloBurnPage
        exp_alerts:
          - exp_labels:
              severity: page
              slo: delivery-7s
              kind: delivery_latency
            exp_annotations:
              summary: 'SLO delivery-7s (delivery_latency 99.9 %) is burning its error budget too fast'
              runbook_url: 'https://github.com/tsubame-mail/tsubame/blob/main/docs/operations.md#slo-alerts'
      - eval_time: 2h
        alertname: TsubameSloBurnTicket
        exp_alerts:
          - exp_labels:
              severity: ticket
              slo: delivery-7s
              kind: delivery_latency
            exp_annotations:
              summary: 'SLO delivery-7s (delivery_latency 99.9 %) is burning its error budget too fast'
              runbook_url: 'https://github.com/tsubame-mail/tsubame/blob/main/docs/operations.md#slo-alerts'
  - interval: 1m
    input_series:
      - series: 'tsubame_delivery_latency_seconds_count'
        values: '0+60x180'
      - series: 'tsubame_delivery_latency_seconds_bucket{le="7"}'
        values: '0+60x180'
    alert_rule_test:
      - eval_time: 2h
        alertname: TsubameSloBurnPage
        exp_alerts: []
"#;
    std::fs::write(dir.path().join("tests.yml"), tests).expect("tests");
    let passed = promtool(&["test", "rules", "tests.yml"], dir.path());
    assert!(passed.contains("SUCCESS"), "{passed}");

    // A bad [[slo]] is refused naming its field.
    std::fs::write(&config, "[[slo]]\nname = \"x\"\nkind = \"delivery_latency\"\nthreshold = \"6s\"\nobjective = 99.9\n").expect("config");
    let refused = Command::new(BIN)
        .args(["config", "check"])
        .arg(&config)
        .output()
        .expect("config check");
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && text.contains("slo[0].threshold"),
        "{text}"
    );
}

/// The server evaluates its objectives from its own counters: deliveries through the API
/// to a sink count for the latency objectives (an impossible 0.1 ms threshold pages, a
/// 10 s one keeps its whole budget), stored messages for acceptance, events reaching a
/// webhook receiver for webhook freshness (per tenant), and
/// `tsubame ops slo` shows them, also after a kill -9 and a restart.
#[test]
fn the_server_keeps_budgets_and_burn_rates_of_its_objectives() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (_sink, mut server) = crate::api::relaying_to_sink_with_config(
        capture.path(),
        "[[slo]]\nname = \"instant\"\nkind = \"delivery_latency\"\nthreshold = \"0.1ms\"\nobjective = 99.9\nmin_events = 10\n\
         [[slo]]\nname = \"relaxed\"\nkind = \"delivery_latency\"\nthreshold = \"10s\"\nobjective = 99.9\nmin_events = 10\n\
         [[slo]]\nname = \"accept\"\nkind = \"acceptance\"\nobjective = 99.9\nmin_events = 10\n\
         [[slo]]\nname = \"api\"\nkind = \"api_latency\"\nthreshold = \"10s\"\nobjective = 99.9\n\
         [[slo]]\nname = \"hooks\"\nkind = \"webhook_freshness\"\nthreshold = \"60s\"\nobjective = 99.9\ntenant = \"acme\"\n\
         [[slo]]\nname = \"beta-only\"\nkind = \"delivery_latency\"\nthreshold = \"10s\"\nobjective = 99.9\ntenant = \"beta\"\n\
         [webhooks]\nallow_networks = [\"127.0.0.0/8\"]\n",
    );
    server.cli(&["tenant", "add", "acme"]);
    crate::api::add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    // The objective's tenant was added after start-up: it is looked up again within 5 s.
    std::thread::sleep(std::time::Duration::from_millis(5_500));
    let receiver = crate::events::Receiver::start(false);
    let hook = crate::campaigns::call(
        &server,
        "POST",
        "/v1/webhooks",
        key.trim(),
        serde_json::json!({"url": format!("http://127.0.0.1:{}/hook", receiver.port)}),
    );
    assert_eq!(hook["status"], 201, "{hook}");
    let messages: Vec<String> = (0..20)
        .map(|i| format!(r#"{{"from":"news@acme.test","to":["u{i}@x.test"],"text":"t"}}"#))
        .collect();
    let sent = crate::api::post(
        &server,
        key.trim(),
        &format!(r#"{{"messages":[{}]}}"#, messages.join(",")),
    );
    assert_eq!(sent["status"], 200, "{sent}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        let text = server.cli(&["ops", "slo", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        let by = |name: &str| {
            v["slos"]
                .as_array()
                .and_then(|a| a.iter().find(|s| s["name"] == name).cloned())
                .unwrap_or_default()
        };
        if by("relaxed")["total"] == 20
            && by("accept")["total"].as_u64() >= Some(20)
            && by("hooks")["total"].as_u64() >= Some(40)
        {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    let by = |name: &str| {
        status["slos"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == name).cloned())
            .expect("objective")
    };
    let instant = by("instant");
    assert_eq!(
        (&instant["good"], &instant["total"]),
        (&serde_json::json!(0), &serde_json::json!(20))
    );
    assert_eq!(instant["alert"][0], "page", "{instant}");
    assert!(instant["budget_left"].as_f64().unwrap() < 0.0, "{instant}");
    let relaxed = by("relaxed");
    assert_eq!(relaxed["good"], 20);
    assert_eq!(relaxed["budget_left"], 1.0);
    assert!(relaxed["alert"].is_null(), "{relaxed}");
    assert_eq!(relaxed["burn_rates"][0], serde_json::json!(["5m", 0.0]));
    let accept = by("accept");
    assert_eq!(accept["good"], accept["total"], "{accept}");
    assert_eq!(
        by("beta-only")["total"],
        0,
        "another tenant's objective counts nothing of acme's"
    );
    // Accepted and delivered events of the 20 messages reached acme's endpoint in time.
    let hooks = by("hooks");
    assert_eq!(hooks["good"], hooks["total"], "{hooks}");
    let api = by("api");
    assert!(
        api["total"].as_u64() >= Some(1),
        "the send request counts: {api}"
    );
    assert_eq!(api["good"], api["total"], "{api}");
    // The counters are saved every 5 s: after a kill -9 and a restart they are back.
    std::thread::sleep(std::time::Duration::from_millis(5_500));
    server.kill9();
    server.spawn(&[]);
    let text = server.cli(&["ops", "slo", "--json"]);
    let after: serde_json::Value = serde_json::from_str(&text).expect("json");
    let relaxed_after = after["slos"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "relaxed").cloned())
        .expect("relaxed");
    assert_eq!(
        (&relaxed_after["good"], &relaxed_after["total"]),
        (&serde_json::json!(20), &serde_json::json!(20)),
        "{after}"
    );
    let table = server.cli(&["ops", "slo"]);
    assert!(
        table.contains("instant") && table.contains("page"),
        "{table}"
    );
}

/// Every PromQL query of the Grafana dashboards parses (promtool) and names only metrics the
/// server exports (read from its `/metrics` after a message went through the API and one
/// through SMTP) or the recording rules `tsubame ops export-rules` writes.
#[test]
fn dashboards_query_only_metrics_the_server_exports() {
    let capture = tempfile::tempdir().expect("tempdir");
    let (_sink, server) = crate::api::relaying_to_sink_with_config(capture.path(), "");
    server.cli(&["tenant", "add", "acme"]);
    crate::api::add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    let sent = crate::api::post(
        &server,
        key,
        r#"{"messages":[{"from":"news@acme.test","to":["ann@x.test"],"text":"t"}]}"#,
    );
    assert_eq!(sent["status"], 200, "{sent}");
    let port = server.smtp.port().to_string();
    let messages = serde_json::json!([{ "mail_from": "news@acme.test", "from": "news@acme.test", "to": "bob@x.test", "subject": "By SMTP" }]);
    let smtp = crate::harness::python_json(
        "smtp_tenant.py",
        &["127.0.0.1", &port, "apikey", key, &messages.to_string()],
    );
    assert_eq!(smtp["sent"][0]["code"], 250, "{smtp}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let exported = loop {
        let (status, body) =
            crate::harness::http_get(server.http, "/metrics", None).expect("GET /metrics");
        assert_eq!(status, 200);
        let text = String::from_utf8_lossy(&body).into_owned();
        if text.contains("tsubame_delivery_latency_seconds_count")
            && text.contains("tsubame_delivery_recipients_total")
            && text.contains("tsubame_delivery_connections")
        {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no delivery metrics yet:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let names: std::collections::HashSet<&str> = exported
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let recorded: Vec<String> = ops::budget::WINDOWS
        .iter()
        .map(|w| {
            format!(
                "tsubame_slo:error_ratio:rate{}",
                ops::duration::prometheus(*w)
            )
        })
        .collect();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/dashboards");
    let mut checked = 0;
    // Each query also goes through Prometheus's own parser, as a recording rule.
    let mut syntax = String::from("groups:\n  - name: dashboard-queries\n    rules:\n");
    for entry in std::fs::read_dir(&dir).expect("dashboards") {
        let path = entry.expect("entry").path();
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
        for panel in dashboard["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().expect("targets") {
                let expr = target["expr"].as_str().expect("expr");
                syntax.push_str(&format!(
                    "      - record: dashboard:query:{checked}\n        expr: '{}'\n",
                    expr.replace('\'', "''")
                ));
                let mut rest = expr;
                while let Some(start) = rest.find("tsubame_") {
                    let name: String = rest[start..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                        .collect();
                    rest = &rest[start + name.len()..];
                    assert!(
                        names.contains(name.as_str()) || recorded.contains(&name),
                        "{}: panel {:?} queries {name}, which the server does not export",
                        path.display(),
                        panel["title"]
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 20, "only {checked} metric names checked");
    let rules = tempfile::tempdir().expect("tempdir");
    std::fs::write(rules.path().join("queries.yml"), syntax).expect("write");
    promtool(&["check", "rules", "queries.yml"], rules.path());
}
