//! Events, suppressions and webhooks on a real SQLite file: filters, cursor pages, tenant
//! isolation, retention.

use store::{
    ControlStore, EventFilter, EventKind, EventStore, NewEvent, SqliteStore, WebhookDelivery,
};

async fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("control.db"))
        .await
        .expect("open store")
}

fn event(tenant: &str, time_ms: i64, kind: EventKind, id: &str, rcpt: &str) -> NewEvent {
    NewEvent {
        tenant_id: tenant.into(),
        time_ms,
        kind,
        message_id: id.into(),
        recipient: rcpt.into(),
        custom_id: Some(format!("c-{id}")),
        tags: Some(format!(r#"["t-{id}","all"]"#)),
        detail: None,
    }
}

fn filter() -> EventFilter {
    EventFilter {
        limit: 100,
        ..EventFilter::default()
    }
}

#[tokio::test]
async fn events_filter_page_and_stay_with_their_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let a = store.add_tenant("acme").await.unwrap().id;
    let b = store.add_tenant("beta").await.unwrap().id;
    let mut batch = Vec::new();
    for i in 0..10 {
        let id = format!("m{i}");
        batch.push(event(&a, 1000 + i, EventKind::Accepted, &id, "ann@x.test"));
        batch.push(event(&a, 2000 + i, EventKind::Delivered, &id, "ann@x.test"));
    }
    batch.push(event(&b, 1500, EventKind::Bounced, "m0", "ann@x.test"));
    store.add_events(&batch).await.unwrap();

    let all = store.events(&a, &filter()).await.unwrap();
    assert_eq!(all.len(), 20);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    // Another tenant's event with the same message id and recipient is not in A's view.
    assert!(all.iter().all(|e| e.event.tenant_id == a));
    let bounced = EventFilter {
        kinds: vec![EventKind::Bounced],
        ..filter()
    };
    assert!(store.events(&a, &bounced).await.unwrap().is_empty());
    assert_eq!(store.events(&b, &bounced).await.unwrap().len(), 1);

    let by = |f: EventFilter| {
        let store = &store;
        let a = &a;
        async move { store.events(a, &f).await.unwrap() }
    };
    assert_eq!(
        by(EventFilter {
            message_id: Some("m3".into()),
            ..filter()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        by(EventFilter {
            custom_id: Some("c-m4".into()),
            ..filter()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        by(EventFilter {
            tag: Some("t-m5".into()),
            ..filter()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        by(EventFilter {
            tag: Some("all".into()),
            ..filter()
        })
        .await
        .len(),
        20
    );
    assert_eq!(
        by(EventFilter {
            recipient: Some("ANN@x.test".into()),
            ..filter()
        })
        .await
        .len(),
        20
    );
    let window = by(EventFilter {
        from_ms: Some(1005),
        to_ms: Some(2002),
        ..filter()
    })
    .await;
    assert_eq!(window.len(), 5 + 2);

    // Pages of 7 by cursor cover everything once, in order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = by(EventFilter {
            after_id: after,
            limit: 7,
            ..filter()
        })
        .await;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.iter().map(|e| e.id));
    }
    assert_eq!(seen, all.iter().map(|e| e.id).collect::<Vec<_>>());

    // Newest first by tag (through the tag index), with a cursor and a time bound; another
    // tenant's events under the same tag are not found.
    let tagged = by(EventFilter {
        tag: Some("all".into()),
        newest_first: true,
        limit: 3,
        ..filter()
    })
    .await;
    let newest: Vec<i64> = all.iter().rev().take(3).map(|e| e.id).collect();
    assert_eq!(tagged.iter().map(|e| e.id).collect::<Vec<_>>(), newest);
    let older = by(EventFilter {
        tag: Some("all".into()),
        newest_first: true,
        before_id: Some(newest[2]),
        from_ms: Some(2005),
        ..filter()
    })
    .await;
    assert_eq!(
        older.len(),
        3,
        "deliveries 5, 6 and 7: before the cursor and in the period"
    );
    let theirs = store
        .events(
            &b,
            &EventFilter {
                tag: Some("all".into()),
                ..filter()
            },
        )
        .await
        .unwrap();
    assert_eq!(theirs.len(), 1);

    assert_eq!(store.purge_events(2000).await.unwrap(), 11);
    assert_eq!(store.events(&a, &filter()).await.unwrap().len(), 10);
    let after_purge = by(EventFilter {
        tag: Some("all".into()),
        ..filter()
    })
    .await;
    assert_eq!(
        after_purge.len(),
        10,
        "purged events leave the tag index too"
    );
}

#[tokio::test]
async fn rollups_count_per_minute_hour_and_day_and_by_sending_domain() {
    use store::rollups::{DAY_MS, HOUR_MS, Resolution};
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let a = store.add_tenant("acme").await.unwrap().id;
    let day = 20_000 * DAY_MS;
    let mut batch = Vec::new();
    for (i, (time_ms, domain)) in [
        (day + 10, "acme.test"),
        (day + HOUR_MS + 10, "acme.test"),
        (day + 2 * HOUR_MS, "news.acme.test"),
        (day + DAY_MS + 5, "acme.test"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = event(
            &a,
            time_ms,
            EventKind::Delivered,
            &format!("m{i}"),
            "ann@gmail.com",
        );
        e.detail = Some(format!(
            r#"{{"sending_domain":"{domain}","queued_ms":{}}}"#,
            100 * (i + 1)
        ));
        batch.push(e);
    }
    store.add_events(&batch).await.unwrap();
    let total = |rows: &[store::rollups::RollupRow]| rows.iter().map(|r| r.count).sum::<i64>();
    let days = store
        .rollup(&a, Resolution::Day, day, day + 2 * DAY_MS, None)
        .await
        .unwrap();
    assert_eq!(
        days.iter()
            .map(|r| (r.slot_ms, r.count))
            .filter(|(s, _)| *s == day)
            .map(|(_, c)| c)
            .sum::<i64>(),
        3
    );
    assert_eq!(total(&days), 4);
    assert!(days.iter().all(|r| r.provider == "gmail"));
    let news = store
        .rollup(
            &a,
            Resolution::Day,
            day,
            day + 2 * DAY_MS,
            Some("news.acme.test"),
        )
        .await
        .unwrap();
    assert_eq!(total(&news), 1);
    let hours = store
        .rollup(&a, Resolution::Hour, day, day + HOUR_MS, None)
        .await
        .unwrap();
    assert_eq!(
        total(&hours),
        2,
        "the hour slots from `day` up to the one holding the end"
    );
    let minutes = store
        .rollup(&a, Resolution::Minute, day, day + 60_000, None)
        .await
        .unwrap();
    assert_eq!(total(&minutes), 1);
    let latency = store
        .latency_histogram(&a, Resolution::Day, day, day + 2 * DAY_MS)
        .await
        .unwrap();
    assert_eq!(latency.iter().map(|(_, n)| n).sum::<i64>(), 4);
}

#[tokio::test]
async fn suppressions_are_per_tenant_and_case_blind() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let a = store.add_tenant("acme").await.unwrap().id;
    let b = store.add_tenant("beta").await.unwrap().id;
    let added = store
        .add_suppressions(
            &a,
            &[
                ("Ann@X.test".into(), "bounce".into()),
                ("bob@x.test".into(), "manual".into()),
                ("ann@x.test".into(), "complaint".into()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(added, 2);
    let asked = vec!["ANN@x.test".to_string(), "cy@x.test".into()];
    assert_eq!(store.suppressed(&a, &asked).await.unwrap(), ["ann@x.test"]);
    assert!(store.suppressed(&b, &asked).await.unwrap().is_empty());
    let page = store.suppressions(&a, None, 1).await.unwrap();
    assert_eq!(
        (page[0].address.as_str(), page[0].reason.as_str()),
        ("ann@x.test", "bounce")
    );
    let next = store
        .suppressions(&a, Some("ann@x.test"), 10)
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert!(!store.remove_suppression(&b, "ann@x.test").await.unwrap());
    assert!(store.remove_suppression(&a, "ANN@x.test").await.unwrap());
    assert!(store.suppressed(&a, &asked).await.unwrap().is_empty());
}

#[tokio::test]
async fn webhooks_start_at_the_present_and_log_deliveries_for_their_tenant_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let a = store.add_tenant("acme").await.unwrap().id;
    let b = store.add_tenant("beta").await.unwrap().id;
    store
        .add_events(&[event(&a, 1, EventKind::Accepted, "m0", "ann@x.test")])
        .await
        .unwrap();
    let hook = store
        .add_webhook(
            &a,
            "https://hooks.acme.test/t",
            &[EventKind::Bounced, EventKind::Delivered],
        )
        .await
        .unwrap();
    assert_eq!(hook.cursor, store.last_event_id().await.unwrap());
    assert!(hook.secret.starts_with("whsec_") && hook.secret.len() == 6 + 64);
    assert_eq!(
        store.webhooks(&a).await.unwrap()[0].kinds,
        [EventKind::Bounced, EventKind::Delivered]
    );
    assert!(store.webhooks(&b).await.unwrap().is_empty());
    let delivery = WebhookDelivery {
        time_ms: 5,
        events: 3,
        first_event: 2,
        last_event: 4,
        status: Some(500),
        error: None,
        duration_ms: 12,
    };
    store
        .add_webhook_delivery(&hook.id, &delivery)
        .await
        .unwrap();
    store.set_webhook_state(&hook.id, 4, Some(5)).await.unwrap();
    assert_eq!(
        store.webhook_deliveries(&a, &hook.id, 10).await.unwrap(),
        Some(vec![delivery])
    );
    assert_eq!(
        store.webhook_deliveries(&b, &hook.id, 10).await.unwrap(),
        None
    );
    let all = store.all_webhooks().await.unwrap();
    assert_eq!((all[0].cursor, all[0].failing_since_ms), (4, Some(5)));
    assert!(!store.remove_webhook(&b, &hook.id).await.unwrap());
    assert!(store.remove_webhook(&a, &hook.id).await.unwrap());
}
