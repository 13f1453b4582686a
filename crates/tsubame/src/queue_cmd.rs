//! `tsubame queue summary|ls|show|pause|resume|retry|bounce|delete`: the operator's view of a
//! running server's queue, and its controls.

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
    /// Show one message: envelope, recipient states, headers, delivery attempts.
    Show {
        id: String,
        /// Print the stored message content instead.
        #[arg(long)]
        content: bool,
    },
    /// Stop delivering to a site (MX set, as in the summary) or a recipient domain.
    Pause(Target),
    /// Resume a paused site or domain.
    Resume(Target),
    /// Retry deferred recipients now (all, or those matching the filter).
    Retry(FilterArgs),
    /// Bounce matching queued recipients: each sender gets a DSN.
    Bounce {
        #[command(flatten)]
        filter: FilterArgs,
        /// Put into the DSN's diagnostic.
        #[arg(long, default_value = "no reason given")]
        reason: String,
    },
    /// Delete matching queued recipients without any notification.
    Delete(FilterArgs),
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// A site name as the summary shows it.
    #[arg(long)]
    site: Option<String>,
    /// A recipient domain.
    #[arg(long)]
    domain: Option<String>,
}

#[derive(clap::Args)]
pub struct FilterArgs {
    /// A message id.
    #[arg(long)]
    id: Option<String>,
    /// A recipient domain.
    #[arg(long)]
    domain: Option<String>,
    /// An envelope sender address.
    #[arg(long)]
    sender: Option<String>,
    /// A site name.
    #[arg(long)]
    site: Option<String>,
}

impl FilterArgs {
    fn json(&self) -> Value {
        serde_json::json!({
            "id": self.id, "domain": self.domain, "sender": self.sender, "site": self.site,
        })
    }
}

fn pause(url: &str, token: &str, target: &Target, verb: &str) -> anyhow::Result<()> {
    let path = match (&target.site, &target.domain) {
        (Some(site), _) => format!("/admin/v1/queue/sites/{}/{verb}", encode(site)),
        (_, Some(domain)) => format!("/admin/v1/queue/domains/{}/{verb}", encode(domain)),
        _ => anyhow::bail!("give --site or --domain"),
    };
    admin_client::post(url, token, &path, &serde_json::json!({}))?;
    println!("{verb}d");
    Ok(())
}

/// Percent-encodes a path segment (site names hold commas and may hold other bytes).
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn ms_ago(ms: &Value) -> String {
    let Some(ms) = ms.as_u64() else {
        return "-".into();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    if ms >= now {
        format!("in {}s", (ms - now) / 1000)
    } else {
        format!("{}s ago", (now - ms) / 1000)
    }
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
            if let Some(sites) = v["sites"].as_array() {
                println!();
                println!(
                    "{:<40} {:<10} {:>7} {:>7} {:>9} {:>9} {:>9}  HOLD",
                    "SITE", "PROVIDER", "READY", "CONNS", "DELIVERED", "DEFERRED", "BOUNCED"
                );
                for site in sites {
                    let hold = match site["hold"].as_str() {
                        Some(hold) => format!(
                            "{hold} until {} ({})",
                            ms_ago(&site["hold_until_ms"]),
                            site["hold_reason"].as_str().unwrap_or("")
                        ),
                        None => String::new(),
                    };
                    println!(
                        "{:<40} {:<10} {:>7} {:>7} {:>9} {:>9} {:>9}  {}",
                        site["site"].as_str().unwrap_or(""),
                        site["provider"].as_str().unwrap_or("-"),
                        site["ready_recipients"].to_string(),
                        format!("{}/{}", site["connections"], site["connections_max"]),
                        site["delivered"].to_string(),
                        site["deferred"].to_string(),
                        site["bounced"].to_string(),
                        hold
                    );
                }
            }
            println!();
            println!(
                "{:<32} {:>8} {:>8} {:>8} {:>8} {:>10} {:>12}  LAST ERROR",
                "DOMAIN", "RCPTS", "MESSAGES", "READY", "DEFERRED", "OLDEST", "NEXT TRY"
            );
            for d in v["domains"].as_array().into_iter().flatten() {
                let paused = if d["paused"] == true { " (paused)" } else { "" };
                println!(
                    "{:<32} {:>8} {:>8} {:>8} {:>8} {:>10} {:>12}  {}",
                    format!("{}{paused}", d["domain"].as_str().unwrap_or("")),
                    d["recipients"].to_string(),
                    d["messages"].to_string(),
                    d.get("ready").map_or("-".into(), |v| v.to_string()),
                    d.get("deferred").map_or("-".into(), |v| v.to_string()),
                    ms_ago(&d["oldest_ms"]),
                    ms_ago(&d["next_attempt_ms"]),
                    d["last_error"].as_str().unwrap_or("")
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
            let attempts = v["attempts"].as_array().cloned().unwrap_or_default();
            if !attempts.is_empty() {
                println!();
                println!("attempts:");
            }
            for a in attempts {
                println!(
                    "  {} #{} {:<9} <{}> via {} [{}] {}: {}",
                    ms_ago(&a["time_ms"]),
                    a["attempt"],
                    a["outcome"].as_str().unwrap_or(""),
                    a["recipient"].as_str().unwrap_or(""),
                    a["remote_host"].as_str().unwrap_or("-"),
                    a["remote_ip"].as_str().unwrap_or("-"),
                    a["category"].as_str().unwrap_or("-"),
                    a["response"].as_str().unwrap_or("")
                );
            }
        }
        QueueCommand::Pause(target) => pause(&url, &token, &target, "pause")?,
        QueueCommand::Resume(target) => pause(&url, &token, &target, "resume")?,
        QueueCommand::Retry(filter) => {
            let v: Value = serde_json::from_slice(&admin_client::post(
                &url,
                &token,
                "/admin/v1/queue/retry",
                &filter.json(),
            )?)?;
            println!("{} recipients sent for retry", v["recipients"]);
        }
        QueueCommand::Bounce { filter, reason } => {
            let mut body = filter.json();
            body["reason"] = Value::String(reason);
            let v: Value = serde_json::from_slice(&admin_client::post(
                &url,
                &token,
                "/admin/v1/queue/bounce",
                &body,
            )?)?;
            println!("{} recipients bounced", v["recipients"]);
        }
        QueueCommand::Delete(filter) => {
            let v: Value = serde_json::from_slice(&admin_client::post(
                &url,
                &token,
                "/admin/v1/queue/delete",
                &filter.json(),
            )?)?;
            println!("{} recipients deleted", v["recipients"]);
        }
    }
    Ok(())
}
