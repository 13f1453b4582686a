//! What a message durable on a majority costs with NATS JetStream: clients publish 2 KiB
//! messages to file-storage streams and wait for the acknowledgements (sent by the stream
//! leader once a majority of replicas stored — and, with `sync_interval: always`, fsynced —
//! the message). Run by `scripts/bench-spool-replication`, beside the PostgreSQL figures.
//!
//! `cargo run --release -p cluster --example jetstream_bench -- --servers nats://… --replicas 3`

use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, stream};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Comma-separated server URLs.
    #[arg(long)]
    servers: String,
    /// Replicas per stream (1 = the single-server reference).
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Streams the clients spread over (shards; leaders land on different servers).
    #[arg(long, default_value_t = 1)]
    streams: usize,
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Messages published before waiting for their acknowledgements (the send API's batch).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    #[arg(long, default_value_t = 2048)]
    size: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let servers: Vec<String> = args.servers.split(',').map(str::to_string).collect();
    let admin = async_nats::connect(servers.clone())
        .await
        .context("connect")?;
    let js = jetstream::new(admin);
    let tag = format!(
        "r{}s{}c{}b{}",
        args.replicas, args.streams, args.clients, args.batch
    );
    for s in 0..args.streams {
        let name = format!("BENCH_{tag}_{s}").to_uppercase();
        let _ = js.delete_stream(&name).await;
        js.create_stream(stream::Config {
            name,
            subjects: vec![format!("bench.{tag}.{s}")],
            storage: stream::StorageType::File,
            num_replicas: args.replicas,
            ..Default::default()
        })
        .await
        .context("create stream")?;
    }
    let payload = bytes::Bytes::from(vec![b'x'; args.size]);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let servers = servers.clone();
        let payload = payload.clone();
        let subject = format!("bench.{tag}.{}", c % args.streams);
        let batch = args.batch;
        tasks.push(tokio::spawn(async move {
            let client = async_nats::connect(servers).await?;
            let js = jetstream::new(client);
            let mut latencies = hdrhistogram::Histogram::<u64>::new(3)?;
            let mut sent = 0u64;
            while Instant::now() < deadline {
                let started = Instant::now();
                let mut acks = Vec::with_capacity(batch);
                for _ in 0..batch {
                    acks.push(js.publish(subject.clone(), payload.clone()).await?);
                }
                for ack in acks {
                    ack.await?;
                }
                latencies.record(started.elapsed().as_micros() as u64)?;
                sent += batch as u64;
            }
            anyhow::Ok((sent, latencies))
        }));
    }
    let started = Instant::now();
    let mut sent = 0;
    let mut latencies = hdrhistogram::Histogram::<u64>::new(3)?;
    for task in tasks {
        let (n, h) = task.await??;
        sent += n;
        latencies.add(h)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "| JetStream R{} | {} | {} | {} | {:.0} | {:.2} | {:.2} |",
        args.replicas,
        args.batch,
        args.clients,
        args.streams,
        sent as f64 / elapsed,
        latencies.mean() / 1000.0,
        latencies.value_at_quantile(0.99) as f64 / 1000.0
    );
    for s in 0..args.streams {
        let _ = js
            .delete_stream(format!("BENCH_{tag}_{s}").to_uppercase())
            .await;
    }
    Ok(())
}
