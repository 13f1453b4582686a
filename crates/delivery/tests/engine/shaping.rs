//! Traffic shaping as the receiving server sees it: connection caps, rates, provider caps,
//! response rules that suspend or throttle a site.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shaping_caps_concurrent_connections_and_messages_per_connection() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(
        &["127.0.0.1"],
        SinkOptions {
            data_delay: 0.05,
            ..Default::default()
        },
        sink_dir.path(),
    );
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.shaping = Shaping::from_files(&[
            "[default]\nconnections_max = 3\nmessages_per_connection = 4\nidle_timeout = \"300ms\"\n",
        ])
        .unwrap();
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(
            rig.submit("sender@senders.test", &[&format!("ok{n}@sink.test")], 0, 0)
                .await,
        );
    }
    for id in &ids {
        rig.wait_gone(*id, Duration::from_secs(20)).await;
    }
    assert_eq!(sink.messages().len(), 30);
    let max = sink.max_concurrent();
    assert!(max <= 3, "at most 3 connections at once, saw {max}");
    assert!(max >= 2, "the backlog used more than one connection");
    let connections = sink.connections();
    assert!(
        connections >= 30 / 4,
        "at most 4 messages per connection: {connections} connections"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_rule_suspends_the_site_until_the_time_is_up() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.shaping = Shaping::from_files(&[
            "[default]\nidle_timeout = \"200ms\"\n[[rules]]\nname = \"volume deferral\"\ncode = \"421\"\npattern = \"TSS04\"\naction = \"suspend\"\nduration = \"1500ms\"\n",
        ])
        .unwrap();
        c.retry.initial = Duration::from_secs(60);
    })
    .await;
    rig.submit("sender@senders.test", &["tss04@sink.test"], 0, 0)
        .await;
    let summary = wait_for(Duration::from_secs(5), || {
        let s = rig.engine.summary();
        s.sites
            .iter()
            .any(|s| s.hold == Some("suspended"))
            .then_some(s)
    })
    .await;
    let suspended_at = Instant::now();
    let site = &summary.sites[0];
    assert_eq!(site.hold_reason.as_deref(), Some("volume deferral"));
    // Mail for the suspended site waits until the suspension ends, then goes.
    let id = rig
        .submit("sender@senders.test", &["ok@sink.test"], 0, 0)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sink.messages().is_empty(), "nothing sent while suspended");
    rig.wait_gone(id, Duration::from_secs(5)).await;
    let waited = suspended_at.elapsed();
    assert!(
        waited >= Duration::from_millis(1300),
        "sent after {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(3500),
        "the suspension ended on time: {waited:?}"
    );
    assert_eq!(sink.messages().len(), 1);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

