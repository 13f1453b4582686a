//! `tsubame ops`: the operations tools on the command line.

use std::path::PathBuf;

use anyhow::Context;

use serde_json::Value;

use crate::admin_client;
use crate::config::{self, Overrides};
use crate::datadir::DataDir;

#[derive(clap::Subcommand, Debug)]
pub enum OpsCommand {
    /// Write the config's [[slo]] objectives as Prometheus recording and alerting rules
    /// (tsubame-slo-rules.yml) and Sloth SLO specs (tsubame-slo-sloth.yml).
    ExportRules {
        /// TOML configuration file holding the [[slo]] tables.
        #[arg(long)]
        config: PathBuf,
        /// Directory to write the files in.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// The service name in the Sloth specs.
        #[arg(long, default_value = "tsubame")]
        service: String,
    },
    /// Show a running server's objectives: budget left, burn rates, alert.
    Slo {
        /// Data directory of the running server (holds its admin URL and token).
        #[arg(long, default_value = "./tsubame-data")]
        data_dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List alerts: the open ones, or all of the last days.
    Alerts {
        #[arg(long, default_value = "./tsubame-data")]
        data_dir: PathBuf,
        /// Every alert of the last --days, not only open ones.
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge an alert (stops its escalation).
    Ack {
        id: String,
        /// Who answers.
        #[arg(long)]
        by: String,
        #[arg(long, default_value = "./tsubame-data")]
        data_dir: PathBuf,
    },
    /// Resolve an alert; one answered late needs --reason (out_of_hours,
    /// several_incidents, notification_failed, wrong_priority, other).
    Resolve {
        id: String,
        #[arg(long)]
        by: String,
        #[arg(long)]
        reason: Option<String>,
        /// Free text to go with the reason.
        #[arg(long, default_value = "")]
        text: String,
        #[arg(long, default_value = "./tsubame-data")]
        data_dir: PathBuf,
    },
    /// Silence alerts matching labels (alertname=RULE, site=…, provider=…, tenant=…).
    Silence {
        /// LABEL=VALUE, repeatable (a value ending in * matches by prefix).
        #[arg(long = "match", required = true)]
        matchers: Vec<String>,
        /// How long, e.g. 2h.
        #[arg(long = "for")]
        duration: String,
        /// Start later (RFC 3339): a one-off maintenance window.
        #[arg(long)]
        starts: Option<String>,
        #[arg(long)]
        by: String,
        #[arg(long, default_value = "")]
        comment: String,
        #[arg(long, default_value = "./tsubame-data")]
        data_dir: PathBuf,
    },
    /// Who is on call now (L1, L2, L3) and when the shift ends.
    Oncall {
        #[arg(long, default_value = "./tsubame-data")]
        data_dir: PathBuf,
    },
    /// Make a report now (daily, weekly, monthly) and print where it is archived.
    Report {
        kind: String,
        /// The period so far instead of the last one due.
        #[arg(long)]
        so_far: bool,
        #[arg(long, default_value = "./tsubame-data")]
        data_dir: PathBuf,
    },
    /// Forecast a planned campaign: its delivery time under the current shaping, the
    /// spool it needs, and whether the delivery latency objective holds.
    Forecast {
        /// DOMAIN=COUNT, repeatable (gmail.com=550000).
        #[arg(long = "recipients", required = true)]
        recipients: Vec<String>,
        /// Bytes per message.
        #[arg(long, default_value_t = 50_000)]
        message_bytes: u64,
        /// The campaign's pace, recipients per second.
        #[arg(long)]
        rate: Option<f64>,
        /// Start time (RFC 3339; now when absent).
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "./tsubame-data")]
        data_dir: PathBuf,
    },
}

fn pairs(items: &[String], what: &str) -> anyhow::Result<serde_json::Map<String, Value>> {
    let mut out = serde_json::Map::new();
    for item in items {
        let (k, v) = item
            .split_once('=')
            .with_context(|| format!("{what}: {item:?} is not NAME=VALUE"))?;
        out.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
    }
    Ok(out)
}

