//! The SQLite control plane on a real file: keys never stored in clear, usage across reopening
//! (the cases shared with PostgreSQL are in control_suite.rs).

use store::{ControlStore, Scope, Scopes, SqliteStore};

async fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("control.db"))
        .await
        .expect("open store")
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
