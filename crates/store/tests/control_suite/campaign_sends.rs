//! A campaign's send on both stores: the audience is fixed once (lists, segments,
//! exclusions, suppressions, another tenant's contacts never), read back in batches with
//! the contacts as they are now, and the cursor moves only by committing the batch that
//! starts at it; open batches are found again after a "crash" and can be dropped.

use serde_json::Map;
use store::audience::{Condition, Field, Op, Operand};
use store::{
    AudiencePlan, AudienceStore, CampaignDraft, CampaignStore, Consent, ContactInput, ControlStore,
    EventStore, Existing, MemberStatus, StoreError,
};

fn contact(address: &str, country: &str) -> ContactInput {
    ContactInput {
        address: address.into(),
        timezone: None,
        locale: None,
        country: Some(country.into()),
        properties: Map::new(),
    }
}

pub async fn the_audience_is_fixed_once_and_spooled_batch_by_batch<
    S: AudienceStore + CampaignStore + ControlStore + EventStore,
>(
    store: &S,
) {
    let a = store.add_tenant("acme").await.unwrap().id;
    let b = store.add_tenant("beta").await.unwrap().id;
    let people: Vec<ContactInput> = (0..10)
        .map(|i| contact(&format!("p{i}@x.test"), if i < 5 { "JP" } else { "DE" }))
        .collect();
    let ids = store
        .upsert_contacts(&a, &people, Existing::Update)
        .await
        .unwrap()
        .ids;
    // Beta has the same addresses: never in acme's audience.
    store
        .upsert_contacts(&b, &people, Existing::Update)
        .await
        .unwrap();
    let news = store.add_list(&a, "News", false).await.unwrap();
    let vip = store.add_list(&a, "VIP", false).await.unwrap();
    let consent = Consent::given("test", 0, None);
    // News: p0..p3 subscribed, p4 unsubscribed.
    let mut members: Vec<(i64, MemberStatus)> = ids[..4]
        .iter()
        .map(|id| (*id, MemberStatus::Subscribed))
        .collect();
    members.push((ids[4], MemberStatus::Unsubscribed));
    store
        .add_members(&a, &news.id, &members, &consent)
        .await
        .unwrap();
    // VIP (excluded): p1.
    store
        .add_members(&a, &vip.id, &[(ids[1], MemberStatus::Subscribed)], &consent)
        .await
        .unwrap();
    // p2 is suppressed; the segment adds Germans but leaves out p9.
    store
        .add_suppressions(&a, &[("p2@x.test".into(), "bounce".into())])
        .await
        .unwrap();
    let germans = Condition::Compare {
        field: Field::Country,
        op: Op::Eq,
        value: Operand::Text("DE".into()),
    };
    let p9 = Condition::Compare {
        field: Field::Address,
        op: Op::Eq,
        value: Operand::Text("p9@x.test".into()),
    };
    let plan = AudiencePlan {
        lists: vec![news.id.clone()],
        segments: vec![germans],
        exclude_lists: vec![vip.id.clone()],
        exclude_segments: vec![p9],

        ..Default::default()
    };
    let campaign = store
        .add_campaign(
            &a,
            &CampaignDraft {
                name: "News".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The live count says what fixing would fix; filter segments narrow it to the
    // contacts in every one of them.
    assert_eq!(store.audience_count(&a, &plan).await.unwrap(), 6);
    let address_in = |addresses: &[&str]| {
        Condition::Or(
            addresses
                .iter()
                .map(|a| Condition::Compare {
                    field: Field::Address,
                    op: Op::Eq,
                    value: Operand::Text((*a).into()),
                })
                .collect(),
        )
    };
    let narrowed = AudiencePlan {
        filter_segments: vec![
            address_in(&["p0@x.test", "p3@x.test", "p5@x.test"]),
            address_in(&["p3@x.test", "p5@x.test", "p6@x.test"]),
        ],
        ..plan.clone()
    };
    assert_eq!(
        store.audience_count(&a, &narrowed).await.unwrap(),
        2,
        "p3 and p5 are in both filter segments"
    );
    assert!(matches!(
        store.fix_audience(&b, &campaign.id, &plan).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.fix_audience(&a, &campaign.id, &plan).await.unwrap(),
        6,
        "News p0, p3 (p1 excluded, p2 suppressed, p4 unsubscribed) and Germans p5-p8 (p9 excluded)"
    );
    // Fixed once: new members and a wider plan change nothing.
    store
        .add_members(
            &a,
            &news.id,
            &[(ids[9], MemberStatus::Subscribed)],
            &consent,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .fix_audience(&a, &campaign.id, &AudiencePlan::default())
            .await
            .unwrap(),
        6
    );
    let campaign = store.campaign(&a, &campaign.id).await.unwrap().unwrap();
    assert_eq!(campaign.progress.recipients, Some(6));
    let all = store.send_recipients(&campaign, 0, 100).await.unwrap();
    let addresses: Vec<&str> = all.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(
        addresses,
        [
            "p0@x.test",
            "p3@x.test",
            "p5@x.test",
            "p6@x.test",
            "p7@x.test",
            "p8@x.test"
        ]
    );
    assert_eq!(
        all.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    assert!(all.iter().all(|r| !r.suppressed && r.contact.is_some()));
    assert_eq!(
        all[2].contact.as_ref().unwrap().country.as_deref(),
        Some("DE")
    );

    // After the start: p5 suppressed, p6 deleted; the batch read says so.
    store
        .add_suppressions(&a, &[("p5@x.test".into(), "unsubscribe".into())])
        .await
        .unwrap();
    store.remove_contact(&a, ids[6]).await.unwrap();
    let page = store.send_recipients(&campaign, 2, 2).await.unwrap();
    assert_eq!(page.len(), 2);
    assert!(page[0].suppressed);
    assert!(page[1].contact.is_none(), "deleted since the start");

    // Batches: only the one at the cursor opens; committing moves the cursor.
    assert!(matches!(
        store.open_batch(&campaign.id, 2, 4, &[7, 8]).await,
        Err(StoreError::Invalid {
            field: "cursor",
            ..
        })
    ));
    store
        .open_batch(&campaign.id, 0, 2, &[u128::MAX, 1])
        .await
        .unwrap();
    store.commit_batch(&campaign.id, 0, 2, 0).await.unwrap();
    assert!(
        store.commit_batch(&campaign.id, 0, 2, 0).await.is_err(),
        "a batch commits once"
    );
    store
        .open_batch(&campaign.id, 2, 4, &[(1 << 100) + 5, 9])
        .await
        .unwrap();
    // After a "crash" (what the next process reads from the store): the open batch is found
    // again with its ids, and dropped.
    let open = store.open_batches().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].first_seq, 2);
    assert_eq!(open[0].message_ids, vec![(1 << 100) + 5, 9]);
    store.drop_batch(&campaign.id, 2).await.unwrap();
    assert!(store.open_batches().await.unwrap().is_empty());
    let campaign = store.campaign(&a, &campaign.id).await.unwrap().unwrap();
    assert_eq!(campaign.progress.cursor, 2);
    assert_eq!(campaign.progress.spooled, 2);
    // The batch is spooled again from the cursor.
    store
        .open_batch(&campaign.id, 2, 5, &[10, 11, 12])
        .await
        .unwrap();
    store.commit_batch(&campaign.id, 2, 1, 2).await.unwrap();
    assert_eq!(
        store.batch_message_ids(&campaign.id).await.unwrap(),
        vec![u128::MAX, 1, 10, 11, 12],
        "the committed batches' ids, for a cancel to take back"
    );
    let campaign = store.campaign(&a, &campaign.id).await.unwrap().unwrap();
    assert_eq!(
        (
            campaign.progress.cursor,
            campaign.progress.spooled,
            campaign.progress.skipped
        ),
        (5, 3, 2)
    );
}

pub async fn tracking_modes_default_to_anonymous<
    S: AudienceStore + CampaignStore + ControlStore + EventStore,
>(
    store: &S,
) {
    let a = store.add_tenant("acme").await.unwrap().id;
    let b = store.add_tenant("beta").await.unwrap().id;
    assert_eq!(
        store.tracking_mode(&a).await.unwrap(),
        store::TrackingMode::Anonymous
    );
    assert!(
        store
            .set_tracking_mode(&a, store::TrackingMode::Off)
            .await
            .unwrap()
    );
    assert_eq!(
        store.tracking_mode(&a).await.unwrap(),
        store::TrackingMode::Off
    );
    assert_eq!(
        store.tracking_mode(&b).await.unwrap(),
        store::TrackingMode::Anonymous,
        "one tenant's mode is its own"
    );
    assert!(
        !store
            .set_tracking_mode("t_nobody", store::TrackingMode::Full)
            .await
            .unwrap()
    );
}

fn event(kind: store::EventKind, recipient: &str, detail: serde_json::Value) -> store::NewEvent {
    store::NewEvent {
        tenant_id: "t".into(),
        time_ms: 7_200_000 + 5,
        kind,
        message_id: "m".into(),
        recipient: recipient.into(),
        custom_id: None,
        tags: None,
        detail: Some(detail.to_string()),
    }
}

/// Reports are counters kept while events are recorded: totals, by provider, bounce
/// category, link and hour; unique opens and clicks counted once per person across
/// batches; machines apart; test sends and other campaigns not mixed in.
pub async fn campaign_reports_are_counted_as_events_arrive<
    S: AudienceStore + CampaignStore + ControlStore + EventStore,
>(
    store: &S,
) {
    use serde_json::json;
    use store::EventKind::*;
    let t = store.add_tenant("t").await.unwrap().id;
    let on = |kind, rcpt: &str, extra: serde_json::Value| {
        let mut detail = json!({"campaign_id": "cp_1"});
        if let (Some(d), serde_json::Value::Object(more)) = (detail.as_object_mut(), extra) {
            d.extend(more);
        }
        let mut e = event(kind, rcpt, detail);
        e.tenant_id = t.clone();
        e
    };
    let human = json!({"machine": false});
    store
        .add_events(&[
            on(Accepted, "a@gmail.com", json!({})),
            on(Accepted, "b@yahoo.co.jp", json!({})),
            on(Delivered, "a@gmail.com", json!({})),
            on(
                Bounced,
                "b@yahoo.co.jp",
                json!({"category": "invalid_recipient"}),
            ),
            on(Opened, "a@gmail.com", human.clone()),
            on(Opened, "a@gmail.com", json!({"machine": true})),
            on(Clicked, "a@gmail.com", json!({"machine": false, "link": 1})),
            on(Accepted, "x@gmail.com", json!({"campaign_test": true})),
            store::NewEvent {
                tenant_id: t.clone(),
                ..event(Accepted, "z@gmail.com", json!({"campaign_id": "cp_2"}))
            },
        ])
        .await
        .unwrap();
    // A later batch: the same person opens again and clicks another link.
    store
        .add_events(&[
            on(Opened, "a@gmail.com", human.clone()),
            on(Clicked, "a@gmail.com", json!({"machine": false, "link": 1})),
            on(Clicked, "a@gmail.com", json!({"machine": false, "link": 2})),
        ])
        .await
        .unwrap();
    let counts: std::collections::HashMap<(String, String), i64> = store
        .campaign_counts("cp_1")
        .await
        .unwrap()
        .into_iter()
        .map(|(m, d, c)| ((m, d), c))
        .collect();
    let get = |m: &str, d: &str| counts.get(&(m.to_string(), d.to_string())).copied();
    assert_eq!(
        get("sent", ""),
        Some(2),
        "the test send is not counted: {counts:?}"
    );
    assert_eq!(get("sent", "provider:gmail"), Some(1));
    assert_eq!(get("delivered", ""), Some(1));
    assert_eq!(get("delivered", "hour:7200000"), Some(1));
    assert_eq!(get("bounced", "category:invalid_recipient"), Some(1));
    assert_eq!(get("opened", ""), Some(2));
    assert_eq!(get("opened_unique", ""), Some(1));
    assert_eq!(get("opened_machine", ""), Some(1));
    assert_eq!(get("clicked", ""), Some(3));
    assert_eq!(get("clicked_unique", ""), Some(1));
    assert_eq!(get("clicked", "link:1"), Some(2));
    assert_eq!(get("clicked_unique", "link:1"), Some(1));
    assert_eq!(get("clicked_unique", "link:2"), Some(1));
    assert_eq!(
        store.campaign_counts("cp_2").await.unwrap(),
        vec![
            ("sent".to_string(), String::new(), 1),
            ("sent".to_string(), "provider:gmail".to_string(), 1)
        ]
    );
}

/// An A/B campaign's audience is fixed in a random order with its test group marked; its
/// counters are kept per variant and zone too (uniques once per person); the first
/// decision stands.
pub async fn ab_tests_fix_a_sampled_group_count_per_variant_and_decide_once<
    S: AudienceStore + CampaignStore + ControlStore + EventStore,
>(
    store: &S,
) {
    use serde_json::json;
    use store::EventKind::*;
    let a = store.add_tenant("acme").await.unwrap().id;
    let people: Vec<ContactInput> = (0..200)
        .map(|i| contact(&format!("p{i:03}@x.test"), "JP"))
        .collect();
    let ids = store
        .upsert_contacts(&a, &people, Existing::Update)
        .await
        .unwrap()
        .ids;
    let news = store.add_list(&a, "News", false).await.unwrap();
    let members: Vec<(i64, MemberStatus)> = ids
        .iter()
        .map(|id| (*id, MemberStatus::Subscribed))
        .collect();
    store
        .add_members(&a, &news.id, &members, &Consent::given("test", 0, None))
        .await
        .unwrap();
    let campaign = store
        .add_campaign(
            &a,
            &CampaignDraft {
                name: "Subject test".into(),
                ab_test: Some(r#"{"variants":[{},{}]}"#.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let plan = AudiencePlan {
        lists: vec![news.id.clone()],
        test_percent: Some(15),
        test_minimum: 2,
        ..Default::default()
    };
    assert_eq!(
        store.fix_audience(&a, &campaign.id, &plan).await.unwrap(),
        200
    );
    let campaign = store.campaign(&a, &campaign.id).await.unwrap().unwrap();
    assert_eq!(campaign.ab.test_end, Some(30));
    assert!(campaign.testing());
    let all = store.send_recipients(&campaign, 0, 1000).await.unwrap();
    let mut addresses: Vec<&str> = all.iter().map(|r| r.address.as_str()).collect();
    assert_ne!(
        addresses[..30],
        (0..30)
            .map(|i| format!("p{i:03}@x.test"))
            .collect::<Vec<_>>(),
        "the test group is a random sample, not the oldest contacts"
    );
    addresses.sort_unstable();
    addresses.dedup();
    assert_eq!(addresses.len(), 200, "everyone once");

    let on = |kind, rcpt: &str, extra: serde_json::Value| {
        let mut detail = json!({"campaign_id": campaign.id, "zone": "Asia/Tokyo"});
        if let (Some(d), serde_json::Value::Object(more)) = (detail.as_object_mut(), extra) {
            d.extend(more);
        }
        store::NewEvent {
            tenant_id: a.clone(),
            ..event(kind, rcpt, detail)
        }
    };
    let (v0, v1) = (
        json!({"variant": 0}),
        json!({"variant": 1, "machine": false}),
    );
    store
        .add_events(&[
            on(Accepted, "p1@x.test", v0.clone()),
            on(Accepted, "p2@x.test", v1.clone()),
            on(Accepted, "p3@x.test", v1.clone()),
            on(Delivered, "p2@x.test", v1.clone()),
            on(Opened, "p2@x.test", v1.clone()),
            on(Opened, "p2@x.test", v1.clone()),
            on(Opened, "p3@x.test", v1.clone()),
            on(Clicked, "p3@x.test", json!({"variant": 1, "link": 1})),
        ])
        .await
        .unwrap();
    store
        .add_events(&[on(Opened, "p2@x.test", v1.clone())])
        .await
        .unwrap();
    let counts: std::collections::HashMap<(String, String), i64> = store
        .campaign_counts(&campaign.id)
        .await
        .unwrap()
        .into_iter()
        .map(|(m, d, c)| ((m, d), c))
        .collect();
    let get = |m: &str, d: &str| counts.get(&(m.to_string(), d.to_string())).copied();
    assert_eq!(get("sent", "variant:0"), Some(1), "{counts:?}");
    assert_eq!(get("sent", "variant:1"), Some(2));
    assert_eq!(get("delivered", "variant:1"), Some(1));
    assert_eq!(get("opened", "variant:1"), Some(4));
    assert_eq!(get("opened_unique", "variant:1"), Some(2));
    assert_eq!(get("opened_unique", "zone:Asia/Tokyo"), Some(2));
    assert_eq!(get("opened_unique", ""), Some(2));
    assert_eq!(get("clicked_unique", "variant:1"), Some(1));
    assert_eq!(get("opened_unique", "variant:0"), None);

    store.test_spooled(&campaign.id, 1_000).await.unwrap();
    store.test_spooled(&campaign.id, 2_000).await.unwrap();
    assert!(
        store
            .decide_winner(&a, &campaign.id, 1, "B wins")
            .await
            .unwrap()
    );
    assert!(
        !store
            .decide_winner(&a, &campaign.id, 0, "A after all")
            .await
            .unwrap(),
        "the first decision stands"
    );
    let decided = store.campaign(&a, &campaign.id).await.unwrap().unwrap();
    assert_eq!(decided.ab.decide_at_ms, Some(1_000), "set once");
    assert_eq!(
        (decided.ab.winner, decided.ab.winner_reason.as_deref()),
        (Some(1), Some("B wins"))
    );
    assert!(decided.ab.decided_ms.is_some() && !decided.testing());
}
