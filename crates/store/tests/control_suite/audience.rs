//! Contacts, property declarations, lists and memberships on both stores: upserts
//! that fold duplicates and merge properties, counts kept as members change, consent kept,
//! tenants apart.

use serde_json::json;
use store::{
    AudienceStore, Consent, ContactInput, ContactQuery, ControlStore, Existing, MemberStatus,
    PropertyKind, StoreError,
};

fn input(address: &str, properties: serde_json::Value) -> ContactInput {
    ContactInput {
        address: address.into(),
        properties: properties.as_object().cloned().unwrap_or_default(),
        ..ContactInput::default()
    }
}

fn consent(source: &str) -> Consent {
    Consent {
        source: source.into(),
        time_ms: 1_700_000_000_000,
        address: Some("192.0.2.7".into()),
        confirmed_ms: None,
    }
}

pub async fn properties_are_declared_once_with_checked_names<S: AudienceStore + ControlStore>(
    store: &S,
) {
    let a = store.add_tenant("acme").await.unwrap().id;
    let b = store.add_tenant("beta").await.unwrap().id;
    store
        .add_property(
            &a,
            "plan",
            &PropertyKind::Choice(vec!["free".into(), "pro".into()]),
        )
        .await
        .unwrap();
    store
        .add_property(&a, "signed_up", &PropertyKind::DateTime)
        .await
        .unwrap();
    // The same name for another tenant is its own.
    store
        .add_property(&b, "plan", &PropertyKind::Text)
        .await
        .unwrap();
    for (name, field) in [("plan", "name"), ("Bad-Name", "name"), ("email", "name")] {
        match store.add_property(&a, name, &PropertyKind::Text).await {
            Err(StoreError::Invalid { field: f, .. }) => assert_eq!(f, field, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    assert!(matches!(
        store
            .add_property(&a, "tier", &PropertyKind::Choice(vec![]))
            .await,
        Err(StoreError::Invalid {
            field: "choices",
            ..
        })
    ));
    let declared = store.properties(&a).await.unwrap();
    assert_eq!(
        declared
            .iter()
            .map(|p| (p.name.as_str(), p.kind.as_str()))
            .collect::<Vec<_>>(),
        [("plan", "choice"), ("signed_up", "datetime")]
    );
    assert_eq!(
        declared[0].kind,
        PropertyKind::Choice(vec!["free".into(), "pro".into()])
    );

    // Removing a declaration removes its values.
    store
        .upsert_contacts(
            &a,
            &[input("ann@x.test", json!({"plan": "pro", "signed_up": 5}))],
            Existing::Update,
        )
        .await
        .unwrap();
    assert!(store.remove_property(&a, "plan").await.unwrap());
    assert!(!store.remove_property(&a, "plan").await.unwrap());
    let ann = store.contact(&a, "ann@x.test").await.unwrap().unwrap();
    assert_eq!(
        serde_json::Value::Object(ann.properties),
        json!({"signed_up": 5})
    );
}

pub async fn upserts_fold_duplicates_merge_properties_and_keep_tenants_apart<
    S: AudienceStore + ControlStore,
>(
    store: &S,
) {
    let a = store.add_tenant("acme").await.unwrap().id;
    let b = store.add_tenant("beta").await.unwrap().id;
    let first = store
        .upsert_contacts(
            &a,
            &[
                input(
                    "ann@x.test",
                    json!({"plan": "free", "score": 1, "gone": null}),
                ),
                input("bob@x.test", json!({})),
                input("ann@x.test", json!({"plan": "pro", "score": 2})),
            ],
            Existing::Update,
        )
        .await
        .unwrap();
    assert_eq!((first.added, first.updated, first.unchanged), (2, 0, 0));
    assert_eq!(
        first.ids.len(),
        2,
        "one id per distinct address, in input order"
    );
    let ann = store
        .contact(&a, "ANN@x.test ")
        .await
        .unwrap()
        .expect("by address");
    assert_eq!(ann.id, first.ids[0]);
    assert_eq!(
        serde_json::Value::Object(ann.properties.clone()),
        json!({"plan": "pro", "score": 2}),
        "the last duplicate wins"
    );

    // Update merges: given fields change, others stay, null clears.
    let mut change = input("ann@x.test", json!({"score": null, "city": "Kyoto"}));
    change.country = Some("JP".into());
    let second = store
        .upsert_contacts(&a, &[change], Existing::Update)
        .await
        .unwrap();
    assert_eq!((second.added, second.updated), (0, 1));
    let ann = store
        .contact(&a, &first.ids[0].to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        serde_json::Value::Object(ann.properties.clone()),
        json!({"plan": "pro", "city": "Kyoto"})
    );
    assert_eq!(ann.country.as_deref(), Some("JP"));

    // Add-only leaves existing contacts alone but still names them.
    let keep = store
        .upsert_contacts(
            &a,
            &[
                input("ann@x.test", json!({"plan": "free"})),
                input("cy@x.test", json!({})),
            ],
            Existing::Keep,
        )
        .await
        .unwrap();
    assert_eq!((keep.added, keep.updated, keep.unchanged), (1, 0, 1));
    assert_eq!(keep.ids[0], first.ids[0]);
    let ann = store.contact(&a, "ann@x.test").await.unwrap().unwrap();
    assert_eq!(ann.properties["plan"], "pro");

    // Another tenant has its own ann, and sees none of acme's.
    store
        .upsert_contacts(&b, &[input("ann@x.test", json!({}))], Existing::Update)
        .await
        .unwrap();
    assert_eq!(store.contact_count(&a).await.unwrap(), 3);
    assert_eq!(store.contact_count(&b).await.unwrap(), 1);
    assert!(
        store
            .contact(&b, &first.ids[0].to_string())
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.remove_contact(&b, first.ids[0]).await.unwrap());

    // Listing: by prefix and in pages.
    let page = |prefix: Option<&str>, after: Option<i64>| ContactQuery {
        prefix: prefix.map(str::to_string),
        after_id: after,
        limit: 2,
    };
    let one = store.contacts(&a, &page(None, None)).await.unwrap();
    let two = store
        .contacts(&a, &page(None, one.last().map(|c| c.id)))
        .await
        .unwrap();
    assert_eq!((one.len(), two.len()), (2, 1));
    let bs = store.contacts(&a, &page(Some("B"), None)).await.unwrap();
    assert_eq!(
        bs.iter().map(|c| c.address.as_str()).collect::<Vec<_>>(),
        ["bob@x.test"]
    );

    // 2,500 in one call (several statements) with repeats folded.
    let many: Vec<ContactInput> = (0..2500)
        .map(|i| input(&format!("u{}@bulk.test", i % 2000), json!({"n": i})))
        .collect();
    let bulk = store
        .upsert_contacts(&a, &many, Existing::Update)
        .await
        .unwrap();
    assert_eq!((bulk.added, bulk.ids.len()), (2000, 2000));
    let u1 = store.contact(&a, "u1@bulk.test").await.unwrap().unwrap();
    assert_eq!(u1.properties["n"], 2001);
}

pub async fn list_counts_follow_members_and_consent_is_kept<S: AudienceStore + ControlStore>(
    store: &S,
) {
    let a = store.add_tenant("acme").await.unwrap().id;
    let b = store.add_tenant("beta").await.unwrap().id;
    let news = store.add_list(&a, "Newsletter", true).await.unwrap();
    assert!(matches!(
        store.add_list(&a, "Newsletter", false).await,
        Err(StoreError::Invalid { field: "name", .. })
    ));
    let ids = store
        .upsert_contacts(
            &a,
            &[
                input("ann@x.test", json!({})),
                input("bob@x.test", json!({})),
                input("cy@x.test", json!({})),
            ],
            Existing::Update,
        )
        .await
        .unwrap()
        .ids;
    let theirs = store
        .upsert_contacts(&b, &[input("eve@x.test", json!({}))], Existing::Update)
        .await
        .unwrap()
        .ids;

    let list = store
        .set_members(
            &a,
            &news.id,
            &[
                (ids[0], MemberStatus::Unconfirmed),
                (ids[1], MemberStatus::Unconfirmed),
                (ids[2], MemberStatus::Subscribed),
                (theirs[0], MemberStatus::Subscribed),
            ],
            &consent("form"),
        )
        .await
        .unwrap();
    assert_eq!(
        (list.subscribed, list.unconfirmed, list.unsubscribed),
        (1, 2, 0),
        "another tenant's contact is not added"
    );
    // Ann confirms; Bob unsubscribes; setting the same status again changes nothing.
    let confirmed = Consent {
        confirmed_ms: Some(1_700_000_100_000),
        ..consent("confirmation")
    };
    store
        .set_members(
            &a,
            &news.id,
            &[(ids[0], MemberStatus::Subscribed)],
            &confirmed,
        )
        .await
        .unwrap();
    let list = store
        .set_members(
            &a,
            &news.id,
            &[
                (ids[1], MemberStatus::Unsubscribed),
                (ids[2], MemberStatus::Subscribed),
            ],
            &consent("api"),
        )
        .await
        .unwrap();
    assert_eq!(
        (list.subscribed, list.unconfirmed, list.unsubscribed),
        (2, 0, 1)
    );
    // A bulk add (import, Mailjet addnoforce) leaves Bob unsubscribed and adds a newcomer.
    let dan = store
        .upsert_contacts(&a, &[input("dan@x.test", json!({}))], Existing::Update)
        .await
        .unwrap()
        .ids[0];
    let list = store
        .add_members(
            &a,
            &news.id,
            &[
                (ids[1], MemberStatus::Subscribed),
                (dan, MemberStatus::Subscribed),
            ],
            &consent("import"),
        )
        .await
        .unwrap();
    assert_eq!(
        (list.subscribed, list.unconfirmed, list.unsubscribed),
        (3, 0, 1),
        "an unsubscribed member stays unsubscribed"
    );
    store.remove_members(&a, &news.id, &[dan]).await.unwrap();
    let ann = store.memberships(&a, ids[0]).await.unwrap();
    assert_eq!(ann.len(), 1);
    assert_eq!(ann[0].status, MemberStatus::Subscribed);
    assert_eq!(
        ann[0].consent.source, "form",
        "the first consent stays on record"
    );
    assert_eq!(ann[0].consent.address.as_deref(), Some("192.0.2.7"));
    assert_eq!(ann[0].consent.confirmed_ms, Some(1_700_000_100_000));

    let subscribed = store
        .members(&a, &news.id, Some(MemberStatus::Subscribed), None, 10)
        .await
        .unwrap();
    assert_eq!(
        subscribed
            .iter()
            .map(|(c, _)| c.address.as_str())
            .collect::<Vec<_>>(),
        ["ann@x.test", "cy@x.test"]
    );
    assert!(
        store
            .members(&b, &news.id, None, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store
            .set_members(
                &b,
                &news.id,
                &[(theirs[0], MemberStatus::Subscribed)],
                &consent("api")
            )
            .await,
        Err(StoreError::NotFound(_))
    ));

    // Removing a member or a contact keeps the counts right.
    let list = store.remove_members(&a, &news.id, &[ids[1]]).await.unwrap();
    assert_eq!(
        (list.subscribed, list.unconfirmed, list.unsubscribed),
        (2, 0, 0)
    );
    assert!(store.remove_contact(&a, ids[2]).await.unwrap());
    let list = store.list(&a, "Newsletter").await.unwrap().unwrap();
    assert_eq!(
        (list.subscribed, list.unconfirmed, list.unsubscribed),
        (1, 0, 0)
    );
    assert!(store.list(&b, &news.id).await.unwrap().is_none());
    assert!(store.remove_list(&a, &news.id).await.unwrap());
    assert!(store.memberships(&a, ids[0]).await.unwrap().is_empty());
}
