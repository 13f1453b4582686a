//! Bounces and other reports: per-recipient outcomes with one DSN, expiry, null MX,
//! relayed and delayed reports.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_over_starttls_with_per_recipient_outcomes_and_one_dsn() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(
        &["127.0.0.1"],
        SinkOptions {
            tls: true,
            ..Default::default()
        },
        sink_dir.path(),
    );
    let rig = rig(start_dns(&[]).await, port, |_| {}).await;

    let id = rig
        .submit(
            "sender@senders.test",
            &[
                "ok@sink.test",
                "reject@sink.test",
                "full@sink.test",
                "defer@sink.test",
            ],
            0,
            0,
        )
        .await;
    // ok is delivered, reject and full bounce in one DSN, defer stays queued.
    let messages = sink.wait_messages(2, Duration::from_secs(10));
    assert_eq!(messages.len(), 2, "{messages:?}");
    let original = messages
        .iter()
        .find(|m| m["sender"] == "sender@senders.test")
        .expect("original");
    assert_eq!(original["recipients"], serde_json::json!(["ok@sink.test"]));
    assert_eq!(original["tls"], true, "opportunistic STARTTLS used");
    assert!(
        original["content"]
            .as_str()
            .unwrap()
            .contains("\r\n.leading dot\r\n"),
        "dot-stuffing undone by the receiver"
    );
    let dsn = messages
        .iter()
        .find(|m| m["sender"] == "<>")
        .unwrap_or_else(|| panic!("a DSN from the null sender: {messages:#?}"));
    assert_eq!(
        dsn["recipients"],
        serde_json::json!(["sender@senders.test"])
    );
    let content = dsn["content"].as_str().unwrap();
    assert!(content.contains("Content-Type: multipart/report; report-type=delivery-status"));
    assert!(content.contains("Original-Envelope-Id: ENV-42"));
    assert!(
        content.contains("Content-Type: text/rfc822-headers"),
        "headers only without RET=FULL"
    );
    assert!(content.contains(&format!("Subject: engine test {id}")));
    assert!(!content.contains("Hello."), "no body without RET=FULL");
    let rcpts = dsn_recipient_fields(content);
    assert_eq!(rcpts.len(), 2, "{rcpts:?}");
    let reject = rcpts
        .iter()
        .find(|f| field(f, "Final-Recipient") == Some("rfc822; reject@sink.test"))
        .expect("reject reported");
    assert_eq!(field(reject, "Action"), Some("failed"));
    assert_eq!(field(reject, "Status"), Some("5.1.1"));
    assert_eq!(
        field(reject, "Original-Recipient"),
        Some("rfc822;reject@sink.test")
    );
    assert_eq!(field(reject, "Remote-MTA"), Some("dns; mx.sink.test"));
    assert!(
        field(reject, "Diagnostic-Code")
            .unwrap()
            .contains("550 5.1.1 No such user")
    );
    let full = rcpts
        .iter()
        .find(|f| field(f, "Final-Recipient") == Some("rfc822; full@sink.test"))
        .expect("full reported");
    assert_eq!(field(full, "Status"), Some("5.2.2"));

    // The deferred recipient stays in the spool and in the queue view with its error.
    let pending = wait_for(Duration::from_secs(5), || {
        rig.pending(id).filter(|&p| p == 1)
    })
    .await;
    assert_eq!(pending, 1);
    let summary = rig.engine.summary();
    let domain = summary
        .domains
        .iter()
        .find(|d| d.domain == "sink.test")
        .expect("domain row");
    assert_eq!(domain.deferred_recipients + domain.ready_recipients, 1);
    assert!(
        domain
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("451 4.3.0"),
        "{domain:?}"
    );

    let events = wait_for(Duration::from_secs(2), || {
        let events = rig.events();
        (events.len() >= 4).then_some(events)
    })
    .await;
    let outcome = |who: &str| {
        events.iter().find(|e| e["recipient"] == who).map(|e| {
            (
                e["outcome"].as_str().unwrap().to_string(),
                e["category"].clone(),
            )
        })
    };
    assert_eq!(outcome("ok@sink.test").unwrap().0, "delivered");
    assert_eq!(
        outcome("reject@sink.test").unwrap(),
        ("bounced".into(), serde_json::json!("invalid_recipient"))
    );
    assert_eq!(
        outcome("full@sink.test").unwrap(),
        ("bounced".into(), serde_json::json!("mailbox_full"))
    );
    assert_eq!(outcome("defer@sink.test").unwrap().0, "deferred");
    let delivered = events.iter().find(|e| e["outcome"] == "delivered").unwrap();
    assert_eq!(delivered["remote_host"], "mx.sink.test");
    assert_eq!(delivered["remote_ip"], "127.0.0.1");
    assert!(
        delivered["tls"]
            .as_str()
            .unwrap_or("")
            .starts_with("TLSv1_"),
        "{delivered}"
    );
    assert!(
        rig.engine.attempts(id).len() >= 2,
        "attempt history kept while queued"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_bounces_with_4_4_7_and_the_full_message_when_asked() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.retry.initial = Duration::from_millis(300);
        c.retry.max_age = Duration::from_millis(1500);
    })
    .await;
    // NOTIFY=FAILURE (2), RET=FULL (1).
    let id = rig
        .submit("sender@senders.test", &["defer@sink.test"], 2, 1)
        .await;
    rig.wait_gone(id, Duration::from_secs(10)).await;
    let messages = sink.wait_messages(1, Duration::from_secs(5));
    let dsn = messages
        .iter()
        .find(|m| m["sender"] == "<>")
        .expect("expiry DSN");
    let content = dsn["content"].as_str().unwrap();
    let rcpts = dsn_recipient_fields(content);
    assert_eq!(rcpts.len(), 1);
    assert_eq!(field(&rcpts[0], "Action"), Some("failed"));
    assert_eq!(field(&rcpts[0], "Status"), Some("4.4.7"));
    let diagnostic = field(&rcpts[0], "Diagnostic-Code").unwrap();
    assert!(
        diagnostic.contains("expired") && diagnostic.contains("451 4.3.0 Try again later"),
        "{diagnostic}"
    );
    assert!(
        content.contains("Content-Type: message/rfc822"),
        "RET=FULL returns the message"
    );
    assert!(content.contains("Hello.\r\n"));
    let events = wait_for(Duration::from_secs(2), || {
        let e = rig.events();
        e.iter().any(|e| e["outcome"] == "expired").then_some(e)
    })
    .await;
    let deferrals = events.iter().filter(|e| e["outcome"] == "deferred").count();
    assert!(deferrals >= 2, "retried before expiring: {events:?}");
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_mx_bounces_at_once_and_never_bounces_a_bounce() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let dns = start_dns(&[Rr::NullMx {
        name: "nomail.test".into(),
    }])
    .await;
    let rig = rig(dns, port, |_| {}).await;
    let id = rig
        .submit("sender@senders.test", &["someone@nomail.test"], 0, 0)
        .await;
    // From the null sender: must vanish without a DSN.
    let bounce = rig.submit("", &["other@nomail.test"], 0, 0).await;
    rig.wait_gone(id, Duration::from_secs(5)).await;
    rig.wait_gone(bounce, Duration::from_secs(5)).await;
    let messages = sink.wait_messages(1, Duration::from_secs(5));
    assert_eq!(
        messages.len(),
        1,
        "one DSN, for the message with a sender: {messages:?}"
    );
    let rcpts = dsn_recipient_fields(messages[0]["content"].as_str().unwrap());
    assert_eq!(field(&rcpts[0], "Status"), Some("5.1.10"));
    assert_eq!(
        field(&rcpts[0], "Final-Recipient"),
        Some("rfc822; someone@nomail.test")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 1);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_success_to_a_server_without_dsn_gets_a_relayed_report() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |_| {}).await;
    // NOTIFY=SUCCESS,FAILURE (3); aiosmtpd does not offer DSN, so we must report.
    let id = rig
        .submit("sender@senders.test", &["ok@sink.test"], 3, 0)
        .await;
    rig.wait_gone(id, Duration::from_secs(5)).await;
    let messages = sink.wait_messages(2, Duration::from_secs(5));
    let report = messages
        .iter()
        .find(|m| m["sender"] == "<>")
        .expect("success report");
    let rcpts = dsn_recipient_fields(report["content"].as_str().unwrap());
    assert_eq!(field(&rcpts[0], "Action"), Some("relayed"));
    assert_eq!(field(&rcpts[0], "Status"), Some("2.0.0"));
    // Without NOTIFY=SUCCESS nothing is reported.
    let quiet = rig
        .submit("sender@senders.test", &["ok2@sink.test"], 0, 0)
        .await;
    rig.wait_gone(quiet, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 3);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_delay_warning_for_recipients_that_asked() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (sink, port) = sink_on(&["127.0.0.1"], SinkOptions::default(), sink_dir.path());
    let rig = rig(start_dns(&[]).await, port, |c| {
        c.delay_warning = Some(Duration::from_millis(500));
        c.retry.initial = Duration::from_millis(300);
        c.retry.factor = 1.0;
    })
    .await;
    // NOTIFY=DELAY,FAILURE (6) gets a warning; NOTIFY=FAILURE (2) does not.
    let warned = rig
        .submit("sender@senders.test", &["defer1@sink.test"], 6, 0)
        .await;
    let silent = rig
        .submit("sender@senders.test", &["defer2@sink.test"], 2, 0)
        .await;
    let messages = sink.wait_messages(1, Duration::from_secs(5));
    // Several more retries pass: still exactly one warning.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let messages_later = sink.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages_later.len(), 1, "one warning only");
    let content = messages[0]["content"].as_str().unwrap();
    assert!(content.contains("Subject: Delayed Mail (still being retried)"));
    let rcpts = dsn_recipient_fields(content);
    assert_eq!(rcpts.len(), 1);
    assert_eq!(field(&rcpts[0], "Action"), Some("delayed"));
    assert_eq!(
        field(&rcpts[0], "Final-Recipient"),
        Some("rfc822; defer1@sink.test")
    );
    assert_eq!(field(&rcpts[0], "Status"), Some("4.3.0"));
    assert_eq!(
        rig.pending(warned),
        Some(1),
        "still queued after the warning"
    );
    assert_eq!(rig.pending(silent), Some(1));
    rig.engine.shutdown(Duration::from_secs(5)).await;
}
