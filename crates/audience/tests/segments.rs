//! Segments end to end on both real stores (SQLite on a file, PostgreSQL from Debian's
//! packages): a tenant's text is parsed, checked against
//! its declarations and lists, and counted and sampled by the store; each clause of the
//! language selects exactly the contacts it should, and text that looks like SQL is just
//! text.

use audience::parse_segment;
use serde_json::json;
use store::{
    AudienceStore, Consent, ContactInput, ControlStore, EventKind, EventStore, Existing,
    MemberStatus, NewEvent, PgStore, PropertyKind, SqliteStore,
};

const DAY: i64 = 86_400_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

struct Fixture<S> {
    store: S,
    tenant: String,
    _keep: Box<dyn std::any::Any>,
}

async fn on_sqlite() -> Fixture<SqliteStore> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("control.db"))
        .await
        .unwrap();
    Fixture::seed(store, Box::new(dir)).await
}

async fn on_postgres() -> Fixture<PgStore> {
    let server = testkit::postgres::PgServer::start();
    let store = PgStore::connect(&server.url()).await.unwrap();
    Fixture::seed(store, Box::new(server)).await
}

impl<S: AudienceStore + ControlStore + EventStore> Fixture<S> {
    async fn seed(store: S, keep: Box<dyn std::any::Any>) -> Fixture<S> {
        let tenant = store.add_tenant("acme").await.unwrap().id;
        let other = store.add_tenant("beta").await.unwrap().id;
        for (name, kind) in [
            ("signed_up", PropertyKind::DateTime),
            (
                "plan",
                PropertyKind::Choice(vec!["free".into(), "pro".into()]),
            ),
            ("score", PropertyKind::Number),
            ("vip", PropertyKind::Boolean),
            ("city", PropertyKind::Text),
        ] {
            store.add_property(&tenant, name, &kind).await.unwrap();
        }
        let now = now_ms();
        let contact =
            |address: &str, country: Option<&str>, props: serde_json::Value| ContactInput {
                address: address.into(),
                country: country.map(str::to_string),
                properties: props.as_object().cloned().unwrap_or_default(),
                ..ContactInput::default()
            };
        let ids = store
            .upsert_contacts(
                &tenant,
                &[
                    contact("ann@x.test", Some("JP"), json!({"signed_up": now - 5 * DAY, "plan": "pro", "score": 10, "vip": true, "city": "Kyoto"})),
                    contact("bob@x.test", Some("JP"), json!({"signed_up": now - 60 * DAY, "plan": "free", "score": 3, "city": "Osaka"})),
                    contact("cy@y.test", Some("US"), json!({"signed_up": now - DAY, "plan": "pro", "city": "O'Brien \"town\""})),
                    contact("dee@y.test", None, json!({})),
                ],
                Existing::Update,
            )
            .await
            .unwrap()
            .ids;
        // Beta has a JP contact too: never counted for acme.
        store
            .upsert_contacts(
                &other,
                &[contact("eve@x.test", Some("JP"), json!({}))],
                Existing::Update,
            )
            .await
            .unwrap();
        let news = store.add_list(&tenant, "Newsletter", false).await.unwrap();
        let consent = Consent {
            source: "api".into(),
            time_ms: now,
            address: None,
            confirmed_ms: None,
        };
        store
            .set_members(
                &tenant,
                &news.id,
                &[
                    (ids[0], MemberStatus::Subscribed),
                    (ids[1], MemberStatus::Unsubscribed),
                    (ids[2], MemberStatus::Subscribed),
                ],
                &consent,
            )
            .await
            .unwrap();
        let event = |rcpt: &str, kind, age: i64| NewEvent {
            tenant_id: tenant.clone(),
            time_ms: now - age,
            kind,
            message_id: "M1".into(),
            recipient: rcpt.into(),
            custom_id: None,
            tags: None,
            detail: None,
        };
        store
            .add_events(&[
                event("ann@x.test", EventKind::Opened, 10 * DAY),
                event("bob@x.test", EventKind::Opened, 120 * DAY),
                event("cy@y.test", EventKind::Clicked, DAY),
            ])
            .await
            .unwrap();
        store
            .add_suppressions(&tenant, &[("bob@x.test".into(), "bounce".into())])
            .await
            .unwrap();
        Fixture {
            store,
            tenant,
            _keep: keep,
        }
    }

