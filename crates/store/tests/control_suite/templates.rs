//! Stored templates on both stores: numbered versions, the first active, a version a
//! message used is immutable, and another tenant sees none of it.

use store::{ControlStore, Dialect, StoreError, TemplateStore, VersionContent};

fn content(subject: &str) -> VersionContent {
    VersionContent {
        subject: subject.into(),
        html: Some("<p>Hi {{name}}</p>".into()),
        text: None,
        test_data: r#"{"name":"Ann"}"#.into(),
    }
}

pub async fn versions_activate_and_freeze_once_used<S: ControlStore + TemplateStore>(store: &S) {
    let a = store.add_tenant("acme").await.unwrap().id;
    let b = store.add_tenant("beta").await.unwrap().id;
    let welcome = store
        .add_template(&a, "Welcome", Dialect::Handlebars)
        .await
        .unwrap();
    assert!(matches!(
        store.add_template(&a, "Welcome", Dialect::Native).await,
        Err(StoreError::Invalid { field: "name", .. })
    ));
    let v1 = store
        .add_version(&a, &welcome.id, &content("v1"), false)
        .await
        .unwrap();
    let v2 = store
        .add_version(&a, &welcome.id, &content("v2"), false)
        .await
        .unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    let found = store.template(&a, "Welcome").await.unwrap().unwrap();
    assert_eq!(found.active_version, Some(1), "the first version is active");
    assert!(store.activate_version(&a, &welcome.id, 2).await.unwrap());
    assert!(!store.activate_version(&a, &welcome.id, 9).await.unwrap());
    assert_eq!(
        store
            .template(&a, &welcome.id)
            .await
            .unwrap()
            .unwrap()
            .active_version,
        Some(2)
    );

    // Unused: editable. Used: frozen, with a reason naming `version`.
    assert!(
        store
            .update_version(&a, &welcome.id, 1, &content("v1 edited"))
            .await
            .unwrap()
    );
    store.mark_version_used(&welcome.id, 1).await.unwrap();
    assert!(matches!(
        store
            .update_version(&a, &welcome.id, 1, &content("again"))
            .await,
        Err(StoreError::Invalid {
            field: "version",
            ..
        })
    ));
    let versions = store.versions(&a, &welcome.id).await.unwrap();
    assert_eq!(versions[0].content.subject, "v1 edited");
    assert!(versions[0].used_ms.is_some());

    // Another tenant: nothing.
    assert!(store.template(&b, &welcome.id).await.unwrap().is_none());
    assert!(store.versions(&b, &welcome.id).await.unwrap().is_empty());
    assert!(matches!(
        store
            .add_version(&b, &welcome.id, &content("x"), true)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(!store.remove_template(&b, &welcome.id).await.unwrap());
    assert!(store.remove_template(&a, &welcome.id).await.unwrap());
    assert!(store.versions(&a, &welcome.id).await.unwrap().is_empty());
}