/// Seconds between the first and last recorded event of a kind at the sink.
fn span(events: &[serde_json::Value], kind: &str) -> f64 {
    let times: Vec<f64> = events
        .iter()
        .filter(|e| e["event"] == kind)
        .filter_map(|e| e["t"].as_f64())
        .collect();
    let (min, max) = times
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
    max - min
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_and_connection_rates_hold_at_the_sink() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.shaping = Shaping::from_files(&[
            "[default]\nmessage_rate = \"10/s\"\nconnection_rate = \"4/s\"\nmessages_per_connection = 2\nidle_timeout = \"200ms\"\n",
        ])
        .unwrap();
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..24 {
        ids.push(
            rig.submit("sender@senders.test", &[&format!("ok{n}@sink.test")], 0, 0)
                .await,
        );
    }
    for id in &ids {
        rig.wait_gone(*id, Duration::from_secs(20)).await;
    }
    let events = sink.events();
    let messages = events.iter().filter(|e| e["event"] == "message").count();
    let connections = events.iter().filter(|e| e["event"] == "connect").count();
    assert_eq!(messages, 24);
    assert!(
        connections >= 12,
        "2 messages per connection: {connections}"
    );
    // 10/s with a burst of 10: 24 messages need at least 1.4 s.
    let message_span = span(&events, "message");
    assert!(
        message_span >= 1.2,
        "messages spread over {message_span:.2} s"
    );
    // 4 connections/s with a burst of 4: 12+ connections need at least 2 s.
    let connect_span = span(&events, "connect");
    assert!(
        connect_span >= 1.8,
        "connections spread over {connect_span:.2} s"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttle_rule_slows_the_site_for_its_duration() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.shaping = Shaping::from_files(&[
            "[default]\nidle_timeout = \"200ms\"\n[[rules]]\nname = \"slow down\"\ncode = \"421\"\npattern = \"TSS04\"\naction = \"throttle\"\nmessage_rate = \"5/s\"\nduration = \"30s\"\n",
        ])
        .unwrap();
        c.retry.initial = Duration::from_secs(60);
    })
    .await;
    rig.submit("sender@senders.test", &["tss04@sink.test"], 0, 0)
        .await;
    let summary = wait_for(Duration::from_secs(5), || {
        let s = rig.engine.summary();
        s.sites.iter().any(|s| s.throttle.is_some()).then_some(s)
    })
    .await;
    assert_eq!(summary.sites[0].throttle.as_deref(), Some("slow down"));
    let started = Instant::now();
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(
            rig.submit("sender@senders.test", &[&format!("ok{n}@sink.test")], 0, 0)
                .await,
        );
    }
    for id in &ids {
        rig.wait_gone(*id, Duration::from_secs(10)).await;
    }
    // 5/s, starting from a drained bucket: 10 messages take well over a second.
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sink.messages().len(), 10);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_cap_holds_across_its_sites() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(
        &["127.0.0.1"],
        SinkOptions {
            data_delay: 0.05,
            ..Default::default()
        },
        sink_dir.path(),
    );
    // Two domains on different MX hosts (two sites) of one provider.
    let dns = start_dns(&[
        Rr::mx("one.test", 10, "mx-a.prov.test"),
        Rr::mx("two.test", 10, "mx-b.prov.test"),
        Rr::a("mx-a.prov.test", "127.0.0.1"),
        Rr::a("mx-b.prov.test", "127.0.0.1"),
    ])
    .await;
    let rig = rig(dns, port, |c| {
        c.shaping = Shaping::from_files(&[
            "[default]\nidle_timeout = \"200ms\"\n[provider.prov]\nmx_suffixes = [\".prov.test\"]\nconnections_max = 5\nprovider_connections_max = 2\n",
        ])
        .unwrap();
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..12 {
        let domain = if n % 2 == 0 { "one.test" } else { "two.test" };
        ids.push(rig.submit("", &[&format!("ok{n}@{domain}")], 0, 0).await);
    }
    for id in &ids {
        rig.wait_gone(*id, Duration::from_secs(20)).await;
    }
    assert_eq!(sink.messages().len(), 12);
    let max = sink.max_concurrent();
    assert!(
        max <= 2,
        "two sites of one provider shared 2 connections, saw {max}"
    );
    let summary = rig.engine.summary();
    assert_eq!(summary.sites.len(), 2);
    assert!(
        summary
            .sites
            .iter()
            .all(|s| s.provider.as_deref() == Some("prov"))
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_share_takes_its_part_of_connections_and_rates() {
    // One node of two: half of 4 connections, half of 20 messages/s.
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(
        &["127.0.0.1"],
        SinkOptions {
            data_delay: 0.05,
            ..Default::default()
        },
        sink_dir.path(),
    );
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.shaping = Shaping::from_files(&[
            "[default]\nconnections_max = 4\nmessage_rate = \"20/s\"\nidle_timeout = \"300ms\"\n",
        ])
        .unwrap();
    })
    .await;
    rig.engine.set_share(shares::Share { rank: 1, count: 2 });
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(
            rig.submit("sender@senders.test", &[&format!("ok{n}@sink.test")], 0, 0)
                .await,
        );
    }
    for id in &ids {
        rig.wait_gone(*id, Duration::from_secs(20)).await;
    }
    let max = sink.max_concurrent();
    assert!(max <= 2, "this node's half of 4 connections, saw {max}");
    // 10/s with a burst of 10: 30 messages need at least 2 s.
    let message_span = span(&sink.events(), "message");
    assert!(
        message_span >= 1.8,
        "messages spread over {message_span:.2} s"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}