fn call(data_dir: PathBuf, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let (url, token) = DataDir::new(data_dir).admin_endpoint()?;
    let bytes = match (method, body) {
        ("GET", _) => admin_client::get(&url, &token, path)?,
        (_, body) => admin_client::post(&url, &token, path, &body.unwrap_or(Value::Null))?,
    };
    Ok(serde_json::from_slice(&bytes)?)
}

fn alerts_table(v: &Value) {
    println!(
        "{:<20} {:<3} {:<20} {:<13} {:<3} {:<25}  summary",
        "id", "pri", "rule", "state", "lvl", "triggered"
    );
    for a in v["alerts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        println!(
            "{:<20} {:<3} {:<20} {:<13} L{:<2} {:<25}  {}",
            a["id"].as_str().unwrap_or("?"),
            a["priority"].as_str().unwrap_or("?"),
            a["rule"].as_str().unwrap_or("?"),
            a["state"].as_str().unwrap_or("?"),
            a["level"],
            a["triggered_at"].as_str().unwrap_or("?"),
            a["summary"].as_str().unwrap_or(""),
        );
    }
}

fn run_alerts(command: OpsCommand) -> anyhow::Result<()> {
    match command {
        OpsCommand::Alerts {
            data_dir,
            all,
            days,
            json,
        } => {
            let state = if all { "all" } else { "open" };
            let v = call(
                data_dir,
                "GET",
                &format!("/admin/v1/alerts?state={state}&days={days}"),
                None,
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                alerts_table(&v);
            }
        }
        OpsCommand::Ack { id, by, data_dir } => {
            let v = call(
                data_dir,
                "POST",
                &format!("/admin/v1/alerts/{id}/ack"),
                Some(serde_json::json!({"by": by})),
            )?;
            println!("{id} acknowledged by {by}; in time: {}", v["in_time"]);
        }
        OpsCommand::Resolve {
            id,
            by,
            reason,
            text,
            data_dir,
        } => {
            call(
                data_dir,
                "POST",
                &format!("/admin/v1/alerts/{id}/resolve"),
                Some(serde_json::json!({"by": by, "reason": reason, "text": text})),
            )?;
            println!("{id} resolved by {by}");
        }
        OpsCommand::Silence {
            matchers,
            duration,
            starts,
            by,
            comment,
            data_dir,
        } => {
            let v = call(
                data_dir,
                "POST",
                "/admin/v1/silences",
                Some(
                    serde_json::json!({"matchers": pairs(&matchers, "--match")?, "duration": duration,
                    "starts_at": starts, "by": by, "comment": comment}),
                ),
            )?;
            println!(
                "{} until {}",
                v["id"].as_str().unwrap_or("?"),
                v["ends_at"].as_str().unwrap_or("?")
            );
        }
        OpsCommand::Oncall { data_dir } => {
            let v = call(data_dir, "GET", "/admin/v1/oncall", None)?;
            for l in v["levels"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                println!(
                    "L{} {} {}",
                    l["level"],
                    l["name"].as_str().unwrap_or("?"),
                    l["email"].as_str().unwrap_or("")
                );
            }
            println!("shift ends {}", v["shift_ends_at"].as_str().unwrap_or("-"));
        }
        OpsCommand::Report {
            kind,
            so_far,
            data_dir,
        } => {
            let v = call(
                data_dir,
                "POST",
                "/admin/v1/reports",
                Some(serde_json::json!({"kind": kind, "so_far": so_far})),
            )?;
            println!(
                "{} ({} {}): GET /admin/v1/reports/{}",
                v["id"].as_str().unwrap_or("?"),
                v["kind"].as_str().unwrap_or("?"),
                v["period"].as_str().unwrap_or("?"),
                v["id"].as_str().unwrap_or("?")
            );
        }
        OpsCommand::Forecast {
            recipients,
            message_bytes,
            rate,
            start,
            json,
            data_dir,
        } => {
            let mut counts = serde_json::Map::new();
            for (domain, n) in pairs(&recipients, "--recipients")? {
                let n: u64 = n
                    .as_str()
                    .unwrap_or("")
                    .replace('_', "")
                    .parse()
                    .with_context(|| format!("--recipients {domain}: {n} is not a count"))?;
                counts.insert(domain, Value::from(n));
            }
            let v = call(
                data_dir,
                "POST",
                "/admin/v1/ops/forecast",
                Some(
                    serde_json::json!({"recipients": counts, "message_bytes": message_bytes,
                    "rate_per_sec": rate, "start": start}),
                ),
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!(
                "{} recipients: {:.0} s ({} → {}); spool {:.1} MiB{}; latency objective: {}",
                v["recipients"],
                v["seconds"].as_f64().unwrap_or(0.0),
                v["starts_at"].as_str().unwrap_or("?"),
                v["ends_at"].as_str().unwrap_or("?"),
                v["spool_bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
                match v["fits_disk"].as_bool() {
                    Some(false) => " (MORE than the free disk)",
                    _ => "",
                },
                match v["latency_holds"].as_bool() {
                    Some(true) => "holds".to_string(),
                    Some(false) => format!(
                        "at risk (waits up to {:.0} s)",
                        v["worst_wait_s"].as_f64().unwrap_or(0.0)
                    ),
                    None => "none configured".to_string(),
                }
            );
            println!(
                "{:<40} {:<10} {:>10} {:>10} {:>10}  bound",
                "site", "provider", "recipients", "msg/s", "seconds"
            );
            for l in v["lanes"].as_array().map(Vec::as_slice).unwrap_or_default() {
                println!(
                    "{:<40} {:<10} {:>10} {:>10.1} {:>10.1}  {}",
                    l["site"].as_str().unwrap_or("?"),
                    l["provider"].as_str().unwrap_or("?"),
                    l["recipients"],
                    l["rate"].as_f64().unwrap_or(0.0),
                    l["seconds"].as_f64().unwrap_or(0.0),
                    l["bound"].as_str().unwrap_or("?")
                );
            }
            for u in v["unroutable"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                println!("left out: {}", u.as_str().unwrap_or("?"));
            }
        }
        _ => unreachable!("the other commands are run above"),
    }
    Ok(())
}

fn rate(value: &Value) -> String {
    value
        .as_f64()
        .map_or("-".to_string(), |r| format!("{r:.2}x"))
}

pub fn run(command: OpsCommand) -> anyhow::Result<()> {
    match command {
        OpsCommand::Alerts { .. }
        | OpsCommand::Ack { .. }
        | OpsCommand::Resolve { .. }
        | OpsCommand::Silence { .. }
        | OpsCommand::Oncall { .. }
        | OpsCommand::Report { .. }
        | OpsCommand::Forecast { .. } => run_alerts(command),
        OpsCommand::ExportRules {
            config: file,
            out,
            service,
        } => {
            let config = config::validate(config::read(&file)?, &Overrides::default())?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            for (name, text) in [
                (
                    "tsubame-slo-rules.yml",
                    ops::rules::prometheus_rules(&config.slos),
                ),
                (
                    "tsubame-slo-sloth.yml",
                    ops::rules::sloth_spec(&config.slos, &service),
                ),
            ] {
                let path = out.join(name);
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("{}", path.display());
            }
            Ok(())
        }
        OpsCommand::Slo { data_dir, json } => {
            let (url, token) = DataDir::new(data_dir).admin_endpoint()?;
            let body = admin_client::get(&url, &token, "/admin/v1/slo")?;
            let v: Value = serde_json::from_slice(&body)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!(
                "{:<24} {:<18} {:>9} {:>12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  alert",
                "slo", "kind", "objective", "budget left", "5m", "30m", "1h", "6h", "1d", "3d"
            );
            for slo in v["slos"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let rates: Vec<String> = slo["burn_rates"]
                    .as_array()
                    .map(|rs| rs.iter().map(|r| rate(&r[1])).collect())
                    .unwrap_or_default();
                let alert = match slo["alert"].as_array() {
                    Some(a) => format!("{} ({}x)", a[0].as_str().unwrap_or("?"), a[1]),
                    None => "-".into(),
                };
                println!(
                    "{:<24} {:<18} {:>8}% {:>11.1}% {}  {alert}",
                    slo["name"].as_str().unwrap_or("?"),
                    slo["kind"].as_str().unwrap_or("?"),
                    slo["objective"],
                    slo["budget_left"].as_f64().unwrap_or(1.0) * 100.0,
                    rates
                        .iter()
                        .map(|r| format!("{r:>8}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
            Ok(())
        }
    }
}
