//! `tsubame bench spool`: fills a spool directly through its API (no SMTP), then reopens it
//! and reports recovery time per million messages and resident memory per queued message.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use spool::{Envelope, Recipient, Spool, SpoolConfig};

#[derive(clap::Args, Debug)]
pub struct SpoolArgs {
    /// Spool directory (use a real disk, not tmpfs: fsync must cost what it costs).
    #[arg(long)]
    dir: PathBuf,
    /// Messages to insert.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Content size in bytes.
    #[arg(long, default_value_t = 5120)]
    size: usize,
    /// Concurrent inserters (they share fsyncs).
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Only reopen an existing spool (e.g. after dropping the page cache) and report.
    #[arg(long)]
    recover_only: bool,
}

pub(crate) fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn config(dir: &std::path::Path) -> SpoolConfig {
    SpoolConfig {
        dir: dir.to_path_buf(),
        segment_bytes_max: 64 << 20,
        batch_bytes_max: 8 << 20,
    }
}

pub fn run(args: SpoolArgs) -> anyhow::Result<()> {
    if args.recover_only {
        return recover(&args, None);
    }
    anyhow::ensure!(
        !args.dir.exists(),
        "{} exists; give a fresh directory",
        args.dir.display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (spool, _) = Spool::open(&config(&args.dir)).context("opening spool")?;
    let content = Arc::new(vec![b'x'; args.size]);
    let started = Instant::now();
    runtime.block_on(async {
        let per_task = args.messages / args.concurrency as u64;
        let extra = args.messages % args.concurrency as u64;
        let mut tasks = Vec::new();
        for t in 0..args.concurrency as u64 {
            let (spool, content) = (spool.clone(), content.clone());
            let count = per_task + u64::from(t < extra);
            tasks.push(tokio::spawn(async move {
                for i in 0..count {
                    let envelope = Envelope {
                        sender: format!("sender{t}@bench.test"),
                        recipients: vec![Recipient {
                            address: format!("user{i}@example.com"),
                            notify: 0,
                            orcpt: None,
                        }],
                        dsn_ret: 0,
                        dsn_envid: None,
                        flags: 0,
                        received_ms: 0,
                        client_ip: "127.0.0.1".into(),
                        helo: "bench".into(),
                        auth_user: None,
                        not_before_ms: 0,
                        attributes: None,
                    };
                    spool
                        .insert(spool.next_id(), envelope, content.to_vec())
                        .await?;
                }
                Ok::<(), spool::SpoolError>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        Ok::<(), anyhow::Error>(())
    })?;
    let insert_secs = started.elapsed().as_secs_f64();
    let fsyncs = spool.fsync_count();
    spool.shutdown();
    drop(spool);
    recover(&args, Some((args.messages as f64 / insert_secs, fsyncs)))
}

fn recover(args: &SpoolArgs, inserted: Option<(f64, u64)>) -> anyhow::Result<()> {
    let rss_empty = rss_bytes();
    let started = Instant::now();
    let (spool, report) = Spool::open(&config(&args.dir)).context("reopening spool")?;
    let recovery = started.elapsed();
    let rss_loaded = rss_bytes();
    let per_message = rss_loaded.saturating_sub(rss_empty) as f64 / report.messages.max(1) as f64;
    println!(
        "| messages | size | insert msg/s | fsyncs | recovered | recovery s | recovery s per 1M | RSS before | RSS after | bytes per queued message |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {} MiB | {} MiB | {:.0} |",
        args.messages,
        args.size,
        inserted.map_or("-".to_string(), |(rate, _)| format!("{rate:.0}")),
        inserted.map_or("-".to_string(), |(_, fsyncs)| fsyncs.to_string()),
        report.messages,
        recovery.as_secs_f64(),
        recovery.as_secs_f64() * 1_000_000.0 / report.messages.max(1) as f64,
        rss_empty >> 20,
        rss_loaded >> 20,
        per_message
    );
    spool.shutdown();
    Ok(())
}
