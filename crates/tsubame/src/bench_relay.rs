//! `tsubame bench relay`: load through a relay into a sink inside this process, so the
//! acceptance time (the relay's 250) and the arrival time at the sink are read from one
//! clock. Reports the relay rate and accept→delivered latency percentiles, plus lost and
//! duplicated messages.
//!
//! The sink speaks SMTP through our own sans-IO server session (PIPELINING, strict CRLF),
//! accepts everything and keeps nothing. Pointing `--server` at the sink itself measures the
//! client→sink ceiling with the same tools.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use hdrhistogram::Histogram;
use smtp_wire::config::PeerContext;
use smtp_wire::session::{Event, Session};
use smtp_wire::{Reply, config::SessionConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::bench::{SmtpArgs, Stamps};

#[derive(clap::Args, Debug, Clone)]
pub struct RelayArgs {
    /// The relay under test (SMTP).
    #[arg(long, default_value = "127.0.0.1:2525")]
    server: SocketAddr,
    /// Where the sink listens; the relay must route the test domain here.
    #[arg(long, default_value = "127.0.0.1:2626")]
    sink: SocketAddr,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Messages to send.
    #[arg(long, default_value_t = 200_000)]
    messages: u64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 5120)]
    size: usize,
    /// Target rate (messages per second; 0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Recipient domain (route it to the sink).
    #[arg(long, default_value = "sink.test")]
    domain: String,
    /// How long to wait for the last messages to arrive after sending stops.
    #[arg(long, default_value = "60s")]
    drain_timeout: humantime::Duration,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    json: bool,
}

struct Sink {
    arrivals: Arc<Stamps>,
    received: AtomicU64,
    duplicates: AtomicU64,
    unparsed: AtomicU64,
}

pub fn run(args: RelayArgs) -> anyhow::Result<()> {
    if args.messages == 0 || args.connections == 0 {
        bail!("--messages and --connections must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(relay(args))
}

async fn relay(args: RelayArgs) -> anyhow::Result<()> {
    let origin = Instant::now();
    let acks = Arc::new(Stamps::new(origin, args.messages));
    let sink = Arc::new(Sink {
        arrivals: Arc::new(Stamps::new(origin, args.messages)),
        received: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        unparsed: AtomicU64::new(0),
    });
    let listener = TcpListener::bind(args.sink).await?;
    tokio::spawn(serve_sink(listener, sink.clone()));
    let load = SmtpArgs {
        server: args.server,
        connections: args.connections,
        messages: args.messages,
        duration: None,
        size: args.size.to_string(),
        recipients: 1,
        domain: args.domain.clone(),
        pipelining: true,
        messages_per_connection: 0,
        rate: args.rate,
        source: None,
        progress: Some(false),
        json: true,
    };
    let report = crate::bench_smtp::smtp(load, Some(acks.clone())).await?;
    let deadline = Instant::now() + Duration::from(args.drain_timeout);
    while sink.received.load(Ordering::Relaxed) < report.accepted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let mut last_arrival = Duration::ZERO;
    let mut missing = 0u64;
    for seq in 0..acks.len() {
        let Some(acked) = acks.get(seq) else { continue };
        match sink.arrivals.get(seq) {
            Some(arrived) => {
                last_arrival = last_arrival.max(arrived);
                let us = arrived.saturating_sub(acked).as_micros().max(1) as u64;
                let _ = latency.record(us);
            }
            None => missing += 1,
        }
    }
    let delivered = sink.received.load(Ordering::Relaxed);
    let relay_rate = latency.len() as f64 / last_arrival.as_secs_f64().max(1e-9);
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    let result = serde_json::json!({
        "server": args.server.to_string(), "sink": args.sink.to_string(),
        "connections": args.connections, "size": args.size, "rate": args.rate,
        "accepted": report.accepted, "failed": report.failed,
        "delivered": delivered, "missing": missing,
        "duplicates": sink.duplicates.load(Ordering::Relaxed),
        "unparsed": sink.unparsed.load(Ordering::Relaxed),
        "accept_msg_per_sec": report.rate(),
        "relay_msg_per_sec": relay_rate,
        "accept_latency_ms": { "p50": report.percentile_ms(0.5), "p99": report.percentile_ms(0.99),
            "p99_9": report.percentile_ms(0.999), "p99_999": report.percentile_ms(0.99999) },
        "accept_to_delivered_ms": { "p50": ms(0.5), "p99": ms(0.99), "p99_9": ms(0.999),
            "p99_99": ms(0.9999), "p99_999": ms(0.99999), "max": latency.max() as f64 / 1000.0 },
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "| server | accepted | delivered | missing | dup | accept msg/s | relay msg/s | a→d p50 ms | p99 ms | p99.9 ms | p99.999 ms | max ms |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|\n\
             | {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            args.server,
            report.accepted,
            delivered,
            missing,
            sink.duplicates.load(Ordering::Relaxed),
            report.rate(),
            relay_rate,
            ms(0.5),
            ms(0.99),
            ms(0.999),
            ms(0.99999),
            latency.max() as f64 / 1000.0
        );
    }
    if missing > 0 {
        bail!("{missing} accepted messages did not arrive within the drain timeout");
    }
    Ok(())
}

async fn serve_sink(listener: TcpListener, sink: Arc<Sink>) {
    let config = Arc::new(SessionConfig {
        hostname: "bench-sink.tsubame.test".into(),
        message_bytes_max: 64 << 20,
        recipients_max: 10_000,
        command_line_bytes_max: 4096,
        bad_commands_max: 100,
        starttls_available: false,
        auth_plaintext_allowed: false,
        recipient_checks: false,
        local_checks: false,
    });
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(sink_connection(stream, config.clone(), sink.clone()));
    }
}

async fn sink_connection(mut stream: TcpStream, config: Arc<SessionConfig>, sink: Arc<Sink>) {
    let mut session = Session::new(
        config,
        PeerContext {
            relay_trusted: true,
            tls_active: false,
        },
    );
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match session.advance() {
            Event::Submit(txn) => {
                note_arrival(&sink, &txn.content);
                session.complete_submission(Reply::new(250, (2, 0, 0), "Ok: discarded"));
                continue;
            }
            Event::Authenticate(_) => {
                session.complete_auth(None);
                continue;
            }
            Event::CheckRecipient(_) => {
                session.complete_recipient(None);
                continue;
            }
            Event::CheckLocal(_) => {
                session.complete_local(false);
                continue;
            }
            Event::NeedInput => {}
            Event::StartTls | Event::Close => {
                let _ = stream.write_all(session.output()).await;
                return;
            }
        }
        if !session.output().is_empty() {
            if stream.write_all(session.output()).await.is_err() {
                return;
            }
            session.clear_output();
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => session.feed(&buf[..n]),
        }
    }
}

fn note_arrival(sink: &Sink, content: &[u8]) {
    sink.received.fetch_add(1, Ordering::Relaxed);
    let seq = memchr::memmem::find(content, b"X-Bench-Seq: ").and_then(|at| {
        let rest = &content[at + 13..];
        let end = rest.iter().position(|b| !b.is_ascii_digit())?;
        std::str::from_utf8(&rest[..end]).ok()?.parse::<u64>().ok()
    });
    match seq {
        Some(seq) => {
            if !sink.arrivals.stamp(seq) {
                sink.duplicates.fetch_add(1, Ordering::Relaxed);
            }
        }
        None => {
            sink.unparsed.fetch_add(1, Ordering::Relaxed);
        }
    }
}
