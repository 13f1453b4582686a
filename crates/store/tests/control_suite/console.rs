//! Console logins, sessions, the audit log and tenant suspension: both stores.

use store::{ConsoleStore, ControlStore, Role, Session, StoreError};

fn session(id: u8, login: &str, created_ms: i64, seen_ms: i64) -> Session {
    Session {
        id_sha256: vec![id; 32],
        login_id: login.into(),
        csrf: format!("csrf-{id}"),
        created_ms,
        seen_ms,
        pending_second_factor: false,
        address: "127.0.0.1".into(),
    }
}

pub async fn logins_are_unique_per_address_and_roles_match_their_kind<
    S: ControlStore + ConsoleStore,
>(
    store: &S,
) {
    let acme = store.add_tenant("acme").await.unwrap().id;
    let ann = store
        .add_login("Ann@Acme.Example", Some(&acme), Role::Owner, "$argon2id$x")
        .await
        .unwrap();
    assert_eq!(ann.email, "ann@acme.example");
    let again = store
        .add_login("ann@acme.example", Some(&acme), Role::Viewer, "$argon2id$y")
        .await;
    assert!(
        matches!(again, Err(StoreError::Invalid { field: "email", .. })),
        "{again:?}"
    );
    // An operator has no tenant; a tenant role needs one.
    assert!(
        store
            .add_login("ops@x.example", Some(&acme), Role::Operator, "h")
            .await
            .is_err()
    );
    assert!(
        store
            .add_login("bob@x.example", None, Role::Viewer, "h")
            .await
            .is_err()
    );
    assert!(
        store
            .add_login("not an address", Some(&acme), Role::Viewer, "h")
            .await
            .is_err()
    );
    assert!(matches!(
        store
            .add_login("c@x.example", Some("t_nope"), Role::Viewer, "h")
            .await,
        Err(StoreError::NotFound(_))
    ));
    let ops = store
        .add_login("ops@platform.example", None, Role::Operator, "h")
        .await
        .unwrap();
    assert_eq!(
        store.login("ANN@acme.example").await.unwrap().unwrap().id,
        ann.id
    );
    assert_eq!(
        store.login(&ops.id).await.unwrap().unwrap().role,
        Role::Operator
    );
    let all: Vec<String> = store
        .logins(None)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.email)
        .collect();
    assert_eq!(all, ["ops@platform.example", "ann@acme.example"]);
    assert_eq!(store.logins(Some(&acme)).await.unwrap().len(), 1);
    // Removing the tenant removes its logins.
    store.remove_tenant(&acme).await.unwrap();
    assert!(store.login("ann@acme.example").await.unwrap().is_none());
}

pub async fn a_password_change_ends_every_other_session<S: ControlStore + ConsoleStore>(store: &S) {
    let acme = store.add_tenant("acme").await.unwrap().id;
    let ann = store
        .add_login("ann@acme.example", Some(&acme), Role::Owner, "old")
        .await
        .unwrap();
    for id in 1..=3 {
        store
            .add_session(&session(id, &ann.id, 1000, 1000))
            .await
            .unwrap();
    }
    assert!(
        store
            .set_password(&ann.id, "new", Some(&[2; 32]))
            .await
            .unwrap()
    );
    assert!(store.session(&[1; 32]).await.unwrap().is_none());
    assert!(store.session(&[2; 32]).await.unwrap().is_some());
    assert!(store.session(&[3; 32]).await.unwrap().is_none());
    assert_eq!(
        store.login(&ann.id).await.unwrap().unwrap().password_hash,
        "new"
    );
    // Without a session to keep (the command line), every session ends.
    assert!(store.set_password(&ann.id, "newer", None).await.unwrap());
    assert!(store.session(&[2; 32]).await.unwrap().is_none());
}

pub async fn sessions_expire_by_age_and_idleness_and_go_with_their_login<
    S: ControlStore + ConsoleStore,
>(
    store: &S,
) {
    let ops = store
        .add_login("ops@platform.example", None, Role::Operator, "h")
        .await
        .unwrap();
    store
        .add_session(&session(1, &ops.id, 100, 5000))
        .await
        .unwrap(); // too old
    store
        .add_session(&session(2, &ops.id, 4000, 200))
        .await
        .unwrap(); // idle too long
    store
        .add_session(&session(3, &ops.id, 4000, 4000))
        .await
        .unwrap();
    store.touch_session(&[2; 32], 4500).await.unwrap();
    assert_eq!(store.purge_sessions(1000, 300).await.unwrap(), 1);
    assert!(
        store.session(&[2; 32]).await.unwrap().is_some(),
        "touched: not idle"
    );
    store.remove_session(&[3; 32]).await.unwrap();
    assert!(store.session(&[3; 32]).await.unwrap().is_none());
    assert!(store.remove_login(&ops.id).await.unwrap());
    assert!(store.session(&[2; 32]).await.unwrap().is_none());
}

pub async fn the_audit_log_pages_newest_first_per_tenant<S: ControlStore + ConsoleStore>(
    store: &S,
) {
    for i in 0..5 {
        let tenant = if i % 2 == 0 { Some("t_a") } else { None };
        store
            .audit(
                tenant,
                "ann@acme.example",
                "key.create",
                &format!("k{i}"),
                "10.0.0.1",
            )
            .await
            .unwrap();
    }
    let mine = store.audit_log(Some("t_a"), None, 10).await.unwrap();
    let targets: Vec<&str> = mine.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(targets, ["k4", "k2", "k0"]);
    let page = store.audit_log(None, Some(mine[0].id), 2).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(),
        ["k3", "k2"]
    );
}

pub async fn a_tenant_is_suspended_with_a_reason_and_reactivated<S: ControlStore + ConsoleStore>(
    store: &S,
) {
    let acme = store.add_tenant("acme").await.unwrap().id;
    store
        .set_tenant_suspended(&acme, Some("unpaid invoice"))
        .await
        .unwrap();
    assert_eq!(
        store
            .tenant("acme")
            .await
            .unwrap()
            .unwrap()
            .suspended
            .as_deref(),
        Some("unpaid invoice")
    );
    store.set_tenant_suspended(&acme, None).await.unwrap();
    assert_eq!(store.tenant("acme").await.unwrap().unwrap().suspended, None);
    assert!(
        store
            .set_tenant_suspended("t_nope", Some("x"))
            .await
            .is_err()
    );
}
