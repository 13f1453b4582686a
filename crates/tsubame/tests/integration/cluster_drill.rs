//! Fault drill: three nodes (cluster timing as shipped: dead after 3 s) behind HAProxy on a
//! three-server JetStream cluster; four clients send through HAProxy the whole time while the
//! nodes are SIGKILLed in turn and restarted a few seconds later. Between kills, a spool
//! server is SIGKILLed and restarted, and a node is frozen (SIGSTOP) past `dead_after`, as a
//! node cut off by a partition: the others take its queue over, and when it thaws it finds
//! its heartbeat refused and exits, to be started again.
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

pub(crate) const CLIENTS: usize = 4;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// SIGKILL of a tsubame node.
    Kill,
    /// SIGSTOP of a tsubame node for 5 s.
    Freeze,
    /// SIGKILL of a spool server (JetStream), restarted 2 s later.
    SpoolServer,
}

struct Kill {
    fault: Fault,
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
    let mut rig = rig_with(SinkOptions {
        data_delay: 0.02,
        ..SinkOptions::default()
    });
    let (mut nodes, haproxy) = three_behind_haproxy(&rig);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = start_clients(&haproxy, 100, &stop);
    let mut record = Vec::new();
    let mut spool_server_kills = 0;
    for k in 0..kills {
        for fault in [Fault::Kill, Fault::Freeze] {
            // Every third kill is followed by a freeze of the next node.
            if fault == Fault::Freeze && k % 3 != 1 {
                continue;
            }
            std::thread::sleep(Duration::from_millis(1500));
            let victim = (k + usize::from(fault == Fault::Freeze)) % nodes.len();
            for node in nodes.iter_mut() {
                if let Some(status) = node.wait_exit(Duration::ZERO) {
                    panic!(
                        "a node exited by itself ({status}) before fault {k}:\n{}",
                        crate::cluster::plain(&node.log_text())
                    );
                }
            }
            let held: Vec<String> = nodes[victim].queued_ids();
            let (at, at_unix) = (Instant::now(), unix_now());
            match fault {
                Fault::Kill => nodes[victim].kill9(),
                Fault::Freeze | Fault::SpoolServer => nodes[victim].signal(libc::SIGSTOP),
            }
            // The others take its queue over; watch the MX for the last of it.
            let deadline = Instant::now() + Duration::from_secs(30);
            let delivered_after = loop {
                if held.is_empty() {
                    break Some(0.0);
                }
                if let Some(last) = last_delivery(&rig.sink.messages(), &held) {
                    break Some(last - at_unix);
                }
                if Instant::now() > deadline {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            record.push(Kill {
                fault,
                node: victim,
                at,
                held: held.len(),
                delivered_after,
            });
            if fault == Fault::Freeze {
                if let Some(left) =
                    (at + Duration::from_secs(5)).checked_duration_since(Instant::now())
                {
                    std::thread::sleep(left);
                }
                nodes[victim].signal(libc::SIGCONT);
                let exit = nodes[victim].wait_exit(Duration::from_secs(10));
                assert!(
                    exit.is_some_and(|status| !status.success()),
                    "a thawed node whose queue was taken over must exit: {exit:?}"
                );
            }
            let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                nodes[victim].spawn(&[]);
            }));
            if let Err(panic) = started {
                print_notable(&nodes);
                std::panic::resume_unwind(panic);
            }
        }
        // Every third kill is followed by one of a spool server (killed, back 2 s later).
        if k % 3 == 2 {
            let server = (k / 3) % rig.nats.len();
            record.push(Kill {
                fault: Fault::SpoolServer,
                node: server,
                at: Instant::now(),
                held: 0,
                delivered_after: None,
            });
            rig.nats.kill(server);
            std::thread::sleep(Duration::from_secs(2));
            rig.nats.restart(server);
            spool_server_kills += 1;
        }
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
            "drill {:?} of {} {}: held {} messages; longest ack pause after it {:.2}s; its queue delivered by the others {}",
            kill.fault,
            if kill.fault == Fault::SpoolServer {
                "spool server"
            } else {
                "node"
            },
            kill.node,
            kill.held,
            pause.as_secs_f64(),
            match (kill.fault, kill.delivered_after) {
                (Fault::SpoolServer, _) => "n/a (a spool server: nothing to take over)".to_string(),
                (_, Some(s)) => format!("{s:.2}s after the fault"),
                (_, None) => "never (within 30 s)".to_string(),
            },
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
        "cluster drill: kills={kills} freezes={} spool_server_kills={spool_server_kills} clients={CLIENTS} acknowledged={} delivered={} lost={lost} duplicated={duplicated} unexpected={unexpected} worst_ack_pause={:.2}s worst_takeover_delivered={worst_takeover:.2}s",
        record.iter().filter(|k| k.fault == Fault::Freeze).count(),
        subjects.len(),
        delivered.len(),
        worst_pause.as_secs_f64()
    );
    if lost > 0
        || record
            .iter()
            .any(|k| k.fault != Fault::SpoolServer && k.delivered_after.is_none())
    {
        print_notable(&nodes);
    }
    assert!(
        subjects.len() > 100,
        "too little traffic: {}",
        subjects.len()
    );
    assert_eq!(lost, 0, "acknowledged messages never delivered");
    for kill in record.iter().filter(|k| k.fault != Fault::SpoolServer) {
        assert!(
            kill.delivered_after.is_some(),
            "node {}'s queue was not delivered by the others",
            kill.node
        );
    }
    drop(haproxy);
}

/// Nodes a, b and c (cluster timing as shipped) behind HAProxy.
pub(crate) fn three_behind_haproxy(rig: &crate::cluster::Rig) -> (Vec<TestServer>, Haproxy) {
    let nodes: Vec<TestServer> = ["a", "b", "c"]
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
    (nodes, haproxy)
}

/// What each client acknowledged: queue id, message, when.
pub(crate) type Acked = Vec<(String, Vec<u8>, Instant)>;

/// `CLIENTS` clients sending through HAProxy until `stop` (client numbers from `first`).
pub(crate) fn start_clients(
    haproxy: &Haproxy,
    first: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Acked>> {
    (0..CLIENTS)
        .map(|c| {
            let (addr, stop) = (haproxy.addr, stop.clone());
            std::thread::spawn(move || client_loop_timed(addr, first + c, stop, "r@dest.test"))
        })
        .collect()
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

/// Every node's warnings, errors, takeovers and joins (when something went wrong).
fn print_notable(nodes: &[TestServer]) {
    for (i, node) in nodes.iter().enumerate() {
        let log = crate::cluster::plain(&node.log_text());
        let notable: Vec<&str> = log
            .lines()
            .filter(|l| {
                [
                    " WARN ",
                    " ERROR ",
                    "taking over",
                    "took over",
                    "joined",
                    "waiting",
                ]
                .iter()
                .any(|m| l.contains(m))
            })
            .collect();
        println!("node {i} warnings and takeovers:\n{}", notable.join("\n"));
    }
}
