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
}

fn rate(value: &Value) -> String {
    value
        .as_f64()
        .map_or("-".to_string(), |r| format!("{r:.2}x"))
}

pub fn run(command: OpsCommand) -> anyhow::Result<()> {
    match command {
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
