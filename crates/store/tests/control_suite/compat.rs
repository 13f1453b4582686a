//! The compatible APIs' integer ids and job results on both stores.

use store::{CompatKind, CompatStore, ControlStore};

/// Numbers are stable per object, never shared across tenants, and a number is looked up
/// only within its tenant and kind.
pub async fn compat_numbers_are_stable_and_tenant_scoped<S: ControlStore + CompatStore>(store: &S) {
    let t1 = store.add_tenant("acme").await.unwrap().id;
    let t2 = store.add_tenant("beta").await.unwrap().id;
    let ids = vec!["ls_a".to_string(), "ls_b".to_string()];
    let first = store.numbers(&t1, CompatKind::List, &ids).await.unwrap();
    let again = store.numbers(&t1, CompatKind::List, &ids).await.unwrap();
    assert_eq!(first, again);
    assert_ne!(first[0], first[1]);
    let other = store
        .numbers(&t2, CompatKind::List, &ids[..1])
        .await
        .unwrap();
    assert_ne!(other[0], first[0]);
    assert_eq!(
        store
            .object(&t1, CompatKind::List, first[1])
            .await
            .unwrap()
            .as_deref(),
        Some("ls_b")
    );
    assert_eq!(
        store.object(&t2, CompatKind::List, first[1]).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .object(&t1, CompatKind::Template, first[1])
            .await
            .unwrap(),
        None
    );
    let job = store
        .add_job(&t1, "many", r#"{"Status":"Completed"}"#)
        .await
        .unwrap();
    assert!(store.job(&t1, "many", job).await.unwrap().is_some());
    assert_eq!(store.job(&t2, "many", job).await.unwrap(), None);
}
