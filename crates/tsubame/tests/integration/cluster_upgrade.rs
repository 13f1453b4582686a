//! A rolling upgrade of three nodes under load: behind HAProxy, four clients send the whole
//! time while each node in turn is drained (`tsubame node drain`: it fails its health check,
//! stops accepting, finishes its deliveries, hands what is queued to another node and exits)
//! and started again from its data directory, as after installing a new binary. Accounted at
//! the end: nothing acknowledged lost, nothing delivered twice, nothing delivered that was
//! not acknowledged; the longest pause between acknowledgements around each drain.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use testkit::sink::SinkOptions;

use crate::cluster::{rig_with, subject_of};
use crate::cluster_drill::{CLIENTS, start_clients, three_behind_haproxy};

#[test]
fn a_rolling_upgrade_of_three_nodes_under_load_loses_and_duplicates_nothing() {
    // The MX takes 20 ms per message: each node always has deliveries in flight.
    let rig = rig_with(SinkOptions {
        data_delay: 0.02,
        ..SinkOptions::default()
    });
    let (mut nodes, haproxy) = three_behind_haproxy(&rig);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = start_clients(&haproxy, 200, &stop);
    let mut drains = Vec::new();
    for node in nodes.iter_mut() {
        std::thread::sleep(Duration::from_millis(1500));
        let at = Instant::now();
        node.cli(&["node", "drain"]);
        let status = node.terminate(Duration::from_secs(60));
        assert!(status.success(), "{status}: {}", node.log_text());
        let drained = at.elapsed();
        // The new binary starts on the same data directory.
        node.spawn(&[]);
        drains.push((at, drained, at.elapsed()));
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<(String, Vec<u8>, Instant)> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect();
    let subjects: Vec<String> = acked
        .iter()
        .filter_map(|(_, body, _)| subject_of(&String::from_utf8_lossy(body)))
        .collect();
    rig.wait_delivered(&subjects, Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(2));
    let delivered: HashMap<String, usize> = rig.delivered();
    let lost = subjects
        .iter()
        .filter(|s| !delivered.contains_key(*s))
        .count();
    let duplicated: usize = delivered.values().map(|n| n - 1).sum();
    let unexpected = delivered.keys().filter(|s| !subjects.contains(s)).count();
    let mut times: Vec<Instant> = acked.iter().map(|(_, _, at)| *at).collect();
    times.sort();
    for (i, (at, drained, back)) in drains.iter().enumerate() {
        let pause = times
            .windows(2)
            .filter(|w| w[1] > *at && w[0] < *at + *back)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        println!(
            "rolling upgrade: node {i} drained in {:.2}s, up again after {:.2}s; longest ack pause meanwhile {:.2}s",
            drained.as_secs_f64(),
            back.as_secs_f64(),
            pause.as_secs_f64()
        );
    }
    println!(
        "rolling upgrade: clients={CLIENTS} acknowledged={} delivered={} lost={lost} duplicated={duplicated} unexpected={unexpected}",
        subjects.len(),
        delivered.len()
    );
    assert!(
        subjects.len() > 100,
        "too little traffic: {}",
        subjects.len()
    );
    assert_eq!(lost, 0, "acknowledged messages never delivered");
    assert_eq!(
        duplicated, 0,
        "a drain finishes its deliveries: nothing twice"
    );
    assert_eq!(unexpected, 0, "delivered though never acknowledged");
    drop(haproxy);
}
