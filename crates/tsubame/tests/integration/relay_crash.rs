//! Crash test for delivery: clients send numbered messages through tsubame to a receiving MX
//! (Python aiosmtpd) while tsubame is killed with SIGKILL and restarted. When the queue has
//! drained, every acknowledged message must have reached the MX at least once.
//!
//! Counted: acknowledged; lost (acknowledged, never delivered: must be 0); duplicated
//! (delivered more than once: allowed only when the kill fell between the MX's 250 and our
//! record of it, so it is measured and printed); unexpected (delivered without an
//! acknowledgement: killed between fsync and our 250 reply).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use testkit::dns::{Rr, TestDns};
use testkit::sink::{MxSink, SinkOptions};

use crate::crash::{Kills, send_while_killing};
use crate::harness::TestServer;

const CLIENTS: usize = 4;
const KILLS: usize = 4;

fn subject_of(content: &str) -> Option<String> {
    let start = content.find("Subject: crash ")? + "Subject: crash ".len();
    let end = content[start..].find("\r\n")? + start;
    Some(content[start..end].to_string())
}

#[test]
fn sigkill_during_delivery_loses_nothing_and_counts_duplicates() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = MxSink::start_free(&["127.0.0.1"], sink_dir.path(), SinkOptions::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dns = rt.block_on(TestDns::start(
        &[
            Rr::mx("dest.test", 10, "mx.dest.test"),
            Rr::a("mx.dest.test", "127.0.0.1"),
        ],
        60,
    ));
    let mut server = TestServer::start(&format!(
        "connections_per_ip_max = 1000\nconnection_rate_per_ip_max = 100000\n\
         [delivery]\ndns_servers = [\"{}\"]\nmx_port = {port}\nretry_initial = \"1s\"\n",
        dns.addr
    ));
    let acked = send_while_killing(
        &mut server,
        Kills {
            clients: CLIENTS,
            kills: KILLS,
            rcpt: "r@dest.test",
            gap_ms: (400, 800),
            settle_ms: 300,
            seed: 0x2545_f491_4f6c_dd1d,
        },
    );
    // Let the queue drain to the MX.
    let deadline = Instant::now() + Duration::from_secs(90);
    while server.admin_json("/admin/v1/queue/summary")["messages"] != 0 {
        assert!(
            Instant::now() < deadline,
            "queue did not drain: {}",
            server.admin_json("/admin/v1/queue/summary")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut delivered: HashMap<String, usize> = HashMap::new();
    for message in sink.messages() {
        if let Some(subject) = message["content"].as_str().and_then(subject_of) {
            *delivered.entry(subject).or_default() += 1;
        }
    }
    let acked_subjects: Vec<String> = acked
        .iter()
        .filter_map(|(_, body)| subject_of(&String::from_utf8_lossy(body)))
        .collect();
    let lost = acked_subjects
        .iter()
        .filter(|s| !delivered.contains_key(*s))
        .count();
    let duplicated: usize = delivered.values().filter(|&&n| n > 1).map(|n| n - 1).sum();
    let unexpected = delivered
        .keys()
        .filter(|s| !acked_subjects.contains(s))
        .count();
    println!(
        "relay crash test: kills={KILLS} clients={CLIENTS} acknowledged={} delivered={} lost={lost} duplicated={duplicated} unexpected={unexpected}",
        acked.len(),
        delivered.len()
    );
    if lost > 0 {
        let events = std::fs::read_to_string(server.data_dir.join("events").join("delivery.jsonl"))
            .unwrap_or_default();
        let mut outcomes: HashMap<String, usize> = HashMap::new();
        for line in events.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                *outcomes
                    .entry(format!("{} {}", v["outcome"], v["response"]))
                    .or_default() += 1;
            }
        }
        println!("events by outcome: {outcomes:#?}");
        println!("sink recorded {} messages", sink.messages().len());
    }
    assert!(acked.len() > 100, "too little traffic: {}", acked.len());
    assert_eq!(lost, 0, "acknowledged messages never delivered");
}
