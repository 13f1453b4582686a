//! `tsubame bench smtp`: the SMTP load. Each connection runs transactions back to back.
//! With pipelining, a message costs one round trip: `MAIL/RCPT.../DATA` go out together,
//! and after the 354 the content, the dot and the next transaction's commands go out in one
//! write (RFC 2920). Latency is measured from the moment the end-of-data dot is written to
//! the moment its reply arrives: for a durable server that is the accept latency, fsync
//! included. Refusals are counted, not fatal: a 4xx or 5xx to one message or recipient is
//! what a provider-like sink is for; a 421 closes the session and the message it cost is
//! sent again on a new connection.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::bench::{Report, SmtpArgs, Stamps};
use crate::bench_mix::{self, Weighted};

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

/// Accepted messages per second since the start (the last slot takes any overflow).
struct Timeline {
    start: Instant,
    seconds: Vec<AtomicU64>,
}

const TIMELINE_SECONDS_MAX: usize = 24 * 3600;

impl Timeline {
    fn record(&self) {
        let at = (self.start.elapsed().as_secs() as usize).min(self.seconds.len() - 1);
        self.seconds[at].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts for every whole or started second up to `elapsed`.
    fn until(&self, elapsed: Duration) -> Vec<u64> {
        let n = (elapsed.as_secs_f64().ceil() as usize).clamp(1, self.seconds.len());
        self.seconds[..n]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }
}

/// Counters every connection adds to.
#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    tempfailed: AtomicU64,
    permfailed: AtomicU64,
    recipients_refused: AtomicU64,
    failed: AtomicU64,
}

/// What every connection of one run shares.
struct Load {
    args: SmtpArgs,
    /// Messages not yet started, across all connections.
    remaining: AtomicU64,
    deadline: Option<Instant>,
    sizes: Weighted<usize>,
    bodies: HashMap<usize, Vec<u8>>,
    domains: Weighted<String>,
    sources: Vec<IpAddr>,
    pacer: Pacer,
    acks: Option<Arc<Stamps>>,
    timeline: Timeline,
    counts: Counts,
}

impl Load {
    fn running(&self) -> bool {
        self.remaining.load(Ordering::Relaxed) > 0
            && self.deadline.is_none_or(|d| Instant::now() < d)
    }

    fn take_one(&self) -> bool {
        self.deadline.is_none_or(|d| Instant::now() < d)
            && self
                .remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
    }

