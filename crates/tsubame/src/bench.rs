//! `tsubame bench smtp`: a load generator for capacity planning and our benchmarks.
//!
//! Each connection runs transactions back to back. With pipelining, a message costs one
//! round trip: `MAIL/RCPT.../DATA` go out together, and after the 354 the content, the dot
//! and the next transaction's commands go out in one write (RFC 2920). Latency is measured
//! from the moment the end-of-data dot is written to the moment its reply arrives: for a
//! durable server that is the accept latency, fsync included.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

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
    /// Message size in bytes (headers included).
    #[arg(long, default_value_t = 5120)]
    pub(crate) size: usize,
    /// Recipients per message.
    #[arg(long, default_value_t = 1)]
    pub(crate) recipients: usize,
    /// Recipient domain.
    #[arg(long, default_value = "example.com")]
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
    /// Print JSON instead of Markdown.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Paces sends to a fixed overall rate: message k may start at `start + k / rate`.
struct Pacer {
    start: Instant,
    issued: AtomicU64,
    rate: u64,
}

impl Pacer {
    async fn wait(&self) {
        if self.rate == 0 {
            return;
        }
        let k = self.issued.fetch_add(1, Ordering::Relaxed);
        let at = self.start + Duration::from_secs_f64(k as f64 / self.rate as f64);
        tokio::time::sleep_until(at.into()).await;
    }
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let args = match args.mode {
        Mode::Smtp(args) => args,
        Mode::Spool(args) => return crate::bench_spool::run(args),
        Mode::Relay(args) => return crate::bench_relay::run(args),
        Mode::Queue(args) => return crate::bench_queue::run(args),
    };
    if args.connections == 0 || args.size < 64 || args.recipients == 0 {
        bail!("--connections and --recipients must be at least 1, --size at least 64");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(smtp(args.clone(), None))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.json(&args))?);
    } else {
        println!("{}", report.markdown(&args));
    }
    if report.failed > 0 && report.accepted == 0 {
        bail!(
            "no message was accepted; first error: {}",
            report.first_error.unwrap_or_default()
        );
    }
    Ok(())
}

pub(crate) struct Report {
    pub accepted: u64,
    pub failed: u64,
    pub elapsed: Duration,
    pub latency_us: Histogram<u64>,
    pub first_error: Option<String>,
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
            "recipients": args.recipients, "pipelining": args.pipelining, "rate": args.rate,
            "accepted": self.accepted, "failed": self.failed, "seconds": self.elapsed.as_secs_f64(),
            "msg_per_sec": self.rate(),
            "latency_ms": { "p50": self.percentile_ms(0.5), "p99": self.percentile_ms(0.99),
                "p99_9": self.percentile_ms(0.999), "p99_99": self.percentile_ms(0.9999),
                "p99_999": self.percentile_ms(0.99999), "max": self.latency_us.max() as f64 / 1000.0 },
        })
    }

    fn markdown(&self, args: &SmtpArgs) -> String {
        format!(
            "| server | conns | size | accepted | failed | msg/s | p50 ms | p99 ms | p99.9 ms | p99.999 ms | max ms |\n\
             |---|---|---|---|---|---|---|---|---|---|---|\n\
             | {} | {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            args.server,
            args.connections,
            args.size,
            self.accepted,
            self.failed,
            self.rate(),
            self.percentile_ms(0.5),
            self.percentile_ms(0.99),
            self.percentile_ms(0.999),
            self.percentile_ms(0.99999),
            self.latency_us.max() as f64 / 1000.0
        )
    }
}

