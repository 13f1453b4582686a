//! `tsubame bench http`: the send API under load. Each connection posts batches of messages
//! back to back over HTTP/1.1 keep-alive (a small client of its own, so the generator costs
//! little next to the server) and times every call; the report gives messages per second
//! and per-call latency percentiles. `--api` picks the native, SendGrid or Mailjet endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum Api {
    Native,
    Sendgrid,
    Mailjet,
}

#[derive(clap::Args, Debug, Clone)]
pub struct HttpArgs {
    /// The server's HTTP address.
    #[arg(long, default_value = "127.0.0.1:8025")]
    server: SocketAddr,
    /// An API key with the send scope (`tsb_...`).
    #[arg(long, env = "TSUBAME_API_KEY")]
    key: String,
    /// Which endpoint.
    #[arg(long, value_enum, default_value = "native")]
    api: Api,
    /// Concurrent connections.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Messages per call.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Messages to send in all.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Body size of each message's text part, in bytes.
    #[arg(long, default_value_t = 2048)]
    size: usize,
    /// Recipient domain.
    #[arg(long, default_value = "example.com")]
    domain: String,
    /// Sender address (its domain must be one of the tenant's sending domains).
    #[arg(long, default_value = "bench@tsubame.test")]
    from: String,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    json: bool,
}

pub fn run(args: HttpArgs) -> anyhow::Result<()> {
    if args.batch == 0 || args.connections == 0 {
        bail!("--batch and --connections must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(load(args))
}

fn body(args: &HttpArgs, call: u64) -> String {
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(args.size / 45 + 1);
    let text = &text[..args.size.min(text.len())];
    let rcpt = |i: usize| {
        format!(
            "user{}@{}",
            (call as usize * args.batch + i) % 100_000,
            args.domain
        )
    };
    match args.api {
        Api::Native => {
            let messages: Vec<serde_json::Value> = (0..args.batch)
                .map(|i| {
                    serde_json::json!({"from": args.from, "to": [rcpt(i)],
                    "subject": format!("bench {call}/{i}"), "text": text})
                })
                .collect();
            serde_json::json!({ "messages": messages }).to_string()
        }
        Api::Sendgrid => {
            let personalizations: Vec<serde_json::Value> = (0..args.batch)
                .map(|i| serde_json::json!({"to": [{"email": rcpt(i)}]}))
                .collect();
            serde_json::json!({"personalizations": personalizations,
                "from": {"email": args.from}, "subject": format!("bench {call}"),
                "content": [{"type": "text/plain", "value": text}]})
            .to_string()
        }
        Api::Mailjet => {
            let messages: Vec<serde_json::Value> = (0..args.batch)
                .map(|i| serde_json::json!({"From": {"Email": args.from},
                    "To": [{"Email": rcpt(i)}], "Subject": format!("bench {call}/{i}"), "TextPart": text}))
                .collect();
            serde_json::json!({ "Messages": messages }).to_string()
        }
    }
}

fn request(args: &HttpArgs, body: &str) -> Vec<u8> {
    let path = match args.api {
        Api::Native => "/v1/messages",
        Api::Sendgrid => "/v3/mail/send",
        Api::Mailjet => "/v3.1/send",
    };
    format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        args.server,
        args.key,
        body.len()
    )
    .into_bytes()
}

/// Reads one response; returns its status. Bodies are sized by Content-Length or chunked.
async fn response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<u16> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .context("status line")?;
            let length: Option<usize> = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok());
            let body_start = end + 4;
            match length {
                Some(length) => {
                    while buf.len() < body_start + length {
                        read_more(stream, buf).await?;
                    }
                    buf.drain(..body_start + length);
                }
                None if head.contains("transfer-encoding: chunked") => {
                    while !buf[body_start..].windows(5).any(|w| w == b"0\r\n\r\n") {
                        read_more(stream, buf).await?;
                    }
                    let at = buf[body_start..]
                        .windows(5)
                        .position(|w| w == b"0\r\n\r\n")
                        .unwrap_or(0);
                    buf.drain(..body_start + at + 5);
                }
                None => buf.drain(..body_start).for_each(drop),
            }
            return Ok(status);
        }
        read_more(stream, buf).await?;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        bail!("server closed the connection");
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

async fn load(args: HttpArgs) -> anyhow::Result<()> {
    let calls = args.messages.div_ceil(args.batch as u64);
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let args = args.clone();
        let next = next.clone();
        let failed = failed.clone();
        tasks.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let mut stream = TcpStream::connect(args.server).await?;
            stream.set_nodelay(true)?;
            let mut buf = Vec::new();
            let mut first_error = None;
            loop {
                let call = next.fetch_add(1, Ordering::Relaxed);
                if call >= calls {
                    break;
                }
                let payload = request(&args, &body(&args, call));
                let sent = Instant::now();
                stream.write_all(&payload).await?;
                let status = response(&mut stream, &mut buf).await?;
                let _ = latency.record(sent.elapsed().as_micros().max(1) as u64);
                if !(200..300).contains(&status) {
                    failed.fetch_add(1, Ordering::Relaxed);
                    first_error.get_or_insert(status);
                }
            }
            Ok::<_, anyhow::Error>((latency, first_error))
        }));
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut first_error = None;
    for task in tasks {
        let (h, e) = task.await??;
        latency.add(&h)?;
        first_error = first_error.or(e);
    }
    let elapsed = started.elapsed();
    let failed = failed.load(Ordering::Relaxed);
    let ok_calls = latency.len().saturating_sub(failed);
    let messages = ok_calls * args.batch as u64;
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    let rate = messages as f64 / elapsed.as_secs_f64();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "api": format!("{:?}", args.api).to_lowercase(), "connections": args.connections,
                "batch": args.batch, "calls": latency.len(), "failed_calls": failed,
                "first_error_status": first_error, "messages": messages,
                "seconds": elapsed.as_secs_f64(), "msg_per_sec": rate,
                "call_ms": {"p50": ms(0.5), "p99": ms(0.99), "p99_9": ms(0.999), "max": ms(1.0)},
            }))?
        );
    } else {
        println!(
            "| api | conns | batch | calls | failed | msg/s | call p50 ms | p99 ms | p99.9 ms | max ms |\n\
             |---|---|---|---|---|---|---|---|---|---|\n\
             | {:?} | {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            args.api,
            args.connections,
            args.batch,
            latency.len(),
            failed,
            rate,
            ms(0.5),
            ms(0.99),
            ms(0.999),
            ms(1.0)
        );
    }
    if failed > 0 && ok_calls == 0 {
        bail!("every call failed; first status {first_error:?}");
    }
    Ok(())
}
