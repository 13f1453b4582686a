//! `tsubame bench events`: what recording events costs. Feeds `--events` events through the
//! same sink and recorder the server uses into a fresh control database (in `--dir`, on the
//! disk the server would use), as fast as they are taken or at `--rate` per second, and
//! reports events per second and the recorder's CPU time per event, so the cost at a
//! given message rate can be stated (a message makes two events or more: accepted, then
//! delivered, deferred or bounced per recipient).

use std::time::{Duration, Instant};

use store::{EventKind, NewEvent, SqliteStore};

#[derive(clap::Args, Debug, Clone)]
pub struct EventsArgs {
    /// Events to record.
    #[arg(long, default_value_t = 400_000)]
    events: u64,
    /// Events per second to offer (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Directory for the database (default: a temporary one).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

pub fn run(args: EventsArgs) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = SqliteStore::open(&dir.join("bench-events.db")).await?;
        let tenant = store::ControlStore::add_tenant(&store, "bench").await?.id;
        let (sink, recorder) = events::channel(store.clone());
        let writer = tokio::spawn(recorder.run());
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let per_tick = if args.rate == 0 { 1000 } else { (args.rate / 100).max(1) };
        let mut sent = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        while sent < args.events {
            if args.rate > 0 {
                tick.tick().await;
            }
            let n = per_tick.min(args.events - sent);
            let batch: Vec<NewEvent> = (sent..sent + n)
                .map(|i| NewEvent {
                    tenant_id: tenant.clone(),
                    time_ms: 1_800_000_000_000 + i as i64,
                    kind: if i % 2 == 0 { EventKind::Accepted } else { EventKind::Delivered },
                    message_id: format!("01KBENCH{:018}", i / 2),
                    recipient: format!("user{}@example{}.com", i / 2, i % 97),
                    custom_id: Some(format!("order-{}", i / 2)),
                    tags: Some(r#"["newsletter"]"#.into()),
                    detail: Some(r#"{"response":"250 2.0.0 Ok: queued","attempt":1}"#.into()),
                })
                .collect();
            sink.record(batch);
            sent += n;
            if args.rate == 0 {
                tokio::task::yield_now().await;
            }
        }
        sink.drain(Duration::from_secs(600)).await;
        let elapsed = started.elapsed();
        let cpu = cpu_seconds() - cpu_before;
        drop(sink);
        let _ = writer.await;
        println!("| events | offered/s | elapsed s | recorded/s | CPU µs per event | CPU share at 40,000 events/s |");
        println!("|---|---|---|---|---|---|");
        let per_event_us = cpu * 1e6 / args.events as f64;
        println!(
            "| {} | {} | {:.2} | {:.0} | {:.1} | {:.0} % of one core |",
            args.events,
            if args.rate == 0 { "max".to_string() } else { args.rate.to_string() },
            elapsed.as_secs_f64(),
            args.events as f64 / elapsed.as_secs_f64(),
            per_event_us,
            per_event_us * 40_000.0 / 1e4,
        );
        Ok(())
    })
}