/// A message body of about `size` bytes with CRLF lines, ending in CRLF.
fn content(size: usize) -> Vec<u8> {
    let mut out =
        b"From: <bench@tsubame.test>\r\nTo: <rcpt@example.com>\r\nSubject: tsubame bench\r\n\r\n"
            .to_vec();
    let line = b"The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnop\r\n";
    while out.len() + line.len() <= size {
        out.extend_from_slice(line);
    }
    while out.len() < size - 2 {
        out.push(b'x');
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Runs the load. With `acks`, every message carries an `X-Bench-Seq` header and its
/// acceptance time is stamped.
pub(crate) async fn smtp(args: SmtpArgs, acks: Option<Arc<Stamps>>) -> anyhow::Result<Report> {
    let remaining = Arc::new(AtomicU64::new(args.messages));
    let deadline = args.duration.map(|d| Instant::now() + Duration::from(d));
    let body = Arc::new(content(args.size));
    let started = Instant::now();
    let pacer = Arc::new(Pacer {
        start: started,
        issued: AtomicU64::new(0),
        rate: args.rate,
    });
    let histogram = Histogram::new_with_bounds(1, 60_000_000, 3)?;
    let mut tasks = Vec::new();
    for worker in 0..args.connections {
        let load = Load {
            args: args.clone(),
            remaining: remaining.clone(),
            deadline,
            body: body.clone(),
            pacer: pacer.clone(),
            acks: acks.clone(),
        };
        let histogram = histogram.clone();
        tasks.push(tokio::spawn(async move {
            connection_loop(worker, &load, histogram).await
        }));
    }
    let mut report = Report {
        accepted: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latency_us: histogram,
        first_error: None,
    };
    for task in tasks {
        let outcome = task.await?;
        report.accepted += outcome.accepted;
        report.failed += outcome.failed;
        report.latency_us.add(&outcome.latency_us)?;
        if report.first_error.is_none() {
            report.first_error = outcome.error;
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

struct Outcome {
    accepted: u64,
    failed: u64,
    latency_us: Histogram<u64>,
    error: Option<String>,
}

/// What every connection of one run shares.
struct Load {
    args: SmtpArgs,
    /// Messages not yet started, across all connections.
    remaining: Arc<AtomicU64>,
    deadline: Option<Instant>,
    body: Arc<Vec<u8>>,
    pacer: Arc<Pacer>,
    acks: Option<Arc<Stamps>>,
}

impl Load {
    fn running(&self) -> bool {
        self.remaining.load(Ordering::Relaxed) > 0
            && self.deadline.is_none_or(|d| Instant::now() < d)
    }
}

async fn connection_loop(worker: usize, load: &Load, latency_us: Histogram<u64>) -> Outcome {
    let mut outcome = Outcome {
        accepted: 0,
        failed: 0,
        latency_us,
        error: None,
    };
    let mut consecutive_failures = 0;
    while load.running() {
        let accepted_before = outcome.accepted;
        if let Err(err) = session(worker, load, &mut outcome).await {
            outcome.failed += 1;
            if outcome.error.is_none() {
                outcome.error = Some(format!("{err:#}"));
            }
            consecutive_failures = if outcome.accepted > accepted_before {
                1
            } else {
                consecutive_failures + 1
            };
            // A server that keeps refusing is down or misconfigured; stop instead of spinning.
            if consecutive_failures >= CONSECUTIVE_FAILURES_MAX {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        } else {
            consecutive_failures = 0;
        }
    }
    outcome
}

/// Failed sessions in a row, without any message accepted, after which a connection gives up.
const CONSECUTIVE_FAILURES_MAX: u32 = 20;

fn take_one(remaining: &AtomicU64) -> bool {
    remaining
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

async fn session(worker: usize, load: &Load, outcome: &mut Outcome) -> anyhow::Result<()> {
    let Load {
        args,
        remaining,
        deadline,
        body,
        pacer,
        acks,
    } = load;
    let deadline = *deadline;
    let stream = TcpStream::connect(args.server).await.context("connect")?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    expect(&mut reader, &mut line, "220").await?;
    write
        .write_all(format!("EHLO bench{worker}.tsubame.test\r\n").as_bytes())
        .await?;
    expect(&mut reader, &mut line, "250").await?;
    let mut commands = format!("MAIL FROM:<bench{worker}@tsubame.test>\r\n");
    for r in 0..args.recipients {
        commands.push_str(&format!(
            "RCPT TO:<user{}@{}>\r\n",
            (worker + r) % 1000,
            args.domain
        ));
    }
    commands.push_str("DATA\r\n");
    let replies_before_data = 1 + args.recipients;
    let mut payload = Vec::with_capacity(body.len() + commands.len() + 8);
    let mut sent_on_connection = 0u64;
    let mut pending_commands = true;
    if !take_one(remaining) {
        return Ok(());
    }
    pacer.wait().await;
    loop {
        if pending_commands {
            send_commands(
                &mut write,
                &mut reader,
                &mut line,
                &commands,
                args.pipelining,
            )
            .await?;
        }
        if args.pipelining {
            // The replies to the commands sent together (now, or chained after the last dot).
            for _ in 0..replies_before_data {
                expect(&mut reader, &mut line, "250").await?;
            }
            expect(&mut reader, &mut line, "354").await?;
        }
        let more = (args.messages_per_connection == 0
            || sent_on_connection + 1 < args.messages_per_connection)
            && deadline.is_none_or(|d| Instant::now() < d)
            && take_one(remaining);
        payload.clear();
        let seq = acks.as_ref().map(|a| a.next_seq());
        if let Some(seq) = seq {
            payload.extend_from_slice(format!("X-Bench-Seq: {seq}\r\n").as_bytes());
        }
        payload.extend_from_slice(body);
        payload.extend_from_slice(b".\r\n");
        // At a fixed rate the next transaction starts when its slot comes, not right away.
        let chain = more && args.pipelining && args.rate == 0;
        if chain {
            payload.extend_from_slice(commands.as_bytes());
        }
        write.write_all(&payload).await?;
        let sent_at = Instant::now();
        expect(&mut reader, &mut line, "250").await?;
        if let (Some(acks), Some(seq)) = (acks, seq) {
            acks.stamp(seq);
        }
        let _ = outcome
            .latency_us
            .record(sent_at.elapsed().as_micros().max(1) as u64);
        outcome.accepted += 1;
        sent_on_connection += 1;
        if !more {
            write.write_all(b"QUIT\r\n").await?;
            return Ok(());
        }
        pending_commands = !chain;
        if !chain {
            pacer.wait().await;
        }
    }
}

async fn send_commands(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut String,
    commands: &str,
    pipelining: bool,
) -> anyhow::Result<()> {
    if pipelining {
        write.write_all(commands.as_bytes()).await?;
        return Ok(());
    }
    // Without pipelining every command waits for its reply: 250 for MAIL and RCPT, 354 for DATA.
    for command in commands.split_inclusive("\r\n") {
        write.write_all(command.as_bytes()).await?;
        let code = if command.starts_with("DATA") {
            "354"
        } else {
            "250"
        };
        expect(reader, line, code).await?;
    }
    Ok(())
}

async fn expect(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut String,
    code: &str,
) -> anyhow::Result<()> {
    loop {
        line.clear();
        if reader.read_line(line).await? == 0 {
            bail!("server closed the connection");
        }
        if line.as_bytes().get(3) == Some(&b'-') {
            continue;
        }
        if !line.starts_with(code) {
            bail!("expected {code}, got {}", line.trim_end());
        }
        return Ok(());
    }
}
