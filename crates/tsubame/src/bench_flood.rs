//! `tsubame bench flood`: bursts of new connections from "attacking" source addresses,
//! beyond the server's per-address limits, while a legitimate client sends at a steady rate.
//! The legitimate client runs once alone and once under the flood, so the report compares
//! its latency in the same run; with `--server-pid`, the server's CPU time per attacking
//! connection says how cheaply they were turned away.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use crate::bench::{Report, SmtpArgs};
use crate::bench_mix;

#[derive(clap::Args, Debug, Clone)]
pub struct FloodArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:2525")]
    server: SocketAddr,
    /// Attacking source addresses ("127.66.0.0/28").
    #[arg(long, default_value = "127.66.0.0/28")]
    attackers: String,
    /// New attacking connections per second.
    #[arg(long, default_value_t = 5_000)]
    rate: u64,
    /// How long the flood lasts (and each legitimate run).
    #[arg(long, default_value = "10s")]
    duration: humantime::Duration,
    /// Attacking connections in flight at once (each holds a descriptor).
    #[arg(long, default_value_t = 4_000)]
    in_flight: usize,
    /// The legitimate client's rate, messages per second over one connection.
    #[arg(long, default_value_t = 50)]
    probe_rate: u64,
    /// The legitimate client's source address.
    #[arg(long, default_value = "127.0.0.1")]
    probe_source: IpAddr,
    /// The server's process id, for its CPU time during the flood.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    json: bool,
}

/// How attacking connections ended.
#[derive(Default)]
struct Tally {
    attempted: AtomicU64,
    /// A 4xx/5xx line instead of the greeting.
    refused: AtomicU64,
    /// The 220 greeting: admitted.
    greeted: AtomicU64,
    /// Closed or reset with no reply at all.
    dropped: AtomicU64,
    /// Connect failed (refused, no descriptor, timed out).
    connect_failed: AtomicU64,
    /// Microseconds from connect to the refusal line, summed (for the mean).
    refusal_us: AtomicU64,
}

pub fn run(args: FloodArgs) -> anyhow::Result<()> {
    let runtime =
        crate::bench::runtime_with_descriptors(args.in_flight as u64 + 256, "--in-flight")?;
    runtime.block_on(flood(args))
}

/// User plus system CPU time of a process, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz.max(1.0))
}

fn probe_args(args: &FloodArgs) -> SmtpArgs {
    SmtpArgs::probe(
        args.server,
        args.probe_rate,
        args.duration.into(),
        args.probe_source,
    )
}

async fn flood(args: FloodArgs) -> anyhow::Result<()> {
    let attackers = bench_mix::sources(&args.attackers).context("--attackers")?;
    if attackers.is_empty() {
        bail!("--attackers names no address");
    }
    eprintln!("legitimate client alone for {}", args.duration);
    let alone = crate::bench_smtp::smtp(probe_args(&args), None).await?;

    eprintln!(
        "legitimate client under a flood of {} connections/s",
        args.rate
    );
    let tally = Arc::new(Tally::default());
    let cpu_before = args.server_pid.and_then(cpu_seconds);
    let flooding = tokio::spawn(attack(args.clone(), attackers, tally.clone()));
    let under = crate::bench_smtp::smtp(probe_args(&args), None).await?;
    let flood_seconds = flooding.await??;
    // Connections still being refused when the flood stopped have finished by now.
    let cpu_after = args.server_pid.and_then(cpu_seconds);

    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let attempted = load(&tally.attempted);
    let refused = load(&tally.refused);
    let server_cpu_us = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) if attempted > 0 => Some((b - a) * 1e6 / attempted as f64),
        _ => None,
    };
    let ms = |r: &Report, q: f64| r.transaction_us.value_at_quantile(q) as f64 / 1000.0;
    let result = serde_json::json!({
        "server": args.server.to_string(),
        "attackers": args.attackers,
        "rate_asked": args.rate,
        "attempted": attempted,
        "attempted_per_sec": attempted as f64 / flood_seconds.max(1e-9),
        "refused": refused,
        "greeted": load(&tally.greeted),
        "dropped": load(&tally.dropped),
        "connect_failed": load(&tally.connect_failed),
        "refusal_mean_ms": if refused > 0 { load(&tally.refusal_us) as f64 / refused as f64 / 1000.0 } else { 0.0 },
        "server_cpu_us_per_attempt": server_cpu_us,
        "probe_alone": { "accepted": alone.accepted, "p50_ms": ms(&alone, 0.5), "p99_ms": ms(&alone, 0.99), "max_ms": ms(&alone, 1.0) },
        "probe_under_flood": { "accepted": under.accepted, "failed": under.failed + under.tempfailed + under.permfailed,
            "p50_ms": ms(&under, 0.5), "p99_ms": ms(&under, 0.99), "max_ms": ms(&under, 1.0) },
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "| attacking conns | per s | refused early | greeted | dropped | connect failed | server CPU µs/conn | legit p99 alone ms | legit p99 under flood ms | legit max under flood ms |\n\
             |---|---|---|---|---|---|---|---|---|---|\n\
             | {attempted} | {:.0} | {refused} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} |",
            attempted as f64 / flood_seconds.max(1e-9),
            load(&tally.greeted),
            load(&tally.dropped),
            load(&tally.connect_failed),
            server_cpu_us.map_or("-".into(), |v| format!("{v:.1}")),
            ms(&alone, 0.99),
            ms(&under, 0.99),
            ms(&under, 1.0),
        );
    }
    Ok(())
}

/// Opens attacking connections at the asked rate for the duration; returns how long it ran.
async fn attack(args: FloodArgs, attackers: Vec<IpAddr>, tally: Arc<Tally>) -> anyhow::Result<f64> {
    let gate = Arc::new(Semaphore::new(args.in_flight.max(1)));
    let started = Instant::now();
    let end = started + Duration::from(args.duration);
    let mut launched = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while Instant::now() < end {
        tick.tick().await;
        let due = (started.elapsed().as_secs_f64() * args.rate as f64) as u64;
        while launched < due {
            // Bounded: beyond the in-flight cap the generator waits, it never piles up.
            let permit = gate.clone().acquire_owned().await?;
            let source = attackers[(launched as usize) % attackers.len()];
            let tally = tally.clone();
            let server = args.server;
            tokio::spawn(async move {
                one_attack(server, source, &tally).await;
                drop(permit);
            });
            launched += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    // Wait for the stragglers (each is bounded by its own timeouts).
    let _ = gate.acquire_many(args.in_flight.max(1) as u32).await;
    Ok(seconds)
}

async fn one_attack(server: SocketAddr, source: IpAddr, tally: &Tally) {
    tally.attempted.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let connected = bench_mix::connect_from(server, Some(source));
    let mut stream = match tokio::time::timeout(Duration::from_secs(5), connected).await {
        Ok(Ok(stream)) => stream,
        _ => {
            tally.connect_failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let mut first = [0u8; 128];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut first)).await {
        Ok(Ok(n)) if n >= 3 && (first[0] == b'4' || first[0] == b'5') => {
            tally.refused.fetch_add(1, Ordering::Relaxed);
            tally
                .refusal_us
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        Ok(Ok(n)) if n >= 3 && first.starts_with(b"220") => {
            tally.greeted.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            tally.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
