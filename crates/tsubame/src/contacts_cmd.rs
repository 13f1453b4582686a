//! `tsubame contacts`: a tenant's contacts from the command line. `import` stores the file
//! in the data directory as a job and works it here with a progress bar (a running server
//! does not take a job this process holds; if this process dies, the server takes it over
//! and finishes it).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use store::{AudienceStore, Existing, ImportStore, PropertyKind};

use crate::datadir::DataDir;
use crate::tenant_cmd;

#[derive(clap::Subcommand, Debug)]
pub enum ContactsCommand {
    /// Import a CSV file (UTF-8 or Shift_JIS): columns mapped from the header (email,
    /// timezone, locale, country, declared properties) or with --map.
    Import {
        file: PathBuf,
        #[arg(long)]
        tenant: String,
        /// Put every imported contact on this list (id or name).
        #[arg(long)]
        list: Option<String>,
        /// Leave existing contacts as they are (default: update them).
        #[arg(long)]
        keep_existing: bool,
        /// COLUMN=TARGET (address, timezone, locale, country, a property; empty: ignore).
        #[arg(long = "map", value_name = "COLUMN=TARGET")]
        map: Vec<String>,
        /// Where the refused rows go (CSV: line, reason).
        #[arg(long)]
        errors: Option<PathBuf>,
    },
    /// How many contacts a tenant has.
    Count {
        #[arg(long)]
        tenant: String,
    },
    /// Declare a property: text, number, datetime, boolean, or choice (with --choices).
    Property {
        name: String,
        #[arg(value_parser = ["text", "number", "datetime", "boolean", "choice"])]
        kind: String,
        #[arg(long)]
        tenant: String,
        /// The values of a choice, comma-separated.
        #[arg(long, value_delimiter = ',')]
        choices: Vec<String>,
    },
}

fn bar(progress: &imports::worker::Progress, terminal: bool, last: &mut i64) {
    let percent = if progress.total_bytes > 0 {
        progress.done_bytes * 100 / progress.total_bytes
    } else {
        100
    };
    let filled = (percent / 4) as usize;
    let line = format!(
        "[{}{}] {percent:>3}%  {} rows: {} added, {} updated, {} refused, {} suppressed",
        "#".repeat(filled),
        " ".repeat(25 - filled.min(25)),
        progress.records,
        progress.added,
        progress.updated,
        progress.refused,
        progress.suppressed
    );
    if terminal {
        eprint!("\r{line}");
        let _ = std::io::stderr().flush();
    } else if percent / 10 != *last / 10 || percent == 100 {
        eprintln!("{line}");
    }
    *last = percent;
}

pub fn run(command: ContactsCommand, data: &DataDir) -> anyhow::Result<()> {
    tenant_cmd::runtime()?.block_on(async {
        let store = tenant_cmd::open(data).await?;
        match command {
            ContactsCommand::Property {
                name,
                kind,
                tenant,
                choices,
            } => {
                let tenant = tenant_cmd::find(&store, &tenant).await?;
                let kind = match kind.as_str() {
                    "text" => PropertyKind::Text,
                    "number" => PropertyKind::Number,
                    "datetime" => PropertyKind::DateTime,
                    "boolean" => PropertyKind::Boolean,
                    _ => PropertyKind::Choice(choices),
                };
                let def = store.add_property(&tenant.id, &name, &kind).await?;
                println!("property {} ({}) declared", def.name, def.kind.as_str());
            }
            ContactsCommand::Count { tenant } => {
                let tenant = tenant_cmd::find(&store, &tenant).await?;
                println!("{}", store.contact_count(&tenant.id).await?);
            }
            ContactsCommand::Import {
                file,
                tenant,
                list,
                keep_existing,
                map,
                errors,
            } => {
                let tenant = tenant_cmd::find(&store, &tenant).await?;
                let mapping = map
                    .iter()
                    .map(|m| {
                        m.split_once('=')
                            .map(|(c, t)| (c.to_string(), t.to_string()))
                            .with_context(|| format!("--map {m:?}: COLUMN=TARGET"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let config = imports::ImportsConfig::new(data.root.join("imports"));
                let request = imports::stage::ImportRequest {
                    tenant_id: tenant.id.clone(),
                    name: file
                        .file_name()
                        .map_or("import.csv".into(), |n| n.to_string_lossy().into_owned()),
                    mapping,
                    existing: if keep_existing {
                        Existing::Keep
                    } else {
                        Existing::Update
                    },
                    list,
                };
                let job = imports::stage::stage_copy(&store, &config, &file, &request)
                    .await
                    .with_context(|| format!("importing {}", file.display()))?;
                let owner = imports::runner::owner_name();
                let lease = config.lease.as_millis() as i64;
                let Some(job) = store.claim_import(Some(&job.id), &owner, lease).await? else {
                    bail!("import {} was taken by another process", job.id);
                };
                let terminal = std::io::stderr().is_terminal();
                let mut last = -1;
                let id = job.id.clone();
                let worked =
                    imports::worker::work(&store, &config, job, &owner, |p| bar(&p, terminal, &mut last))
                        .await;
                if terminal {
                    eprintln!();
                }
                let done = store
                    .import(&tenant.id, &id)
                    .await?
                    .context("the import disappeared")?;
                if let Some(path) = errors {
                    let out = imports::error_file(&store, &tenant.id, &id).await?;
                    std::fs::write(&path, out)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                if let Err(reason) = worked {
                    bail!("import {id} failed: {reason}");
                }
                println!(
                    "import {id}: {} rows, {} added, {} updated, {} unchanged, {} refused, {} suppressed",
                    done.records_done,
                    done.added,
                    done.updated,
                    done.unchanged,
                    done.refused,
                    done.suppressed
                );
            }
        }
        Ok(())
    })
}
