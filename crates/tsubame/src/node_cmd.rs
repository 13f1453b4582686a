//! `tsubame node ls|drain`: cluster membership as the local node sees it, and draining it.

use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::Value;

use crate::admin_client;
use crate::datadir::DataDir;

#[derive(Subcommand)]
pub enum NodeCommand {
    /// The cluster's nodes: state, health, share of the cluster-wide limits, queue.
    Ls,
    /// Stop accepting, finish deliveries in progress, hand the rest of the queue to the
    /// other nodes, and exit.
    Drain {
        /// Return at once instead of waiting for the server to exit.
        #[arg(long)]
        no_wait: bool,
    },
}

pub fn run(command: NodeCommand, data: &DataDir, json: bool) -> anyhow::Result<()> {
    let (url, token) = data.admin_endpoint()?;
    match command {
        NodeCommand::Ls => {
            let body = admin_client::get(&url, &token, "/admin/v1/cluster/nodes")?;
            let v: Value = serde_json::from_slice(&body)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!(
                "{:<16} {:<12} {:<7} {:>6} {:>8} {:>9}  SMTP",
                "NODE", "STATE", "HEALTH", "SHARE", "QUEUED", "SILENT"
            );
            for node in v["nodes"].as_array().into_iter().flatten() {
                let name = node["name"].as_str().unwrap_or("?");
                let me = if Some(name) == v["node"].as_str() {
                    "*"
                } else {
                    ""
                };
                let health = if node["alive"].as_bool() == Some(true) {
                    "alive"
                } else {
                    "silent"
                };
                println!(
                    "{:<16} {:<12} {:<7} {:>5.0}% {:>8} {:>7}ms  {}",
                    format!("{name}{me}"),
                    node["state"].as_str().unwrap_or("?"),
                    health,
                    node["share"].as_f64().unwrap_or(0.0) * 100.0,
                    node["queued"],
                    node["silent_ms"],
                    node["smtp"]
                        .as_array()
                        .map(|a| a
                            .iter()
                            .filter_map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(","))
                        .unwrap_or_default()
                );
            }
            if v["fenced"].as_bool() == Some(true) {
                println!("\nthis node is out of touch with the cluster: delivery is fenced");
            }
        }
        NodeCommand::Drain { no_wait } => {
            admin_client::post(
                &url,
                &token,
                "/admin/v1/cluster/drain",
                &serde_json::json!({}),
            )?;
            println!("draining {url}");
            if no_wait {
                return Ok(());
            }
            // The server removes its admin URL file when it has stopped.
            let started = Instant::now();
            while data.admin_url().exists() {
                if started.elapsed() > Duration::from_secs(600) {
                    anyhow::bail!("still draining after 10 minutes");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            println!("drained in {:.1}s", started.elapsed().as_secs_f64());
        }
    }
    Ok(())
}
