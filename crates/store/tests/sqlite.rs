//! The SQLite control plane on a real file: tenants, keys, isolation, persistence.

use store::{ControlStore, Scope, Scopes, SqliteStore, StoreError};

async fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("control.db"))
        .await
        .expect("open store")
}

#[tokio::test]
async fn tenants_are_unique_by_name_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
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

#[tokio::test]
async fn a_key_authenticates_until_revoked_and_its_secret_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let tenant = store.add_tenant("acme").await.unwrap();
    let new = store
        .add_key(&tenant.id, "app", Scopes::parse("send").unwrap())
        .await
        .expect("key");
    let found = store
        .authenticate(&new.token)
        .await
        .unwrap()
        .expect("valid key");
    assert_eq!(found.tenant_id, tenant.id);
    assert!(found.scopes.allows(Scope::Send) && !found.scopes.allows(Scope::Manage));

    // A changed secret, a malformed token or another key's id never authenticate.
    let mut forged = new.token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert!(store.authenticate(&forged).await.unwrap().is_none());
    assert!(store.authenticate("tsb_nothing").await.unwrap().is_none());
    assert!(store.authenticate("").await.unwrap().is_none());

    // Listing shows the key without its secret; the database file never holds it.
    let listed = store.keys(&tenant.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, new.key.id);
    // The secret is everything after "tsb_<12 hex>_"; base64url may hold '_' itself.
    let secret = &new.token[4 + 12 + 1..];
    drop(store);
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is stored in clear"
        );
    }

    // Still there after reopening; then revoked, and revoked means refused.
    let store = open(&dir).await;
    assert!(store.authenticate(&new.token).await.unwrap().is_some());
    assert!(store.revoke_key(&tenant.id, &new.key.id).await.unwrap());
    assert!(!store.revoke_key(&tenant.id, &new.key.id).await.unwrap());
    assert!(store.authenticate(&new.token).await.unwrap().is_none());
    assert!(
        store.keys(&tenant.id).await.unwrap()[0]
            .revoked_ms
            .is_some()
    );
}

#[tokio::test]
async fn tenants_cannot_touch_each_others_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
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

#[tokio::test]
async fn daily_usage_adds_up_per_tenant_and_day_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let a = store.add_tenant("a").await.unwrap();
    let b = store.add_tenant("b").await.unwrap();
    store.add_usage(&a.id, 20_000, 50).await.unwrap();
    store.add_usage(&a.id, 20_000, 25).await.unwrap();
    store.add_usage(&a.id, 20_001, 1).await.unwrap();
    store.add_usage(&b.id, 20_000, 7).await.unwrap();
    drop(store);
    let store = open(&dir).await;
    assert_eq!(store.usage(&a.id, 20_000).await.unwrap(), 75);
    assert_eq!(store.usage(&a.id, 20_001).await.unwrap(), 1);
    assert_eq!(store.usage(&b.id, 20_000).await.unwrap(), 7);
    assert_eq!(store.usage(&b.id, 19_999).await.unwrap(), 0);
}

#[tokio::test]
async fn idempotency_keys_claim_replay_refuse_and_expire() {
    use store::{Idempotent, StoredResponse};
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
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

#[tokio::test]
async fn sending_domains_belong_to_one_tenant() {
    use store::SendingDomain;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
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
