//! `tsubame suppression`: a tenant's suppression list from the command line, including
//! importing one exported from another platform (CSV, with a progress bar).

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, bail};
use store::EventStore;

use crate::datadir::DataDir;
use crate::tenant_cmd;

#[derive(clap::Subcommand, Debug)]
pub enum SuppressionCommand {
    /// List a tenant's suppressed addresses.
    Ls {
        #[arg(long)]
        tenant: String,
    },
    /// Suppress addresses.
    Add {
        addresses: Vec<String>,
        #[arg(long)]
        tenant: String,
        /// manual, bounce, complaint or unsubscribe.
        #[arg(long, default_value = "manual", value_parser = reasons())]
        reason: String,
    },
    /// Send to an address again.
    Rm {
        address: String,
        #[arg(long)]
        tenant: String,
    },
    /// Import a CSV file: the address in the first column (a header line is skipped), an
    /// optional reason in the second.
    Import {
        file: PathBuf,
        #[arg(long)]
        tenant: String,
        /// Reason for lines that give none.
        #[arg(long, default_value = "manual", value_parser = reasons())]
        reason: String,
    },
}

use store::SUPPRESSION_REASONS as REASONS;

fn reasons() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(REASONS)
}
/// Addresses written per transaction while importing.
const CHUNK: usize = 5000;

fn valid(address: &str) -> bool {
    !address.is_empty()
        && !address.contains(['\r', '\n', '\0'])
        && smtp_wire::address::check_mailbox(address, !address.is_ascii()).is_ok()
}

/// The first two fields of a CSV line (quotes with doubled quotes inside, as RFC 4180).
fn fields(line: &str) -> (String, Option<String>) {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
        if out.len() == 2 {
            break;
        }
    }
    if out.len() < 2 {
        out.push(field);
    }
    let mut it = out.into_iter().map(|f| f.trim().to_string());
    let first = it.next().unwrap_or_default();
    let second = it.next().filter(|s| !s.is_empty());
    (first, second)
}

pub fn run(command: SuppressionCommand, data: &DataDir) -> anyhow::Result<()> {
    tenant_cmd::runtime()?.block_on(async {
        let store = tenant_cmd::open(data).await?;
        match command {
            SuppressionCommand::Ls { tenant } => {
                let tenant = tenant_cmd::find(&store, &tenant).await?;
                println!("{:<50} {:<12} SINCE (UTC ms)", "ADDRESS", "REASON");
                let mut after: Option<String> = None;
                loop {
                    let page = store
                        .suppressions(&tenant.id, after.as_deref(), 1000)
                        .await?;
                    let Some(last) = page.last() else { break };
                    after = Some(last.address.clone());
                    for s in &page {
                        println!("{:<50} {:<12} {}", s.address, s.reason, s.created_ms);
                    }
                }
            }
            SuppressionCommand::Add {
                addresses,
                tenant,
                reason,
            } => {
                let tenant = tenant_cmd::find(&store, &tenant).await?;
                if let Some(bad) = addresses.iter().find(|a| !valid(a)) {
                    bail!("{bad:?} is not a valid email address");
                }
                let entries: Vec<(String, String)> =
                    addresses.into_iter().map(|a| (a, reason.clone())).collect();
                let added = store.add_suppressions(&tenant.id, &entries).await?;
                println!(
                    "{added} added, {} already suppressed",
                    entries.len() as u64 - added
                );
            }
            SuppressionCommand::Rm { address, tenant } => {
                let tenant = tenant_cmd::find(&store, &tenant).await?;
                if !store.remove_suppression(&tenant.id, &address).await? {
                    bail!("{address} is not suppressed for tenant {}", tenant.name);
                }
                println!("{address} removed");
            }
            SuppressionCommand::Import {
                file,
                tenant,
                reason,
            } => {
                let tenant = tenant_cmd::find(&store, &tenant).await?;
                import(&store, &tenant.id, &file, &reason).await?;
            }
        }
        Ok(())
    })
}

async fn import(
    store: &store::ControlPlane,
    tenant_id: &str,
    file: &PathBuf,
    reason: &str,
) -> anyhow::Result<()> {
    let handle =
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let total = handle.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {msg} ({eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let reader = std::io::BufReader::new(handle);
    let (mut added, mut seen, mut invalid) = (0u64, 0u64, Vec::new());
    let mut chunk: Vec<(String, String)> = Vec::with_capacity(CHUNK);
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", n + 1))?;
        bar.inc(line.len() as u64 + 1);
        if line.trim().is_empty() {
            continue;
        }
        let (address, given) = fields(&line);
        if n == 0 && !address.contains('@') {
            continue; // the header
        }
        let why = given
            .filter(|g| REASONS.contains(&g.as_str()))
            .unwrap_or_else(|| reason.to_string());
        if !valid(&address) {
            invalid.push(n + 1);
            continue;
        }
        seen += 1;
        chunk.push((address, why));
        if chunk.len() == CHUNK {
            added += store.add_suppressions(tenant_id, &chunk).await?;
            chunk.clear();
            bar.set_message(format!("{seen} addresses"));
        }
    }
    if !chunk.is_empty() {
        added += store.add_suppressions(tenant_id, &chunk).await?;
    }
    bar.finish_and_clear();
    println!(
        "{seen} addresses read: {added} added, {} already suppressed, {} invalid lines skipped",
        seen - added,
        invalid.len()
    );
    if !invalid.is_empty() {
        let shown: Vec<String> = invalid.iter().take(10).map(|n| n.to_string()).collect();
        println!(
            "invalid lines: {}{}",
            shown.join(", "),
            if invalid.len() > 10 { ", ..." } else { "" }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_quotes() {
        assert_eq!(fields("ann@x.test"), ("ann@x.test".into(), None));
        assert_eq!(
            fields("\"ann@x.test\",bounce,2024-01-01"),
            ("ann@x.test".into(), Some("bounce".into()))
        );
        assert_eq!(
            fields("\"a \"\"b\"\"@x.test\", complaint"),
            ("a \"b\"@x.test".into(), Some("complaint".into()))
        );
    }
}
