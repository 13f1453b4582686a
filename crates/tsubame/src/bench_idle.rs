//! `tsubame bench idle`: many concurrent idle SMTP sessions (greeted, EHLO said, then
//! silent), spread over source addresses, while one legitimate client sends at a steady
//! rate. Reports how many sessions stayed open, the server's memory per session (from its
//! /proc entry, with `--server-pid`) and the legitimate client's latencies meanwhile.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::bench::SmtpArgs;
use crate::bench_mix;

#[derive(clap::Args, Debug, Clone)]
pub struct IdleArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:2525")]
    server: SocketAddr,
    /// Idle sessions to open and hold.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Source addresses to spread them over ("127.10.0.0/20"); needed beyond ~28k sessions.
    #[arg(long)]
    source: Option<String>,
    /// Connection attempts in flight at once while opening.
    #[arg(long, default_value_t = 256)]
    opening: usize,
    /// How long to hold the sessions once all are open; the legitimate client runs meanwhile.
    #[arg(long, default_value = "20s")]
    hold: humantime::Duration,
    /// The legitimate client's rate (messages per second over one connection; 0 = none).
    #[arg(long, default_value_t = 50)]
    probe_rate: u64,
    /// The server's process id, to read its resident memory before and after.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    json: bool,
}

pub fn run(args: IdleArgs) -> anyhow::Result<()> {
    let runtime =
        crate::bench::runtime_with_descriptors(args.connections as u64 + 1024, "--connections")?;
    runtime.block_on(idle(args))
}

/// Resident memory of a process in bytes (VmRSS).
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

async fn idle(args: IdleArgs) -> anyhow::Result<()> {
    let sources = match &args.source {
        Some(spec) => bench_mix::sources(spec).context("--source")?,
        None => Vec::new(),
    };
    let rss_before = args.server_pid.and_then(rss_bytes);
    let opened = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let gate = Arc::new(Semaphore::new(args.opening.max(1)));
    let started = Instant::now();
    let mut held = Vec::with_capacity(args.connections);
    let mut tasks = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let permit = gate.clone().acquire_owned().await?;
        let source = (!sources.is_empty()).then(|| sources[i % sources.len()]);
        let server = args.server;
        tasks.push(tokio::spawn(async move {
            let result = open_idle(server, source, i).await;
            drop(permit);
            result
        }));
    }
    for task in tasks {
        match task.await? {
            Ok(stream) => {
                opened.fetch_add(1, Ordering::Relaxed);
                held.push(stream);
            }
            Err(err) => {
                failed.fetch_add(1, Ordering::Relaxed);
                let mut first = first_error.lock().unwrap_or_else(|p| p.into_inner());
                if first.is_none() {
                    *first = Some(format!("{err:#}"));
                }
            }
        }
    }
    let open_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{} sessions open in {open_seconds:.1} s ({} failed); holding",
        held.len(),
        failed.load(Ordering::Relaxed)
    );
    // Let the server settle (buffers freed after the EHLO, allocator caches) before reading
    // its memory, then run the legitimate client while everything stays open.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_open = args.server_pid.and_then(rss_bytes);
    let hold: Duration = args.hold.into();
    let probe = if args.probe_rate > 0 {
        let probe_args = SmtpArgs::probe(
            args.server,
            args.probe_rate,
            hold,
            std::net::IpAddr::from([127, 0, 0, 1]),
        );
        Some(crate::bench_smtp::smtp(probe_args, None).await?)
    } else {
        tokio::time::sleep(hold).await;
        None
    };
    // Still open after the hold? A session the server dropped reads EOF at once.
    let mut alive = 0u64;
    for stream in &held {
        let mut probe = [0u8; 1];
        match stream.try_read(&mut probe) {
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => alive += 1,
            _ => {}
        }
    }
    let per_session = match (rss_before, rss_open) {
        (Some(before), Some(open)) if !held.is_empty() => {
            Some(open.saturating_sub(before) as f64 / held.len() as f64)
        }
        _ => None,
    };
    let ms = |q: f64| {
        probe
            .as_ref()
            .map(|r| r.transaction_us.value_at_quantile(q) as f64 / 1000.0)
    };
    let result = serde_json::json!({
        "server": args.server.to_string(),
        "requested": args.connections,
        "opened": held.len(),
        "failed": failed.load(Ordering::Relaxed),
        "first_error": *first_error.lock().unwrap_or_else(|p| p.into_inner()),
        "open_seconds": open_seconds,
        "alive_after_hold": alive,
        "server_rss_before": rss_before,
        "server_rss_open": rss_open,
        "server_bytes_per_session": per_session,
        "probe": probe.as_ref().map(|r| serde_json::json!({
            "accepted": r.accepted, "failed": r.failed + r.tempfailed + r.permfailed,
            "transaction_ms": { "p50": ms(0.5), "p99": ms(0.99), "p99_9": ms(0.999), "max": ms(1.0) },
        })),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "| sessions asked | open | failed | alive after hold | open in s | server bytes/session | probe msgs | probe p50 ms | p99 ms | max ms |\n\
             |---|---|---|---|---|---|---|---|---|---|\n\
             | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} |",
            args.connections,
            held.len(),
            failed.load(Ordering::Relaxed),
            alive,
            open_seconds,
            per_session.map_or("-".into(), |b| format!("{b:.0}")),
            probe.as_ref().map_or(0, |r| r.accepted),
            ms(0.5).map_or("-".into(), |v| format!("{v:.2}")),
            ms(0.99).map_or("-".into(), |v| format!("{v:.2}")),
            ms(1.0).map_or("-".into(), |v| format!("{v:.2}")),
        );
    }
    for stream in held {
        drop(stream);
    }
    Ok(())
}

/// Connects, reads the greeting, says EHLO and reads its reply; returns the open stream.
async fn open_idle(
    server: SocketAddr,
    source: Option<std::net::IpAddr>,
    i: usize,
) -> anyhow::Result<TcpStream> {
    let stream = bench_mix::connect_from(server, source).await?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    expect_reply(&mut reader, &mut line, 220).await?;
    reader
        .get_mut()
        .write_all(format!("EHLO idle{i}.tsubame.test\r\n").as_bytes())
        .await?;
    expect_reply(&mut reader, &mut line, 250).await?;
    Ok(reader.into_inner())
}

async fn expect_reply(
    reader: &mut BufReader<TcpStream>,
    line: &mut String,
    code: u16,
) -> anyhow::Result<()> {
    let got = crate::bench_smtp::read_reply(reader, line).await?;
    if got != code {
        bail!("expected {code}, got {}", line.trim_end());
    }
    Ok(())
}
