//! Events, suppressions and webhooks: the same answers from both stores.

use store::ControlStore;
use store::events::{EventFilter, EventKind, EventStore, NewEvent, WebhookDelivery};
use store::rollups::Resolution;

fn event(tenant: &str, time_ms: i64, kind: EventKind, recipient: &str) -> NewEvent {
    NewEvent {
        tenant_id: tenant.to_string(),
        time_ms,
        kind,
        message_id: format!("m{time_ms}"),
        recipient: recipient.to_string(),
        custom_id: None,
        tags: None,
        detail: None,
    }
}

pub async fn events_are_listed_by_filter_tag_and_tenant<S: ControlStore + EventStore>(store: &S) {
    let a = store.add_tenant("a").await.unwrap().id;
    let b = store.add_tenant("b").await.unwrap().id;
    let mut batch = Vec::new();
    for n in 0..10i64 {
        let mut e = event(
            &a,
            1_000 + n,
            if n % 2 == 0 {
                EventKind::Accepted
            } else {
                EventKind::Delivered
            },
            &format!("User{n}@Example.com"),
        );
        e.custom_id = (n == 3).then(|| "order-3".to_string());
        e.tags = (n % 3 == 0).then(|| r#"["welcome","q4"]"#.to_string());
        e.detail = Some(format!(
            r#"{{"queued_ms":{},"sending_domain":"a.test"}}"#,
            n * 10
        ));
        batch.push(e);
    }
    batch.push(event(&b, 1_005, EventKind::Bounced, "x@example.net"));
    store.add_events(&batch).await.unwrap();
    store
        .add_events(&[event(&a, 2_000, EventKind::Opened, "user1@example.com")])
        .await
        .unwrap();

    let tenant = a.as_str();
    let all = |filter: EventFilter| async move {
        store
            .events(
                tenant,
                &EventFilter {
                    limit: 100,
                    ..filter
                },
            )
            .await
            .unwrap()
    };
    let listed = all(EventFilter::default()).await;
    assert_eq!(listed.len(), 11, "b's event is not a's");
    assert!(
        listed.windows(2).all(|w| w[0].id < w[1].id),
        "oldest first by id"
    );
    assert_eq!(
        listed[1].event.recipient, "user1@example.com",
        "lower-cased"
    );
    assert_eq!(listed[3].event.custom_id.as_deref(), Some("order-3"));

    let delivered = all(EventFilter {
        kinds: vec![EventKind::Delivered],
        ..Default::default()
    })
    .await;
    assert_eq!(delivered.len(), 5);
    let to_user1 = all(EventFilter {
        recipient: Some("USER1@example.com".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(to_user1.len(), 2);
    let tagged = all(EventFilter {
        tag: Some("q4".into()),
        ..Default::default()
    })
    .await;
    let times: Vec<i64> = tagged.iter().map(|e| e.event.time_ms).collect();
    assert_eq!(times, [1_000, 1_003, 1_006, 1_009]);
    let newest = store
        .events(
            &a,
            &EventFilter {
                tag: Some("welcome".into()),
                newest_first: true,
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(newest[0].event.time_ms, 1_009);
    assert_eq!(newest.len(), 2);
    let page = all(EventFilter {
        after_id: Some(listed[8].id),
        ..Default::default()
    })
    .await;
    assert_eq!(page.len(), 2);
    let by_time = all(EventFilter {
        from_ms: Some(1_002),
        to_ms: Some(1_004),
        ..Default::default()
    })
    .await;
    assert_eq!(by_time.len(), 2);
    let by_message = all(EventFilter {
        message_id: Some("m1007".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(by_message.len(), 1);
    assert!(
        store
            .events(
                &b,
                &EventFilter {
                    tag: Some("q4".into()),
                    limit: 10,
                    ..Default::default()
                }
            )
            .await
            .unwrap()
            .is_empty(),
        "tags are per tenant"
    );

    // Rollups and latency, kept as events were recorded.
    let rows = store
        .rollup(&a, Resolution::Minute, 0, 3_000, None)
        .await
        .unwrap();
    let count = |kind: EventKind| -> i64 {
        rows.iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.count)
            .sum()
    };
    assert_eq!(
        (count(EventKind::Accepted), count(EventKind::Delivered)),
        (5, 5)
    );
    assert_eq!(count(EventKind::Opened), 1);
    let one_domain = store
        .rollup(&a, Resolution::Day, 0, 3_000, Some("other.test"))
        .await
        .unwrap();
    assert!(one_domain.is_empty());
    let latency: i64 = store
        .latency_histogram(&a, Resolution::Hour, 0, 3_000)
        .await
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert_eq!(latency, 5, "one per delivered event with its queue time");

    // Purging old events takes their tags too.
    let last = store.last_event_id().await.unwrap();
    assert_eq!(last, listed[10].id);
    assert_eq!(store.purge_events(1_005).await.unwrap(), 5);
    let left = all(EventFilter {
        tag: Some("q4".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(left.len(), 2);
}

pub async fn suppressions_keep_their_first_reason_and_page_by_address<
    S: ControlStore + EventStore,
>(
    store: &S,
) {
    let a = store.add_tenant("a").await.unwrap().id;
    let b = store.add_tenant("b").await.unwrap().id;
    let entries: Vec<(String, String)> = ["Zed@x.test", "amy@x.test", "bob@x.test", "AMY@x.test"]
        .iter()
        .map(|a| (a.to_string(), "bounce".to_string()))
        .collect();
    assert_eq!(store.add_suppressions(&a, &entries).await.unwrap(), 3);
    assert_eq!(
        store
            .add_suppressions(&a, &[("bob@x.test".into(), "manual".into())])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .suppression(&a, "BOB@x.test")
            .await
            .unwrap()
            .unwrap()
            .reason,
        "bounce"
    );
    let mut found = store
        .suppressed(
            &a,
            &[
                "Amy@X.test".into(),
                "nobody@x.test".into(),
                "zed@x.test".into(),
            ],
        )
        .await
        .unwrap();
    found.sort();
    assert_eq!(found, ["amy@x.test", "zed@x.test"]);
    assert!(
        store
            .suppressed(&b, &["amy@x.test".into()])
            .await
            .unwrap()
            .is_empty()
    );
    let first = store.suppressions(&a, None, 2).await.unwrap();
    let names: Vec<&str> = first.iter().map(|s| s.address.as_str()).collect();
    assert_eq!(names, ["amy@x.test", "bob@x.test"]);
    let rest = store.suppressions(&a, Some("bob@x.test"), 2).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].address, "zed@x.test");
    assert!(store.remove_suppression(&a, "ZED@x.test").await.unwrap());
    assert!(!store.remove_suppression(&b, "amy@x.test").await.unwrap());
}

pub async fn webhooks_follow_events_rotate_and_log_deliveries<S: ControlStore + EventStore>(
    store: &S,
) {
    let a = store.add_tenant("a").await.unwrap().id;
    let b = store.add_tenant("b").await.unwrap().id;
    store
        .add_events(&[event(&a, 1, EventKind::Accepted, "r@x.test")])
        .await
        .unwrap();
    let hook = store
        .add_webhook(
            &a,
            "https://hooks.a.test/in",
            &[EventKind::Delivered, EventKind::Bounced],
        )
        .await
        .unwrap();
    assert_eq!(
        hook.cursor,
        store.last_event_id().await.unwrap(),
        "from now on"
    );
    assert!(hook.secret.starts_with("whsec_"));
    assert!(matches!(
        store.add_webhook("t_missing", "https://x.test", &[]).await,
        Err(store::StoreError::NotFound(_))
    ));
    let listed = store.webhooks(&a).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].kinds, [EventKind::Delivered, EventKind::Bounced]);
    assert!(store.webhooks(&b).await.unwrap().is_empty());
    assert_eq!(store.all_webhooks().await.unwrap().len(), 1);

    let rotated = store
        .rotate_webhook_secret(&a, &hook.id, 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(rotated.secret, hook.secret);
    assert_eq!(rotated.previous_secret.as_ref().unwrap().0, hook.secret);
    assert!(
        store
            .rotate_webhook_secret(&b, &hook.id, 1)
            .await
            .unwrap()
            .is_none()
    );

    store
        .set_webhook_state(&hook.id, 42, Some(1_234))
        .await
        .unwrap();
    let state = &store.webhooks(&a).await.unwrap()[0];
    assert_eq!((state.cursor, state.failing_since_ms), (42, Some(1_234)));

    for n in 0..1_005i64 {
        store
            .add_webhook_delivery(
                &hook.id,
                &WebhookDelivery {
                    time_ms: n,
                    events: 3,
                    first_event: n,
                    last_event: n + 2,
                    status: (n % 2 == 0).then_some(200),
                    error: (n % 2 == 1).then(|| "timed out".to_string()),
                    duration_ms: 7,
                },
            )
            .await
            .unwrap();
    }
    let log = store
        .webhook_deliveries(&a, &hook.id, 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(log.len(), 5);
    assert_eq!(log[0].time_ms, 1_004, "newest first");
    assert_eq!(log[0].status, Some(200));
    let kept = store
        .webhook_deliveries(&a, &hook.id, 1000)
        .await
        .unwrap()
        .unwrap();
    assert!(kept.len() <= 1001 && kept.len() >= 1000, "{}", kept.len());
    assert!(
        store
            .webhook_deliveries(&b, &hook.id, 5)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.remove_webhook(&b, &hook.id).await.unwrap());
    assert!(store.remove_webhook(&a, &hook.id).await.unwrap());
    assert!(store.all_webhooks().await.unwrap().is_empty());
}