    /// The addresses a segment selects, sorted.
    async fn select(&self, text: &str) -> Vec<String> {
        let properties = self.store.properties(&self.tenant).await.unwrap();
        let lists = self.store.lists(&self.tenant).await.unwrap();
        let condition =
            parse_segment(text, &properties, &lists).unwrap_or_else(|e| panic!("{text}: {e}"));
        let count = self
            .store
            .segment_count(&self.tenant, &condition)
            .await
            .unwrap();
        let mut found: Vec<String> = self
            .store
            .segment_contacts(&self.tenant, &condition, None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.address)
            .collect();
        found.sort();
        assert_eq!(
            count as usize,
            found.len(),
            "{text}: count and contacts agree"
        );
        found
    }
}

#[tokio::test]
async fn every_clause_selects_what_it_says_on_sqlite() {
    every_clause_selects_what_it_says(on_sqlite().await).await;
}

#[tokio::test]
async fn every_clause_selects_what_it_says_on_postgres() {
    every_clause_selects_what_it_says(on_postgres().await).await;
}

async fn every_clause_selects_what_it_says<S: AudienceStore + ControlStore + EventStore>(
    f: Fixture<S>,
) {
    let all = ["ann@x.test", "bob@x.test", "cy@y.test", "dee@y.test"];
    let cases: &[(&str, &[&str])] = &[
        ("", &all),
        (r#"country = "jp""#, &["ann@x.test", "bob@x.test"]),
        // Missing values: != selects them, = does not, and not(=) is the complement.
        (r#"country != "JP""#, &["cy@y.test", "dee@y.test"]),
        (r#"not country = "JP""#, &["cy@y.test", "dee@y.test"]),
        ("signed_up > now() - 30d", &["ann@x.test", "cy@y.test"]),
        ("signed_up <= now() - 30d", &["bob@x.test"]),
        (r#"plan = "PRO" and score >= 5"#, &["ann@x.test"]),
        (
            r#"plan in ["free", "pro"] and not vip = true"#,
            &["bob@x.test", "cy@y.test"],
        ),
        ("score is set", &["ann@x.test", "bob@x.test"]),
        ("city is not set", &["dee@y.test"]),
        (r#"city contains "SAK""#, &["bob@x.test"]),
        (r#"city starts_with "ky""#, &["ann@x.test"]),
        (r#"city = "O'Brien \"town\"""#, &["cy@y.test"]),
        (r#"address starts_with "ANN@""#, &["ann@x.test"]),
        (r#"in_list("Newsletter")"#, &["ann@x.test", "cy@y.test"]),
        (
            r#"in_list("Newsletter", status: "unsubscribed")"#,
            &["bob@x.test"],
        ),
        ("opened(within: 30d)", &["ann@x.test"]),
        (
            "opened(within: 180d) or clicked(within: 2d)",
            &["ann@x.test", "bob@x.test", "cy@y.test"],
        ),
        ("suppressed()", &["bob@x.test"]),
        (
            r#"country = "JP" and signed_up > now() - 30d and opened(within: 90d)"#,
            &["ann@x.test"],
        ),
        (
            r#"(plan = "pro" or vip = true) and not suppressed()"#,
            &["ann@x.test", "cy@y.test"],
        ),
        // Text that looks like SQL is compared as text.
        (r#"city = "x' OR 1=1 --""#, &[]),
        (r#"city = "\") OR 1=1 --""#, &[]),
    ];
    for (text, want) in cases {
        assert_eq!(f.select(text).await, *want, "{text}");
    }
}

#[tokio::test]
async fn saved_segments_keep_their_text_per_tenant_on_sqlite() {
    saved_segments_keep_their_text_per_tenant(on_sqlite().await).await;
}

#[tokio::test]
async fn saved_segments_keep_their_text_per_tenant_on_postgres() {
    saved_segments_keep_their_text_per_tenant(on_postgres().await).await;
}

async fn saved_segments_keep_their_text_per_tenant<S: AudienceStore + ControlStore + EventStore>(
    f: Fixture<S>,
) {
    let saved = f
        .store
        .save_segment(&f.tenant, "Japan", r#"country = "JP""#)
        .await
        .unwrap();
    let again = f
        .store
        .save_segment(&f.tenant, "Japan", r#"country = "JP" and vip = true"#)
        .await
        .unwrap();
    assert_eq!(again.id, saved.id, "same name: the text is replaced");
    let other = f.store.tenant("beta").await.unwrap().unwrap().id;
    assert!(f.store.segment(&other, &saved.id).await.unwrap().is_none());
    let found = f.store.segment(&f.tenant, "Japan").await.unwrap().unwrap();
    assert_eq!(f.select(&found.query).await, ["ann@x.test"]);
    assert!(f.store.remove_segment(&f.tenant, &saved.id).await.unwrap());
    assert!(f.store.segments(&f.tenant).await.unwrap().is_empty());
}
