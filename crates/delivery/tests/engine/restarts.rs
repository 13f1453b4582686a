//! Restarts and faults: the retry schedule across a restart, a poisoned spool.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_retry_schedule_and_attempt_count() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (_sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let mut rig = rig(start_dns(&[]).await, port, |c| {
        c.retry.initial = Duration::from_secs(2);
    })
    .await;
    let id = rig
        .submit("sender@senders.test", &["flaky@sink.test"], 0, 0)
        .await;
    let first = wait_for(Duration::from_secs(5), || {
        rig.engine
            .summary()
            .domains
            .first()
            .and_then(|d| d.next_attempt_ms)
    })
    .await;
    // Wait until the schedule is on disk (it is written after the deferral is settled).
    wait_for(Duration::from_secs(5), || {
        rig.spool
            .list(None, 10)
            .first()
            .filter(|m| m.attempts == 1)
            .map(|_| ())
    })
    .await;
    rig.restart().await;
    // Still on the timer after the restart, for the same time, not retried at once.
    let domain = wait_for(Duration::from_secs(2), || {
        rig.engine
            .summary()
            .domains
            .into_iter()
            .find(|d| d.deferred_recipients == 1)
    })
    .await;
    let next = domain.next_attempt_ms.expect("next attempt");
    assert!(
        next.abs_diff(first) < 50,
        "schedule kept: {next} vs {first}"
    );
    assert_eq!(rig.pending(id), Some(1));
    // flaky@ is accepted on the second try, which is attempt 2 after the restart.
    rig.wait_gone(id, Duration::from_secs(10)).await;
    let events = wait_for(Duration::from_secs(2), || {
        let e = rig.events();
        e.iter().any(|e| e["outcome"] == "delivered").then_some(e)
    })
    .await;
    let delivered = events.iter().find(|e| e["outcome"] == "delivered").unwrap();
    assert_eq!(
        delivered["attempt"], 2,
        "attempt count carried over the restart"
    );
    let delay = delivered["time_ms"].as_u64().unwrap().saturating_sub(first);
    assert!(
        delay < 1000,
        "retried when scheduled, not later: {delay} ms"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_spool_stops_delivery() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |_| {}).await;
    // Route the site first, and hold it, so the next message waits in its queue.
    let first = rig
        .submit("sender@senders.test", &["ok1@sink.test"], 0, 0)
        .await;
    rig.wait_gone(first, Duration::from_secs(5)).await;
    assert!(rig.engine.set_site_paused("mx.sink.test", true));
    let waiting = rig
        .submit("sender@senders.test", &["ok2@sink.test"], 0, 0)
        .await;
    wait_for(Duration::from_secs(5), || {
        (rig.engine.summary().ready_recipients == 1).then_some(())
    })
    .await;
    // The disk dies: the next write fails and poisons the spool.
    rig.spool.fail_fsyncs();
    let doomed = rig.spool.next_id();
    let envelope = envelope_to("", "x@sink.test");
    assert!(
        rig.spool
            .insert(doomed, envelope, b"x\r\n".to_vec())
            .await
            .is_err()
    );
    assert!(rig.spool.is_poisoned());
    // Resuming the site opens no connection: the outcome could not be recorded.
    assert!(rig.engine.set_site_paused("mx.sink.test", false));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        sink.messages().len(),
        1,
        "only the message sent before the fault"
    );
    assert_eq!(
        rig.pending(waiting),
        Some(1),
        "still queued for after the restart"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_engine_starts_nothing_until_it_is_back() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |_| {}).await;
    let first = rig
        .submit("sender@senders.test", &["ok1@sink.test"], 0, 0)
        .await;
    rig.wait_gone(first, Duration::from_secs(5)).await;
    // Out of touch with the cluster: a new message and the idle connection both wait.
    rig.engine.set_fenced(true);
    let waiting = rig
        .submit("sender@senders.test", &["ok2@sink.test"], 0, 0)
        .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(sink.messages().len(), 1, "nothing sent while fenced");
    assert_eq!(rig.pending(waiting), Some(1));
    // Back: delivered.
    rig.engine.set_fenced(false);
    rig.wait_gone(waiting, Duration::from_secs(5)).await;
    assert_eq!(sink.messages().len(), 2);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_starts_nothing_until_it_is_extended() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |_| {}).await;
    rig.engine
        .extend_lease(std::time::Instant::now() + Duration::from_millis(600));
    let first = rig
        .submit("sender@senders.test", &["ok1@sink.test"], 0, 0)
        .await;
    rig.wait_gone(first, Duration::from_secs(5)).await;
    // The lease runs out (as if the process had been frozen past its heartbeats).
    tokio::time::sleep(Duration::from_millis(700)).await;
    let waiting = rig
        .submit("sender@senders.test", &["ok2@sink.test"], 0, 0)
        .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        sink.messages().len(),
        1,
        "nothing started on an expired lease"
    );
    assert_eq!(rig.pending(waiting), Some(1));
    rig.engine
        .extend_lease(std::time::Instant::now() + Duration::from_secs(30));
    rig.wait_gone(waiting, Duration::from_secs(5)).await;
    assert_eq!(sink.messages().len(), 2);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}
