//! One test suite for the control plane, run against both stores: SQLite on a file and
//! PostgreSQL (a throwaway server from Debian's packages, `testkit::postgres`). Cluster
//! mode's shared control plane must answer exactly as the single node's does.

mod cases {
    use store::{ControlStore, Scopes, StoreError};

    pub async fn tenants_are_unique_by_name_and_listed<S: ControlStore>(store: &S) {
        let a = store.add_tenant("acme").await.expect("acme");
        store.add_tenant("beta-co").await.expect("beta");
        assert!(matches!(
            store.add_tenant("acme").await,
            Err(StoreError::DuplicateTenant(_))
        ));
        for bad in ["", "has space", "semi;colon", &"x".repeat(65)] {
            assert!(
                matches!(store.add_tenant(bad).await, Err(StoreError::Invalid { .. })),
                "{bad:?} accepted"
            );
        }
        let names: Vec<_> = store
            .tenants()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["acme", "beta-co"]);
        assert_eq!(store.tenant("acme").await.unwrap().unwrap().id, a.id);
        assert_eq!(store.tenant(&a.id).await.unwrap().unwrap().name, "acme");
        store
            .set_tenant_limits(&a.id, Some(100), Some(50_000))
            .await
            .unwrap();
        let acme = store.tenant("acme").await.unwrap().unwrap();
        assert_eq!(
            (acme.rate_per_sec, acme.daily_quota),
            (Some(100), Some(50_000))
        );
        assert!(store.set_tenant_limits(&a.id, Some(0), None).await.is_err());
    }

    pub async fn tenants_cannot_touch_each_others_keys<S: ControlStore>(store: &S) {
        let a = store.add_tenant("a").await.unwrap();
        let b = store.add_tenant("b").await.unwrap();
        let key_b = store
            .add_key(&b.id, "b-app", Scopes::parse("all").unwrap())
            .await
            .unwrap();
        assert!(store.keys(&a.id).await.unwrap().is_empty());
        assert!(!store.revoke_key(&a.id, &key_b.key.id).await.unwrap());
        assert!(store.authenticate(&key_b.token).await.unwrap().is_some());
        assert!(matches!(
            store
                .add_key("t_missing", "x", Scopes::parse("send").unwrap())
                .await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.add_key(&a.id, "none", Scopes::default()).await,
            Err(StoreError::Invalid {
                field: "scopes",
                ..
            })
        ));
        // Removing a tenant removes its keys with it.
        assert!(store.remove_tenant(&b.id).await.unwrap());
        assert!(store.authenticate(&key_b.token).await.unwrap().is_none());
        assert!(!store.remove_tenant(&b.id).await.unwrap());
    }

    pub async fn idempotency_keys_claim_replay_refuse_and_expire<S: ControlStore>(store: &S) {
        use store::{Idempotent, StoredResponse};
        let a = store.add_tenant("a").await.unwrap();
        let b = store.add_tenant("b").await.unwrap();
        let day = 24 * 3600 * 1000;
        let request = store::keys::sha256(b"{\"messages\":[]}");
        assert_eq!(
            store
                .begin_idempotent(&a.id, "k1", &request, day)
                .await
                .unwrap(),
            Idempotent::New
        );
        // While the first runs, the same key waits; another tenant's "k1" is its own.
        assert_eq!(
            store
                .begin_idempotent(&a.id, "k1", &request, day)
                .await
                .unwrap(),
            Idempotent::InProgress
        );
        assert_eq!(
            store
                .begin_idempotent(&b.id, "k1", &request, day)
                .await
                .unwrap(),
            Idempotent::New
        );
        let answer = StoredResponse {
            status: 200,
            headers: vec![("x-message-id".into(), "01ABC".into())],
            body: b"{\"ok\":true}".to_vec(),
        };
        store
            .finish_idempotent(&a.id, "k1", Some(&answer))
            .await
            .unwrap();
        assert_eq!(
            store
                .begin_idempotent(&a.id, "k1", &request, day)
                .await
                .unwrap(),
            Idempotent::Done(answer)
        );
        let other = store::keys::sha256(b"something else");
        assert_eq!(
            store
                .begin_idempotent(&a.id, "k1", &other, day)
                .await
                .unwrap(),
            Idempotent::Mismatch
        );
        // A released key (429, 5xx) can be claimed again.
        store.finish_idempotent(&b.id, "k1", None).await.unwrap();
        assert_eq!(
            store
                .begin_idempotent(&b.id, "k1", &request, day)
                .await
                .unwrap(),
            Idempotent::New
        );
        // Past the retention, a key is new again.
        assert_eq!(
            store
                .begin_idempotent(&a.id, "k1", &request, -1)
                .await
                .unwrap(),
            Idempotent::New
        );
    }

    pub async fn sending_domains_belong_to_one_tenant<S: ControlStore>(store: &S) {
        use store::SendingDomain;
        let a = store.add_tenant("a").await.unwrap();
        let b = store.add_tenant("b").await.unwrap();
        let domain = |tenant: &str, name: &str| SendingDomain {
            domain: name.into(),
            tenant_id: tenant.into(),
            selector: "ts1".into(),
            algorithm: "rsa".into(),
            private_key: vec![1, 2, 3],
            public_key: "PUB".into(),
            created_ms: 0,
        };
        let added = store
            .add_domain(domain(&a.id, "Acme.Example"))
            .await
            .unwrap();
        assert_eq!(added.domain, "acme.example");
        assert!(matches!(
            store.add_domain(domain(&a.id, "acme.example")).await,
            Err(StoreError::DuplicateDomain(_))
        ));
        assert!(matches!(
            store.add_domain(domain(&b.id, "ACME.example")).await,
            Err(StoreError::DomainTaken(_))
        ));
        assert!(matches!(
            store.add_domain(domain(&a.id, "not a domain")).await,
            Err(StoreError::Invalid { .. })
        ));
        let found = store
            .sending_domain(&a.id, "ACME.EXAMPLE.")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.private_key, [1, 2, 3]);
        assert!(
            store
                .sending_domain(&b.id, "acme.example")
                .await
                .unwrap()
                .is_none()
        );
        assert!(!store.remove_domain(&b.id, "acme.example").await.unwrap());
        assert_eq!(store.domains(&a.id).await.unwrap().len(), 1);
        assert!(store.remove_domain(&a.id, "acme.example").await.unwrap());
        assert!(store.domains(&a.id).await.unwrap().is_empty());
    }
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let store = store::SqliteStore::open(&dir.path().join("control.db"))
                        .await
                        .expect("open");
                    super::cases::$case(&store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let server = testkit::postgres::PgServer::start();
                    let store = store::PgStore::connect(&server.url()).await.expect("connect");
                    super::cases::$case(&store).await;
                }
            )*
        }
    };
}

suite!(
    tenants_are_unique_by_name_and_listed,
    tenants_cannot_touch_each_others_keys,
    idempotency_keys_claim_replay_refuse_and_expire,
    sending_domains_belong_to_one_tenant,
);
