//! `tsubame queue summary|ls|show`: the operator's view of a running server's queue.

use clap::Subcommand;
use serde_json::Value;

use crate::admin_client;
use crate::datadir::DataDir;

#[derive(Subcommand)]
pub enum QueueCommand {
    /// Totals and pending recipients per domain.
    Summary,
    /// List queued messages, oldest first.
    Ls {
        /// Start after this message id (the `next` value of the previous page).
        #[arg(long)]
        after: Option<String>,
        /// Messages per page (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show one message: envelope, recipient states, headers.
    Show {
        id: String,
        /// Print the stored message content instead.
        #[arg(long)]
        content: bool,
    },
}

pub fn run(command: QueueCommand, data: &DataDir, json: bool) -> anyhow::Result<()> {
    let (url, token) = data.admin_endpoint()?;
    match command {
        QueueCommand::Summary => {
            let body = admin_client::get(&url, &token, "/admin/v1/queue/summary")?;
            let v: Value = serde_json::from_slice(&body)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!("messages            {}", v["messages"]);
            println!("recipients pending  {}", v["recipients_pending"]);
            println!("bytes               {}", v["bytes"]);
            println!(
                "oldest              {} ({}s)",
                v["oldest_id"].as_str().unwrap_or("-"),
                v["oldest_age_seconds"]
            );
            println!();
            println!("{:<40} {:>10} {:>10}", "DOMAIN", "RCPTS", "MESSAGES");
            for d in v["domains"].as_array().into_iter().flatten() {
                println!(
                    "{:<40} {:>10} {:>10}",
                    d["domain"].as_str().unwrap_or(""),
                    d["recipients"].to_string(),
                    d["messages"].to_string()
                );
            }
        }
        QueueCommand::Ls { after, limit } => {
            let mut path = format!("/admin/v1/queue/messages?limit={limit}");
            if let Some(after) = after {
                path.push_str(&format!("&after={after}"));
            }
            let v: Value = serde_json::from_slice(&admin_client::get(&url, &token, &path)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!(
                "{:<26} {:>8} {:>6} {:>7}  SENDER",
                "ID", "SIZE", "RCPTS", "PENDING"
            );
            for m in v["messages"].as_array().into_iter().flatten() {
                let sender = m["sender"].as_str().unwrap_or("");
                let sender = if sender.is_empty() { "<>" } else { sender };
                println!(
                    "{:<26} {:>8} {:>6} {:>7}  {}",
                    m["id"].as_str().unwrap_or(""),
                    m["size"].to_string(),
                    m["recipients"].to_string(),
                    m["recipients_pending"].to_string(),
                    sender
                );
            }
            if let Some(next) = v["next"].as_str() {
                println!("more: --after {next}");
            }
        }
        QueueCommand::Show { id, content } => {
            if content {
                let body = admin_client::get(
                    &url,
                    &token,
                    &format!("/admin/v1/queue/messages/{id}/content"),
                )?;
                use std::io::Write;
                std::io::stdout().write_all(&body)?;
                return Ok(());
            }
            let v: Value = serde_json::from_slice(&admin_client::get(
                &url,
                &token,
                &format!("/admin/v1/queue/messages/{id}"),
            )?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!("id        {}", v["id"].as_str().unwrap_or(""));
            println!("sender    <{}>", v["sender"].as_str().unwrap_or(""));
            println!("size      {}", v["size"]);
            println!(
                "client    {} ({})",
                v["client_ip"].as_str().unwrap_or(""),
                v["helo"].as_str().unwrap_or("")
            );
            for r in v["recipients"].as_array().into_iter().flatten() {
                println!(
                    "rcpt      <{}> {}",
                    r["address"].as_str().unwrap_or(""),
                    r["state"].as_str().unwrap_or("")
                );
            }
            println!();
            print!("{}", v["headers"].as_str().unwrap_or(""));
        }
    }
    Ok(())
}
