//! `tsubame sink`: runs the provider-like receiving server of the `sink` crate from the
//! command line, serves its counters on /metrics, and prints a summary when it stops
//! (SIGINT, SIGTERM or `--duration`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;
use sink::{Policy, Shares, Sink, SinkConfig, Summary};

#[derive(clap::Args, Debug)]
pub struct SinkArgs {
    /// Address to listen on (repeatable).
    #[arg(long, default_value = "127.0.0.1:2626")]
    listen: Vec<SocketAddr>,
    /// Name in the greeting and EHLO reply.
    #[arg(long, default_value = "sink.tsubame.test")]
    hostname: String,
    /// Share of connections refused with 421 at connect (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    connect_tempfail: f64,
    /// Share of connections refused with 554 at connect.
    #[arg(long, default_value_t = 0.0)]
    connect_permfail: f64,
    /// Share of recipients answered 451 4.2.1.
    #[arg(long, default_value_t = 0.0)]
    rcpt_tempfail: f64,
    /// Share of recipients answered 550 5.1.1.
    #[arg(long, default_value_t = 0.0)]
    rcpt_permfail: f64,
    /// Share of messages answered 451 4.3.0 at end of data.
    #[arg(long, default_value_t = 0.0)]
    data_tempfail: f64,
    /// Share of messages answered 554 5.7.1 at end of data.
    #[arg(long, default_value_t = 0.0)]
    data_permfail: f64,
    /// Delay before each end-of-data reply (e.g. "200ms").
    #[arg(long, default_value = "0s")]
    data_latency: humantime::Duration,
    /// Delay before every other reply, the greeting included.
    #[arg(long, default_value = "0s")]
    command_latency: humantime::Duration,
    /// Concurrent connections beyond which new ones get 421 (0 = no limit).
    #[arg(long, default_value_t = 0)]
    connections_max: u64,
    /// Messages after which a connection is closed with 421 (0 = no limit).
    #[arg(long, default_value_t = 0)]
    messages_per_connection: u64,
    /// Offer STARTTLS (with --tls-cert/--tls-key, or a self-signed certificate).
    #[arg(long)]
    tls: bool,
    /// PEM certificate chain for STARTTLS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for STARTTLS.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Keep every accepted message as a file in this directory.
    #[arg(long)]
    capture: Option<PathBuf>,
    /// Serve Prometheus metrics on http://ADDR/metrics.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Stop after this long (default: run until SIGINT or SIGTERM).
    #[arg(long)]
    duration: Option<humantime::Duration>,
    /// Largest message accepted, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    message_bytes_max: usize,
    /// Seed for the share rolls (same seed and traffic, same answers).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the exit summary as JSON instead of Markdown.
    #[arg(long)]
    json: bool,
}

pub fn run(args: SinkArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: SinkArgs) -> anyhow::Result<()> {
    let tls = if args.tls {
        Some(match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => smtp_server::tls::server_config(
                &smtp_server::tls::TlsSource::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                },
                &args.hostname,
            )?,
            _ => sink::self_signed_tls(&args.hostname)?,
        })
    } else {
        None
    };
    let config = SinkConfig {
        listen: args.listen.clone(),
        hostname: args.hostname.clone(),
        policy: Policy {
            connect: Shares {
                tempfail: args.connect_tempfail,
                permfail: args.connect_permfail,
            },
            rcpt: Shares {
                tempfail: args.rcpt_tempfail,
                permfail: args.rcpt_permfail,
            },
            data: Shares {
                tempfail: args.data_tempfail,
                permfail: args.data_permfail,
            },
        },
        command_latency: args.command_latency.into(),
        data_latency: args.data_latency.into(),
        connections_max: args.connections_max,
        messages_per_connection: args.messages_per_connection,
        tls,
        capture: args.capture.clone(),
        message_bytes_max: args.message_bytes_max,
        seed: args.seed,
        ..SinkConfig::default()
    };
    if let Some(addr) = args.metrics_listen {
        let handle = PrometheusBuilder::new()
            .install_recorder()
            .context("installing the metrics recorder")?;
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let handle = handle.clone();
                async move { handle.render() }
            }),
        );
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("metrics listener {addr}"))?;
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    let sink = Sink::bind(config).await?;
    let stats = sink.stats();
    // Scripts wait for this line to know the sink is listening.
    let addrs: Vec<String> = sink.local_addrs().iter().map(|a| a.to_string()).collect();
    eprintln!("sink listening on {}", addrs.join(", "));
    let duration = args.duration.map(Duration::from);
    sink.run(async move {
        let stop = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return stop.await,
            };
        tokio::select! {
            _ = stop => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    })
    .await;
    let summary = stats.summary();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json(&summary))?);
    } else {
        println!("{}", markdown(&summary));
    }
    Ok(())
}

fn counts(c: [u64; 3]) -> serde_json::Value {
    serde_json::json!({ "accepted": c[0], "tempfail": c[1], "permfail": c[2] })
}

fn json(s: &Summary) -> serde_json::Value {
    let p = |p: &sink::stats::Percentiles| {
        serde_json::json!({ "count": p.count, "p50": p.p50, "p99": p.p99, "p99_9": p.p99_9,
            "p99_999": p.p99_999, "max": p.max })
    };
    serde_json::json!({
        "connections": counts(s.connections),
        "connections_over_limit": s.connections_over_limit,
        "connections_recycled": s.connections_recycled,
        "connections_open_max": s.open_max,
        "tls_sessions": s.tls_sessions,
        "recipients": counts(s.recipients),
        "messages": counts(s.messages),
        "messages_malformed": s.messages_malformed,
        "bytes": s.bytes,
        "transaction_ms": p(&s.transaction_ms),
        "connection_s": p(&s.connection_s),
    })
}

fn markdown(s: &Summary) -> String {
    let row = |name: &str, c: [u64; 3]| format!("| {name} | {} | {} | {} |", c[0], c[1], c[2]);
    let t = &s.transaction_ms;
    format!(
        "| stage | accepted | tempfail | permfail |\n|---|---|---|---|\n{}\n{}\n{}\n\n\
         Connections over the limit: {}; recycled after the message limit: {}; most open at once: {}; \
         TLS sessions: {}; malformed messages: {}; bytes accepted: {}.\n\n\
         Transaction time as the sink saw it (ms): p50 {:.2}, p99 {:.2}, p99.9 {:.2}, p99.999 {:.2}, max {:.2} ({} transactions).",
        row("connect", s.connections),
        row("rcpt", s.recipients),
        row("data", s.messages),
        s.connections_over_limit,
        s.connections_recycled,
        s.open_max,
        s.tls_sessions,
        s.messages_malformed,
        s.bytes,
        t.p50,
        t.p99,
        t.p99_9,
        t.p99_999,
        t.max,
        t.count
    )
}
