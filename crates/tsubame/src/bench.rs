//! `tsubame bench`: load generators for capacity planning and our benchmarks. This file holds
//! the command line, the report and the timestamps shared with the relay bench; the SMTP
//! client load itself is in `bench_smtp`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use hdrhistogram::Histogram;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(clap::Subcommand, Debug)]
enum Mode {
    /// Send messages over SMTP.
    Smtp(SmtpArgs),
    /// Fill a spool directly, then measure recovery time and memory per queued message.
    Spool(crate::bench_spool::SpoolArgs),
    /// Send through a relay to an in-process sink; measure relay rate and accept->delivered.
    Relay(crate::bench_relay::RelayArgs),
    /// The delivery retry timer with millions of deferred parts: speed and memory.
    Queue(crate::bench_queue::QueueArgs),
    /// Hold many idle SMTP sessions while a legitimate client sends; memory per session.
    Idle(crate::bench_idle::IdleArgs),
    /// Floods new connections from attacking addresses while a legitimate client sends.
    Flood(crate::bench_flood::FloodArgs),
    /// Posts batches to the HTTP send API (native, SendGrid or Mailjet endpoint).
    Http(crate::bench_http::HttpArgs),
    /// Records events through the server's recorder into a fresh control database.
    Events(crate::bench_events::EventsArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub(crate) struct SmtpArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:2525")]
    pub(crate) server: SocketAddr,
    /// Concurrent connections.
    #[arg(long, default_value_t = 50)]
    pub(crate) connections: usize,
    /// Total messages to send.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) messages: u64,
    /// Stop after this long even if messages remain (e.g. "30s").
    #[arg(long)]
    pub(crate) duration: Option<humantime::Duration>,
    /// Message size in bytes, or a mix by weight: "5k", "1k:50,5k:40,100k:10".
    #[arg(long, default_value = "5120")]
    pub(crate) size: String,
    /// Recipients per message.
    #[arg(long, default_value_t = 1)]
    pub(crate) recipients: usize,
    /// Recipient domain, or a mix by weight: "gmail.test:5,yahoo.test:3,example.com:2".
    #[arg(long, alias = "domains", default_value = "example.com")]
    pub(crate) domain: String,
    /// Pipeline commands (RFC 2920); off sends one command per round trip.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) pipelining: bool,
    /// Messages per connection before reconnecting (0 = never).
    #[arg(long, default_value_t = 0)]
    pub(crate) messages_per_connection: u64,
    /// Target rate in messages per second across all connections (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub(crate) rate: u64,
    /// Source addresses to spread connections over: "127.1.0.0/24,127.2.0.1".
    #[arg(long)]
    pub(crate) source: Option<String>,
    /// Progress line on stderr (default: when stderr is a terminal).
    #[arg(long)]
    pub(crate) progress: Option<bool>,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    pub(crate) json: bool,
}

impl SmtpArgs {
    /// A legitimate client for the idle and flood benches: one connection, `rate` 5 KB
    /// messages per second for `duration`, from `source`.
    pub(crate) fn probe(
        server: SocketAddr,
        rate: u64,
        duration: Duration,
        source: std::net::IpAddr,
    ) -> SmtpArgs {
        SmtpArgs {
            server,
            connections: 1,
            messages: rate * duration.as_secs().max(1),
            duration: Some(duration.into()),
            size: "5120".into(),
            recipients: 1,
            domain: "example.com".into(),
            pipelining: true,
            messages_per_connection: 0,
            rate,
            source: Some(source.to_string()),
            progress: Some(false),
            json: true,
        }
    }
}

/// A runtime for a load generator that needs `descriptors` open files (one per connection).
pub(crate) fn runtime_with_descriptors(
    descriptors: u64,
    what: &str,
) -> anyhow::Result<tokio::runtime::Runtime> {
    let limit = crate::fdlimit::raise_open_files();
    if limit < descriptors {
        bail!(
            "open-file limit {limit} is below the {descriptors} that {what} needs; raise it (ulimit -Hn)"
        );
    }
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let args = match args.mode {
        Mode::Smtp(args) => args,
        Mode::Spool(args) => return crate::bench_spool::run(args),
        Mode::Relay(args) => return crate::bench_relay::run(args),
        Mode::Queue(args) => return crate::bench_queue::run(args),
        Mode::Idle(args) => return crate::bench_idle::run(args),
        Mode::Flood(args) => return crate::bench_flood::run(args),
        Mode::Http(args) => return crate::bench_http::run(args),
        Mode::Events(args) => return crate::bench_events::run(args),
    };
    if args.connections == 0 || args.recipients == 0 {
        bail!("--connections and --recipients must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(crate::bench_smtp::smtp(args.clone(), None))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.json(&args))?);
    } else {
        println!("{}", report.markdown(&args));
    }
    if report.accepted == 0 && report.failed + report.tempfailed + report.permfailed > 0 {
        bail!(
            "no message was accepted; first error: {}",
            report.first_error.unwrap_or_default()
        );
    }
    Ok(())
}

pub(crate) struct Report {
    /// Messages the server accepted (2xx at end of data).
    pub accepted: u64,
    /// Messages refused with a 4xx (at MAIL, every RCPT, DATA or end of data).
    pub tempfailed: u64,
    /// Messages refused with a 5xx.
    pub permfailed: u64,
    /// Single recipients refused while others of their message were accepted or not.
    pub recipients_refused: u64,
    /// Sessions that failed (connect error, refusal at greeting, lost connection).
    pub failed: u64,
    pub elapsed: Duration,
    /// End-of-data dot written → its reply, accepted messages only.
    pub latency_us: Histogram<u64>,
    /// First command of the transaction written (or chained) → end-of-data reply.
    pub transaction_us: Histogram<u64>,
    pub first_error: Option<String>,
    /// Messages accepted in each second of the run.
    pub timeline: Vec<u64>,
}

/// Per-message timestamps by sequence number (nanoseconds since `origin`, plus one; zero
/// means not yet), shared by the load generator (acceptance) and the bench sink (arrival).
pub(crate) struct Stamps {
    pub origin: Instant,
    slots: Vec<AtomicU64>,
    next: AtomicU64,
}

impl Stamps {
    pub fn new(origin: Instant, capacity: u64) -> Stamps {
        Stamps {
            origin,
            slots: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            next: AtomicU64::new(0),
        }
    }

    pub fn next_seq(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Records now for `seq`; false when it was already recorded (a duplicate).
    pub fn stamp(&self, seq: u64) -> bool {
        let Some(slot) = self.slots.get(seq as usize) else {
            return true;
        };
        let nanos = self.origin.elapsed().as_nanos() as u64 + 1;
        slot.compare_exchange(0, nanos, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// The recorded time for `seq`, if any.
    pub fn get(&self, seq: u64) -> Option<Duration> {
        let nanos = self.slots.get(seq as usize)?.load(Ordering::Relaxed);
        (nanos > 0).then(|| Duration::from_nanos(nanos - 1))
    }

    pub fn len(&self) -> u64 {
        self.slots.len() as u64
    }
}

impl Report {
    pub fn rate(&self) -> f64 {
        self.accepted as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        self.latency_us.value_at_quantile(p) as f64 / 1000.0
    }

    fn json(&self, args: &SmtpArgs) -> serde_json::Value {
        serde_json::json!({
            "server": args.server.to_string(), "connections": args.connections, "size": args.size,
            "recipients": args.recipients, "domains": args.domain, "pipelining": args.pipelining,
            "rate": args.rate, "source": args.source,
            "accepted": self.accepted, "tempfailed": self.tempfailed, "permfailed": self.permfailed,
            "recipients_refused": self.recipients_refused, "failed": self.failed,
            "first_error": self.first_error,
            "seconds": self.elapsed.as_secs_f64(),
            "msg_per_sec": self.rate(),
            "per_second": self.timeline,
            "transaction_ms": { "p50": self.transaction_us.value_at_quantile(0.5) as f64 / 1000.0,
                "p99": self.transaction_us.value_at_quantile(0.99) as f64 / 1000.0,
                "p99_999": self.transaction_us.value_at_quantile(0.99999) as f64 / 1000.0,
                "max": self.transaction_us.max() as f64 / 1000.0 },
            "latency_ms": { "p50": self.percentile_ms(0.5), "p99": self.percentile_ms(0.99),
                "p99_9": self.percentile_ms(0.999), "p99_99": self.percentile_ms(0.9999),
                "p99_999": self.percentile_ms(0.99999), "max": self.latency_us.max() as f64 / 1000.0 },
        })
    }

    fn markdown(&self, args: &SmtpArgs) -> String {
        let mut sorted = self.timeline.clone();
        sorted.sort_unstable();
        let quantile = |q: f64| {
            sorted
                .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        format!(
            "| server | conns | size | accepted | 4xx | 5xx | rcpt refused | session errors | msg/s | p50 ms | p99 ms | p99.9 ms | p99.999 ms | max ms |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n\
             | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |\n\n\
             Accepted per second over {} s: min {}, median {}, max {}.",
            args.server,
            args.connections,
            args.size,
            self.accepted,
            self.tempfailed,
            self.permfailed,
            self.recipients_refused,
            self.failed,
            self.rate(),
            self.percentile_ms(0.5),
            self.percentile_ms(0.99),
            self.percentile_ms(0.999),
            self.percentile_ms(0.99999),
            self.latency_us.max() as f64 / 1000.0,
            self.timeline.len(),
            quantile(0.0),
            quantile(0.5),
            quantile(1.0),
        )
    }
}