    /// A message that was taken but never reached its end of data goes back to the pool.
    fn give_back(&self) {
        self.remaining.fetch_add(1, Ordering::Relaxed);
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
    while out.len() < size.saturating_sub(2) {
        out.push(b'x');
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Runs the load. With `acks`, every message carries an `X-Bench-Seq` header and its
/// acceptance time is stamped.
pub(crate) async fn smtp(args: SmtpArgs, acks: Option<Arc<Stamps>>) -> anyhow::Result<Report> {
    let sizes = bench_mix::sizes(&args.size).context("--size")?;
    let domains = bench_mix::domains(&args.domain).context("--domain")?;
    let sources = match &args.source {
        Some(spec) => bench_mix::sources(spec).context("--source")?,
        None => Vec::new(),
    };
    let bodies = sizes.values().map(|&s| (s, content(s))).collect();
    let started = Instant::now();
    let load = Arc::new(Load {
        remaining: AtomicU64::new(args.messages),
        deadline: args.duration.map(|d| started + Duration::from(d)),
        sizes,
        bodies,
        domains,
        sources,
        pacer: Pacer {
            start: started,
            issued: AtomicU64::new(0),
            rate: args.rate,
        },
        acks,
        timeline: Timeline {
            start: started,
            seconds: (0..TIMELINE_SECONDS_MAX)
                .map(|_| AtomicU64::new(0))
                .collect(),
        },
        counts: Counts::default(),
        args,
    });
    let show_progress = load
        .args
        .progress
        .unwrap_or_else(|| std::io::stderr().is_terminal());
    let progress = show_progress.then(|| tokio::spawn(progress_line(load.clone())));
    let histogram = Histogram::new_with_bounds(1, 60_000_000, 3)?;
    let mut tasks = Vec::new();
    for worker in 0..load.args.connections {
        let load = load.clone();
        let histograms = Latencies {
            accept_us: histogram.clone(),
            transaction_us: histogram.clone(),
        };
        tasks.push(tokio::spawn(async move {
            connection_loop(worker, &load, histograms).await
        }));
    }
    let mut report = Report {
        accepted: 0,
        tempfailed: 0,
        permfailed: 0,
        recipients_refused: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        transaction_us: histogram.clone(),
        latency_us: histogram,
        first_error: None,
        timeline: Vec::new(),
    };
    for task in tasks {
        let (latencies, error) = task.await?;
        report.latency_us.add(&latencies.accept_us)?;
        report.transaction_us.add(&latencies.transaction_us)?;
        if report.first_error.is_none() {
            report.first_error = error;
        }
    }
    report.elapsed = started.elapsed();
    if let Some(progress) = progress {
        progress.abort();
        eprintln!();
    }
    let c = &load.counts;
    report.accepted = c.accepted.load(Ordering::Relaxed);
    report.tempfailed = c.tempfailed.load(Ordering::Relaxed);
    report.permfailed = c.permfailed.load(Ordering::Relaxed);
    report.recipients_refused = c.recipients_refused.load(Ordering::Relaxed);
    report.failed = c.failed.load(Ordering::Relaxed);
    report.timeline = load.timeline.until(report.elapsed);
    Ok(report)
}

/// One line on stderr, rewritten every second: a bar, counts and the last second's rate.
async fn progress_line(load: Arc<Load>) {
    let total = load.args.messages.max(1);
    let mut last = 0u64;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let done = load.counts.accepted.load(Ordering::Relaxed);
        let failed = load.counts.tempfailed.load(Ordering::Relaxed)
            + load.counts.permfailed.load(Ordering::Relaxed);
        let filled = ((done + failed) * 30 / total).min(30) as usize;
        eprint!(
            "\r[{}{}] {done}/{total} accepted, {failed} refused, {} msg/s   ",
            "#".repeat(filled),
            ".".repeat(30 - filled),
            done - last
        );
        last = done;
    }
}

/// One connection's latencies, merged into the report at the end.
struct Latencies {
    accept_us: Histogram<u64>,
    transaction_us: Histogram<u64>,
}

async fn connection_loop(
    worker: usize,
    load: &Load,
    mut latencies: Latencies,
) -> (Latencies, Option<String>) {
    let mut first_error = None;
    let mut consecutive_failures = 0;
    let mut rng = SmallRng::seed_from_u64(worker as u64);
    while load.running() {
        let accepted_before = load.counts.accepted.load(Ordering::Relaxed);
        match session(worker, load, &mut rng, &mut latencies).await {
            Ok(()) => consecutive_failures = 0,
            Err(err) => {
                load.counts.failed.fetch_add(1, Ordering::Relaxed);
                if first_error.is_none() {
                    first_error = Some(format!("{err:#}"));
                }
                consecutive_failures =
                    if load.counts.accepted.load(Ordering::Relaxed) > accepted_before {
                        1
                    } else {
                        consecutive_failures + 1
                    };
                // A server that keeps refusing is down or misconfigured; stop instead of spinning.
                if consecutive_failures >= CONSECUTIVE_FAILURES_MAX {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    (latencies, first_error)
}

/// Failed sessions in a row, without any message accepted, after which a connection gives up.
const CONSECUTIVE_FAILURES_MAX: u32 = 20;

/// One message's commands and body, drawn from the mix.
struct Planned<'a> {
    commands: String,
    recipients: usize,
    body: &'a [u8],
}

fn plan<'a>(worker: usize, load: &'a Load, rng: &mut SmallRng, n: u64) -> Planned<'a> {
    let args = &load.args;
    let mut commands = format!("MAIL FROM:<bench{worker}@tsubame.test>\r\n");
    for r in 0..args.recipients {
        let domain = load.domains.pick(rng);
        let user = (worker as u64 * 7919 + n * 31 + r as u64) % 100_000;
        commands.push_str(&format!("RCPT TO:<user{user}@{domain}>\r\n"));
    }
    commands.push_str("DATA\r\n");
    let size = *load.sizes.pick(rng);
    Planned {
        commands,
        recipients: args.recipients,
        body: load.bodies.get(&size).map_or(&[][..], Vec::as_slice),
    }
}

type Reader = BufReader<tokio::net::tcp::OwnedReadHalf>;
type Writer = tokio::net::tcp::OwnedWriteHalf;

async fn connect(worker: usize, load: &Load) -> anyhow::Result<TcpStream> {
    let source = (!load.sources.is_empty()).then(|| load.sources[worker % load.sources.len()]);
    let stream = bench_mix::connect_from(load.args.server, source).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn session(
    worker: usize,
    load: &Load,
    rng: &mut SmallRng,
    latencies: &mut Latencies,
) -> anyhow::Result<()> {
    let args = &load.args;
    let stream = connect(worker, load).await?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    let greeting = read_reply(&mut reader, &mut line).await?;
    if greeting != 220 {
        bail!("greeting {}", line.trim_end());
    }
    write
        .write_all(format!("EHLO bench{worker}.tsubame.test\r\n").as_bytes())
        .await?;
    if read_reply(&mut reader, &mut line).await? != 250 {
        bail!("EHLO refused: {}", line.trim_end());
    }
    if !load.take_one() {
        return Ok(());
    }
    load.pacer.wait().await;
    let mut sent_on_connection = 0u64;
    let mut n = 0u64;
    let mut current = plan(worker, load, rng, n);
    let mut commands_sent = false;
    let mut payload = Vec::new();
    let mut txn_started = Instant::now();
    loop {
        if !commands_sent {
            txn_started = Instant::now();
        }
        let result = transaction(
            load,
            &mut reader,
            &mut write,
            &mut line,
            &current,
            commands_sent,
        )
        .await;
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(TxnError::ServiceClosing) => {
                load.give_back();
                return Ok(());
            }
            Err(TxnError::Io(err)) => {
                load.give_back();
                return Err(err);
            }
        };
        if !outcome {
            // Refused before the content: nothing was sent, the next message starts afresh.
            sent_on_connection += 1;
            if !next(load, args, sent_on_connection) {
                let _ = write.write_all(b"QUIT\r\n").await;
                return Ok(());
            }
            load.pacer.wait().await;
            n += 1;
            current = plan(worker, load, rng, n);
            commands_sent = false;
            continue;
        }
        let more = next(load, args, sent_on_connection + 1);
        payload.clear();
        let seq = load.acks.as_ref().map(|a| a.next_seq());
        if let Some(seq) = seq {
            payload.extend_from_slice(format!("X-Bench-Seq: {seq}\r\n").as_bytes());
        }
        payload.extend_from_slice(current.body);
        payload.extend_from_slice(b".\r\n");
        // At a fixed rate the next transaction starts when its slot comes, not right away.
        let chain = more && args.pipelining && args.rate == 0;
        let following = more.then(|| {
            n += 1;
            plan(worker, load, rng, n)
        });
        if let (true, Some(next_plan)) = (chain, &following) {
            payload.extend_from_slice(next_plan.commands.as_bytes());
        }
        if let Err(err) = write.write_all(&payload).await {
            load.give_back();
            if more {
                load.give_back();
            }
            return Err(err.into());
        }
        let sent_at = Instant::now();
        let code = match read_reply(&mut reader, &mut line).await {
            Ok(code) => code,
            Err(err) => {
                // The message's fate is unknown; only the chained one is given back.
                if more {
                    load.give_back();
                }
                return Err(err);
            }
        };
        sent_on_connection += 1;
        match code {
            200..=299 => {
                if let (Some(acks), Some(seq)) = (&load.acks, seq) {
                    acks.stamp(seq);
                }
                let _ = latencies
                    .accept_us
                    .record(sent_at.elapsed().as_micros().max(1) as u64);
                let _ = latencies
                    .transaction_us
                    .record(txn_started.elapsed().as_micros().max(1) as u64);
                load.counts.accepted.fetch_add(1, Ordering::Relaxed);
                load.timeline.record();
            }
            421 => {
                load.counts.tempfailed.fetch_add(1, Ordering::Relaxed);
                if more {
                    load.give_back();
                }
                return Ok(());
            }
            400..=499 => {
                load.counts.tempfailed.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                load.counts.permfailed.fetch_add(1, Ordering::Relaxed);
            }
        }
        let Some(next_plan) = following else {
            let _ = write.write_all(b"QUIT\r\n").await;
            return Ok(());
        };
        current = next_plan;
        commands_sent = chain;
        // A chained transaction started when its commands went out with the previous dot.
        txn_started = sent_at;
        if !chain {
            load.pacer.wait().await;
        }
    }
}

/// Whether this connection goes on with another message (and takes it from the pool).
fn next(load: &Load, args: &SmtpArgs, sent_on_connection: u64) -> bool {
    (args.messages_per_connection == 0 || sent_on_connection < args.messages_per_connection)
        && load.take_one()
}

enum TxnError {
    /// The server said 421 (too many messages, shutting down): not an error; reconnect.
    ServiceClosing,
    Io(anyhow::Error),
}

impl From<anyhow::Error> for TxnError {
    fn from(err: anyhow::Error) -> Self {
        TxnError::Io(err)
    }
}

impl From<std::io::Error> for TxnError {
    fn from(err: std::io::Error) -> Self {
        TxnError::Io(err.into())
    }
}

/// MAIL, RCPTs and DATA for `planned`, up to the 354. `true`: send the content now.
/// `false`: the server refused the message before its content (counted here; the session
/// is reset when it had accepted the sender).
async fn transaction(
    load: &Load,
    reader: &mut Reader,
    write: &mut Writer,
    line: &mut String,
    planned: &Planned<'_>,
    commands_sent: bool,
) -> Result<bool, TxnError> {
    let pipelining = load.args.pipelining;
    if pipelining && !commands_sent {
        write.write_all(planned.commands.as_bytes()).await?;
    }
    let mut lines = planned.commands.split_inclusive("\r\n");
    let mail = step(pipelining, &mut lines, write, reader, line).await?;
    // Without pipelining a refused MAIL ends the attempt; with it, every reply is read.
    if !pipelining && mail != 250 {
        return Ok(refused(load, mail));
    }
    let mut accepted_rcpts = 0;
    let mut last_refusal = 0;
    for _ in 0..planned.recipients {
        let code = step(pipelining, &mut lines, write, reader, line).await?;
        if code == 250 || code == 251 {
            accepted_rcpts += 1;
        } else {
            last_refusal = code;
            load.counts
                .recipients_refused
                .fetch_add(1, Ordering::Relaxed);
        }
    }
    if !pipelining && accepted_rcpts == 0 {
        reset(write, reader, line).await?;
        return Ok(refused(load, last_refusal));
    }
    let data = step(pipelining, &mut lines, write, reader, line).await?;
    if data == 354 {
        return Ok(true);
    }
    // DATA refused (every RCPT refused, or MAIL refused): say why with the first refusal.
    let cause = if mail != 250 {
        mail
    } else if accepted_rcpts == 0 {
        last_refusal
    } else {
        data
    };
    if mail == 250 {
        reset(write, reader, line).await?;
    }
    Ok(refused(load, cause))
}

/// Without pipelining, writes the next command first; then reads one reply. A 421 means the
/// server is closing the session.
async fn step<'a>(
    pipelining: bool,
    lines: &mut impl Iterator<Item = &'a str>,
    write: &mut Writer,
    reader: &mut Reader,
    line: &mut String,
) -> Result<u16, TxnError> {
    if !pipelining && let Some(command) = lines.next() {
        write.write_all(command.as_bytes()).await?;
    }
    let code = read_reply(reader, line).await?;
    if code == 421 {
        return Err(TxnError::ServiceClosing);
    }
    Ok(code)
}

/// Counts a message refused before its content; always `false` (no content to send).
fn refused(load: &Load, code: u16) -> bool {
    if (400..500).contains(&code) {
        load.counts.tempfailed.fetch_add(1, Ordering::Relaxed);
    } else {
        load.counts.permfailed.fetch_add(1, Ordering::Relaxed);
    }
    false
}

async fn reset(write: &mut Writer, reader: &mut Reader, line: &mut String) -> Result<(), TxnError> {
    write.write_all(b"RSET\r\n").await?;
    match read_reply(reader, line).await? {
        250 => Ok(()),
        421 => Err(TxnError::ServiceClosing),
        _ => Err(TxnError::Io(anyhow::anyhow!(
            "RSET refused: {}",
            line.trim_end()
        ))),
    }
}

/// Reads one whole reply (continuation lines included) and returns its code.
pub(crate) async fn read_reply<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut String,
) -> anyhow::Result<u16> {
    loop {
        line.clear();
        if reader.read_line(line).await? == 0 {
            bail!("server closed the connection");
        }
        if line.as_bytes().get(3) == Some(&b'-') {
            continue;
        }
        return line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .with_context(|| format!("not an SMTP reply: {}", line.trim_end()));
    }
}
