//! Fault drill: three nodes (cluster timing as shipped: dead after 3 s) behind HAProxy on a
//! three-server JetStream cluster; four clients send through HAProxy the whole time while the
//! nodes are SIGKILLed in turn and restarted a few seconds later.
//!
//! Accounted at the end: acknowledged vs delivered: lost (must be 0), duplicated (deliveries
//! in flight at a kill, sent again by the node that took over), unexpected (stored but the
//! 250 never reached the client). Per kill: the longest pause between acknowledgements
//! around it (clients of the dead node reconnect through HAProxy), and how long after the
//! kill the dead node's queue was delivered by the others.
//!
//! `TSUBAME_DRILL_KILLS` sets the number of kills (3 by default; scripts/bench-cluster-drill
//! runs 30 and records the figures).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use testkit::haproxy::{Backend, Haproxy};
use testkit::sink::SinkOptions;

use crate::cluster::{rig_with, subject_of};
use crate::crash::client_loop_timed;
use crate::harness::TestServer;

const CLIENTS: usize = 4;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

struct Kill {
    node: usize,
    at: Instant,
    /// Messages the node held when it died.
    held: usize,
    /// Seconds from the kill until the last of them reached the MX.
    delivered_after: Option<f64>,
}

#[test]
fn nodes_killed_in_turn_under_load_lose_no_acknowledged_mail() {
    let kills: usize = std::env::var("TSUBAME_DRILL_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(3);
    // The MX takes 20 ms per message: each node always has deliveries in flight.
    let rig = rig_with(SinkOptions {
        data_delay: 0.02,
        ..SinkOptions::default()
    });
    let mut nodes: Vec<TestServer> = ["a", "b", "c"]
        .iter()
        .map(|name| rig.node_with(name, ""))
        .collect();
    let backends: Vec<Backend> = nodes
        .iter()
        .map(|n| Backend {
            smtp: n.smtp,
            http_port: n.http.port(),
        })
        .collect();
    let haproxy = Haproxy::start(&backends);

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addr, stop) = (haproxy.addr, stop.clone());
            std::thread::spawn(move || client_loop_timed(addr, 100 + c, stop, "r@dest.test"))
        })
        .collect();
    let mut record = Vec::new();
    for k in 0..kills {
        std::thread::sleep(Duration::from_millis(1500));
        let victim = k % nodes.len();
        let held: Vec<String> = nodes[victim].queued_ids();
        let (at, at_unix) = (Instant::now(), unix_now());
        nodes[victim].kill9();
        // The others take its queue over; watch the MX for the last of it.
        let deadline = Instant::now() + Duration::from_secs(30);
        let delivered_after = loop {
            let last = last_delivery(&rig.sink.messages(), &held);
            if let Some(last) = last {
                break Some(last - at_unix);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        record.push(Kill {
            node: victim,
            at,
            held: held.len(),
            delivered_after,
        });
        nodes[victim].spawn(&[]);
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let mut acked: Vec<(String, Vec<u8>, Instant)> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect();
    acked.sort_by_key(|(_, _, at)| *at);
    let subjects: Vec<String> = acked
        .iter()
        .filter_map(|(_, body, _)| subject_of(&String::from_utf8_lossy(body)))
        .collect();
    rig.wait_delivered(&subjects, Duration::from_secs(120));

    let delivered: HashMap<String, usize> = rig.delivered();
    let lost = subjects
        .iter()
        .filter(|s| !delivered.contains_key(*s))
        .count();
    let duplicated: usize = delivered.values().map(|n| n - 1).sum();
    let unexpected = delivered.keys().filter(|s| !subjects.contains(s)).count();
    let times: Vec<Instant> = acked.iter().map(|(_, _, at)| *at).collect();
    for kill in &record {
        let pause = longest_gap(&times, kill.at, Duration::from_secs(5));
        println!(
            "drill kill of node {}: held {} messages; longest ack pause after the kill {:.2}s; its queue delivered by the others {}",
            kill.node,
            kill.held,
            pause.as_secs_f64(),
            kill.delivered_after
                .map_or("never (within 30 s)".to_string(), |s| format!(
                    "{s:.2}s after the kill"
                )),
        );
    }
    let worst_pause = record
        .iter()
        .map(|k| longest_gap(&times, k.at, Duration::from_secs(5)))
        .max()
        .unwrap_or_default();
    let worst_takeover = record
        .iter()
        .filter_map(|k| k.delivered_after)
        .fold(0.0f64, f64::max);
    println!(
        "cluster drill: kills={kills} clients={CLIENTS} acknowledged={} delivered={} lost={lost} duplicated={duplicated} unexpected={unexpected} worst_ack_pause={:.2}s worst_takeover_delivered={worst_takeover:.2}s",
        subjects.len(),
        delivered.len(),
        worst_pause.as_secs_f64()
    );
    assert!(
        subjects.len() > 100,
        "too little traffic: {}",
        subjects.len()
    );
    assert_eq!(lost, 0, "acknowledged messages never delivered");
    for kill in &record {
        assert!(
            kill.delivered_after.is_some(),
            "node {}'s queue was not delivered by the others",
            kill.node
        );
    }
    drop(haproxy);
}

/// The latest MX arrival time (Unix seconds) among messages with one of `ids` (their
/// Received header names the queue id); None until every one of them arrived.
fn last_delivery(messages: &[serde_json::Value], ids: &[String]) -> Option<f64> {
    let mut arrivals: HashMap<&str, f64> = HashMap::new();
    for message in messages {
        let (Some(content), Some(t)) = (message["content"].as_str(), message["t"].as_f64()) else {
            continue;
        };
        let Some(at) = content.find("(tsubame) with ") else {
            continue;
        };
        let rest = &content[at..];
        let Some(start) = rest.find(" id ").map(|i| i + 4) else {
            continue;
        };
        let id = rest[start..].split_whitespace().next().unwrap_or("");
        let entry = arrivals.entry(id).or_insert(t);
        *entry = entry.max(t);
    }
    ids.iter()
        .map(|id| arrivals.get(id.as_str()).copied())
        .try_fold(0.0f64, |last, t| Some(last.max(t?)))
}

/// The longest time without an acknowledgement in `[from, from + window]`.
fn longest_gap(times: &[Instant], from: Instant, window: Duration) -> Duration {
    let end = from + window;
    let mut previous = from;
    let mut longest = Duration::ZERO;
    for &t in times.iter().filter(|t| **t > from && **t <= end) {
        longest = longest.max(t - previous);
        previous = t;
    }
    longest.max(end.min(Instant::now()).saturating_duration_since(previous))
}
