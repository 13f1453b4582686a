//! Connections and their outcomes: next MX, temporary failures, refusals, timeouts, TLS
//! policy, IPv6, pooled and failed connections.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_mx_on_connect_failure_and_temporary_failure_then_success() {
    let sink_dir = tempfile::tempdir().unwrap();
    // The preferred MX (127.0.0.2) has nothing listening; the backup (127.0.0.3) has the sink.
    let (sink, port) = sink_on(&["127.0.0.3"], SinkOptions::default(), sink_dir.path());
    assert!(std::net::TcpStream::connect(("127.0.0.2", port)).is_err());
    let dns = start_dns(&[
        Rr::mx("multi.test", 10, "primary.multi.test"),
        Rr::mx("multi.test", 20, "backup.multi.test"),
        Rr::a("primary.multi.test", "127.0.0.2"),
        Rr::a("backup.multi.test", "127.0.0.3"),
    ])
    .await;
    let rig = rig(dns, port, |_| {}).await;
    let id = rig
        .submit("", &["ok@multi.test", "flaky@multi.test"], 0, 0)
        .await;
    rig.wait_gone(id, Duration::from_secs(10)).await;
    let messages = sink.messages();
    let delivered: Vec<&serde_json::Value> = messages
        .iter()
        .flat_map(|m| m["recipients"].as_array().unwrap())
        .collect();
    assert_eq!(
        delivered.len(),
        2,
        "each recipient exactly once: {messages:?}"
    );
    let events = wait_for(Duration::from_secs(2), || {
        let events = rig.events();
        (events.len() >= 3).then_some(events)
    })
    .await;
    let flaky: Vec<&str> = events
        .iter()
        .filter(|e| e["recipient"] == "flaky@multi.test")
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(flaky, ["deferred", "delivered"]);
    assert!(
        events
            .iter()
            .all(|e| e["remote_host"] == "backup.multi.test")
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_at_connect_defers_and_the_site_backs_off() {
    let sink_dir = tempfile::tempdir().unwrap();
    let greeting = "421 4.3.2 Service shutting down, try later";
    let (sink, port) = sink_on(
        &["127.0.0.1"],
        SinkOptions {
            greeting: Some(greeting.into()),
            ..Default::default()
        },
        sink_dir.path(),
    );
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.retry.initial = Duration::from_secs(60)
    })
    .await;
    let id = rig
        .submit("sender@senders.test", &["ok@sink.test"], 0, 0)
        .await;
    let summary = wait_for(Duration::from_secs(5), || {
        let s = rig.engine.summary();
        (s.deferred_recipients == 1).then_some(s)
    })
    .await;
    let site = summary
        .sites
        .iter()
        .find(|s| s.site == "mx.sink.test")
        .expect("site row");
    assert_eq!(site.hold, Some("backing_off"), "{site:?}");
    assert!(
        site.hold_reason.as_deref().unwrap().contains("421 4.3.2"),
        "{site:?}"
    );
    let domain = &summary.domains[0];
    assert!(
        domain
            .last_error
            .as_deref()
            .unwrap()
            .contains("421 4.3.2 Service shutting down")
    );
    assert!(domain.next_attempt_ms.is_some());
    assert_eq!(rig.pending(id), Some(1), "still queued, not bounced");
    assert!(sink.connections() >= 1);
    assert!(sink.messages().is_empty());
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_waiting_for_the_end_of_data_reply_defers() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (_sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.timeouts.data_dot = Duration::from_millis(800);
        c.retry.initial = Duration::from_secs(60);
    })
    .await;
    let started = Instant::now();
    let id = rig
        .submit("sender@senders.test", &["hang@sink.test"], 0, 0)
        .await;
    let error = wait_for(Duration::from_secs(5), || {
        rig.engine
            .summary()
            .domains
            .first()
            .and_then(|d| d.last_error.clone())
    })
    .await;
    assert!(
        error.starts_with("451 4.4.2") && error.contains("DataDot"),
        "{error}"
    );
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert_eq!(rig.pending(id), Some(1));
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_required_but_not_offered_defers_as_a_tls_failure() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.routing.statics.push(StaticRoute {
            pattern: DomainPattern::parse("secure.test").unwrap(),
            hosts: vec![HostPort {
                host: "127.0.0.1".into(),
                port,
            }],
            tls: Some(TlsPolicy::Required),
            auth: None,
        });
        c.retry.initial = Duration::from_secs(60);
    })
    .await;
    let id = rig
        .submit("sender@senders.test", &["ok@secure.test"], 0, 0)
        .await;
    let events = wait_for(Duration::from_secs(5), || {
        let e = rig.events();
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(events[0]["outcome"], "deferred");
    assert_eq!(events[0]["category"], "tls_failure");
    assert!(
        events[0]["response"]
            .as_str()
            .unwrap()
            .contains("STARTTLS not offered"),
        "{}",
        events[0]
    );
    assert!(sink.messages().is_empty(), "nothing sent in clear text");
    assert_eq!(rig.pending(id), Some(1));
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_closed_by_the_server_is_replaced_without_a_deferral() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.shaping = Shaping::from_files(&["[default]\nidle_timeout = \"30s\"\n"]).unwrap();
    })
    .await;
    let first = rig
        .submit("sender@senders.test", &["ok1@sink.test"], 0, 0)
        .await;
    rig.wait_gone(first, Duration::from_secs(5)).await;
    // The receiving server restarts while our connection to it sits idle.
    drop(sink);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let sink = MxSink::start(
        &[addr],
        &sink_dir.path().join("again"),
        SinkOptions::default(),
    );
    let second = rig
        .submit("sender@senders.test", &["ok2@sink.test"], 0, 0)
        .await;
    rig.wait_gone(second, Duration::from_secs(5)).await;
    assert_eq!(sink.messages().len(), 1);
    let events = wait_for(Duration::from_secs(2), || {
        let e = rig.events();
        (e.len() >= 2).then_some(e)
    })
    .await;
    assert!(
        events
            .iter()
            .all(|e| e["outcome"] == "delivered" && e["attempt"] == 1),
        "no deferral, no attempt counted: {events:?}"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_over_ipv6_to_an_mx_with_only_an_aaaa_record() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["::1"], SinkOptions::default(), sink_dir.path());
    let dns = start_dns(&[
        Rr::mx("six.test", 10, "mx6.six.test"),
        Rr::Aaaa {
            name: "mx6.six.test".into(),
            ip: "::1".parse().unwrap(),
        },
    ])
    .await;
    let rig = rig(dns, port, |_| {}).await;
    let id = rig.submit("", &["ok@six.test"], 0, 0).await;
    rig.wait_gone(id, Duration::from_secs(5)).await;
    assert_eq!(sink.messages().len(), 1);
    let events = wait_for(Duration::from_secs(2), || {
        let e = rig.events();
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(events[0]["remote_ip"], "::1");
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_connection_is_retried_before_the_site_counts_as_down() {
    // Nothing listens yet; the MX comes up after the first failed connection.
    let sink_dir = tempfile::tempdir().unwrap();
    let port = testkit::sink::free_port("127.0.0.1");
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.shaping = Shaping::from_files(&[
            "[default]\nidle_timeout = \"300ms\"\nconnect_failures_max = 3\n",
        ])
        .unwrap();
    })
    .await;
    let id = rig.submit("", &["ok@sink.test"], 0, 0).await;
    // The first attempt has failed: the site exists, no connection is open, the mail waits.
    wait_for(Duration::from_secs(5), || {
        let s = rig.engine.summary();
        s.sites
            .iter()
            .any(|site| site.ready_recipients == 1 && site.connections == 0)
            .then_some(())
    })
    .await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let sink = MxSink::start(&[addr], sink_dir.path(), SinkOptions::default());
    rig.wait_gone(id, Duration::from_secs(5)).await;
    assert_eq!(sink.messages().len(), 1);
    // One waiting message needs one connection, not the site's whole allowance.
    assert_eq!(sink.connections(), 1, "connections opened for one message");
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

/// Many connections opened together to a dead MX fail together: the site backs off once,
/// for the base back-off, not once per failed connection. `retry_now` then lifts the
/// back-off, so the mail goes as soon as the MX is back, not after the back-off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_connection_failures_back_off_once_and_retry_lifts_the_back_off() {
    let sink_dir = tempfile::tempdir().unwrap();
    let port = testkit::sink::free_port("127.0.0.1");
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.shaping = Shaping::from_files(&[
            "[default]\nidle_timeout = \"300ms\"\nconnections_max = 8\nconnect_failures_max = 2\nbackoff = \"60s\"\nbackoff_max = \"1h\"\n",
        ])
        .unwrap();
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(rig.submit("", &[&format!("user{i}@sink.test")], 0, 0).await);
    }
    let started = Instant::now();
    let until_ms = wait_for(Duration::from_secs(10), || {
        let s = rig.engine.summary();
        s.sites
            .iter()
            // The whole burst has failed: no connection is still trying.
            .find(|site| site.hold == Some("backing_off") && site.connections == 0)
            .and_then(|site| site.hold_until_ms)
    })
    .await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let held_for = Duration::from_millis(until_ms.saturating_sub(now_ms)) + started.elapsed();
    assert!(
        held_for <= Duration::from_secs(61),
        "one burst of failures backed off for {held_for:?}, not the base 60 s"
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let sink = MxSink::start(&[addr], sink_dir.path(), SinkOptions::default());
    let retried = rig.engine.retry_now(&delivery::queue::Filter::default());
    assert_eq!(retried, 40, "every held recipient is retried and counted");
    for id in ids {
        rig.wait_gone(id, Duration::from_secs(10)).await;
    }
    assert_eq!(sink.messages().len(), 40);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

/// An address literal (RFC 5321 §4.1.3) names the host to deliver to: no MX lookup, no
/// DNS at all (the test DNS has no record for anything here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_literals_are_delivered_to_the_named_host() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.4"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |_| {}).await;
    let id = rig.submit("", &["someone@[127.0.0.4]"], 0, 0).await;
    rig.wait_gone(id, Duration::from_secs(10)).await;
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["recipients"][0], "someone@[127.0.0.4]");
    let events = wait_for(Duration::from_secs(2), || {
        let events = rig.events();
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events[0]["outcome"], "delivered", "{events:?}");
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

/// A stored message with a line over 998 octets (a record from before the ingress
/// re-encoded such mail, or a bounce quoting one) still reaches aiosmtpd, which refuses
/// longer lines: the line goes out broken with CRLF and a space.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_long_lines_are_broken_on_the_way_out() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |_| {}).await;
    let id = rig.spool.next_id();
    let envelope = envelope_to("a@senders.test", "b@sink.test");
    let long = "y".repeat(2500);
    let content = format!("Subject: long\r\n\r\n{long}\r\n");
    rig.spool
        .insert(id, envelope, content.into_bytes())
        .await
        .expect("insert");
    rig.wait_gone(id, Duration::from_secs(10)).await;
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let delivered = messages[0]["content"].as_str().expect("content");
    assert!(
        delivered.split("\r\n").all(|l| l.len() <= 998),
        "{delivered}"
    );
    assert!(delivered.replace("\r\n ", "").contains(&long));
    rig.engine.shutdown(Duration::from_secs(5)).await;
}
