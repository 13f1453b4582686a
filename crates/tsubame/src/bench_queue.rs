//! `tsubame bench queue`: the delivery scheduler's retry timer at scale. Fills it with N
//! deferred parts (one message, one recipient domain each, spread over `--spread` seconds),
//! then takes them all back in due order; reports the time per operation and the memory per
//! deferred part (RSS growth, so allocator overhead included) with what the engine keeps per
//! deferred message besides the part (a single-part message has no other entry).

use std::sync::Arc;
use std::time::{Duration, Instant};

use delivery::queue::{Part, State};
use spool::MessageId;

use crate::bench_spool::rss_bytes;

#[derive(clap::Args, Debug, Clone)]
pub struct QueueArgs {
    /// Deferred parts to hold.
    #[arg(long, default_value_t = 1_000_000)]
    parts: u64,
    /// Distinct recipient domains.
    #[arg(long, default_value_t = 10_000)]
    domains: u64,
    /// Due times spread over this many seconds.
    #[arg(long, default_value_t = 3600)]
    spread: u64,
}

pub fn run(args: QueueArgs) -> anyhow::Result<()> {
    let domains: Vec<Arc<str>> = (0..args.domains.max(1))
        .map(|d| Arc::from(format!("domain{d}.example").as_str()))
        .collect();
    let mut state = State::default();
    let origin = Instant::now();
    let rss_before = rss_bytes();
    let started = Instant::now();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for n in 0..args.parts {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // As the engine admits a message: the domain's shared name, a count of its parts.
        let id = MessageId(u128::from(n) + 1);
        state.add_message(id, 1);
        let part = Part {
            id,
            domain: domains[(seed % domains.len() as u64) as usize].clone(),

            rcpts: vec![0],
            attempts: 1,
            received_ms: 1_795_000_000_000 + n,
            delay_warned: false,
            fresh: None,
        };
        let due = origin + Duration::from_millis(seed % (args.spread.max(1) * 1000));
        state.schedule(part, due);
    }
    let fill = started.elapsed();
    let rss_after = rss_bytes();
    let started = Instant::now();
    let mut taken = 0usize;
    let mut now = origin;
    while taken < args.parts as usize {
        now += Duration::from_secs(1);
        taken += state.take_due(now).len();
    }
    let drain = started.elapsed();
    let per_part = rss_after.saturating_sub(rss_before) as f64 / args.parts as f64;
    println!(
        "| deferred parts | fill ns/part | drain ns/part | bytes/part (RSS) |\n|---|---|---|---|\n| {} | {:.0} | {:.0} | {:.0} |",
        args.parts,
        fill.as_nanos() as f64 / args.parts as f64,
        drain.as_nanos() as f64 / args.parts as f64,
        per_part
    );
    Ok(())
}
