//! Imports on both real stores (SQLite on a file, PostgreSQL from Debian's packages): a UTF-8 file with a BOM and a Shift_JIS one, mapped
//! from their headers; refused rows reported by line; suppressed addresses flagged;
//! contacts put on a list; and a job cut off mid-way (its task aborted, as by a crash)
//! taken over by another worker, ending with every row written once.

use std::time::Duration;

use imports::ImportsConfig;
use imports::stage::{ImportRequest, stage_copy};
use store::{ControlStore, Existing, ImportState, PgStore, PropertyKind, SqliteStore};

use imports::Store;

async fn sqlite(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("control.db"))
        .await
        .unwrap()
}

macro_rules! on_both {
    ($case:ident) => {
        mod $case {
            #[tokio::test]
            async fn on_sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let store = super::sqlite(&dir).await;
                super::$case(store, &dir).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                let dir = tempfile::tempdir().unwrap();
                let server = testkit::postgres::PgServer::start();
                let store = super::PgStore::connect(&server.url()).await.unwrap();
                super::$case(store, &dir).await;
            }
        }
    };
}

on_both!(utf8_and_shift_jis_files_import_with_errors_by_line);
on_both!(a_job_cut_off_mid_way_is_taken_over_and_writes_each_row_once);

async fn setup<S: Store + ControlStore>(
    store: S,
    dir: &tempfile::TempDir,
) -> (S, String, ImportsConfig) {
    let tenant = store.add_tenant("acme").await.unwrap().id;
    store
        .add_property(
            &tenant,
            "plan",
            &PropertyKind::Choice(vec!["free".into(), "pro".into()]),
        )
        .await
        .unwrap();
    store
        .add_property(&tenant, "name", &PropertyKind::Text)
        .await
        .unwrap();
    let mut config = ImportsConfig::new(dir.path().join("imports"));
    config.batch_rows = 100;
    config.lease = Duration::from_millis(300);
    (store, tenant, config)
}

fn request(tenant: &str, list: Option<&str>) -> ImportRequest {
    ImportRequest {
        tenant_id: tenant.into(),
        name: "list.csv".into(),
        mapping: vec![],
        existing: Existing::Update,
        list: list.map(str::to_string),
    }
}

async fn utf8_and_shift_jis_files_import_with_errors_by_line<S: Store + ControlStore>(
    store: S,
    dir: &tempfile::TempDir,
) {
    let (store, tenant, config) = setup(store, dir).await;
    store.add_list(&tenant, "Newsletter", false).await.unwrap();
    store
        .add_suppressions(&tenant, &[("gone@x.test".into(), "bounce".into())])
        .await
        .unwrap();
    let mut text = String::from("\u{feff}E-mail,Plan,Name,Country\r\n");
    text.push_str("ann@x.test,pro,\"Ann \"\"A\"\" Lee\",jp\r\n");
    text.push_str("not-an-address,pro,Bad,JP\r\n");
    text.push_str("\"bob@x.test\",gold,Bob,JP\r\n");
    text.push_str("gone@x.test,free,\"Multi\r\nLine\",US\r\n");
    text.push_str("ANN@x.test,free,,\r\n");
    let path = dir.path().join("utf8.csv");
    std::fs::write(&path, &text).unwrap();
    let job = stage_copy(
        &store,
        &config,
        &path,
        &request(&tenant, Some("Newsletter")),
    )
    .await
    .unwrap();
    assert_eq!(job.encoding, "utf-8");
    let job = store
        .claim_import(Some(&job.id), "w1", 10_000)
        .await
        .unwrap()
        .unwrap();
    imports::worker::work(&store, &config, job.clone(), "w1", |_| {})
        .await
        .unwrap();
    let done = store.import(&tenant, &job.id).await.unwrap().unwrap();
    assert_eq!(done.state, ImportState::Done);
    assert_eq!(
        (done.added, done.updated, done.refused, done.suppressed),
        (2, 0, 2, 1)
    );
    let errors = store.import_errors(&tenant, &job.id, 0, 100).await.unwrap();
    assert_eq!(errors.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [3, 4]);
    assert!(errors[1].1.contains("plan"), "{errors:?}");
    let ann = store.contact(&tenant, "ann@x.test").await.unwrap().unwrap();
    assert_eq!(
        ann.properties["plan"], "free",
        "the later duplicate row wins"
    );
    assert_eq!(ann.properties["name"], "Ann \"A\" Lee");
    assert_eq!(
        ann.country.as_deref(),
        Some("JP"),
        "an empty cell clears nothing"
    );
    let gone = store
        .contact(&tenant, "gone@x.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.properties["name"], "Multi\r\nLine");
    let list = store.list(&tenant, "Newsletter").await.unwrap().unwrap();
    assert_eq!(list.subscribed, 2);

    // The same people, as Japanese spreadsheet software saves them.
    let sjis_text =
        "メールアドレス,name,国\r\nyamada@x.test,山田太郎,JP\r\nsuzuki@x.test,鈴木花子,jp\r\n";
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(sjis_text);
    let path = dir.path().join("sjis.csv");
    std::fs::write(&path, &sjis).unwrap();
    let job = stage_copy(&store, &config, &path, &request(&tenant, None))
        .await
        .unwrap();
    assert_eq!(job.encoding, "shift_jis");
    let job = store
        .claim_import(Some(&job.id), "w1", 10_000)
        .await
        .unwrap()
        .unwrap();
    imports::worker::work(&store, &config, job, "w1", |_| {})
        .await
        .unwrap();
    let yamada = store
        .contact(&tenant, "yamada@x.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(yamada.properties["name"], "山田太郎");

    // A file without an address column is refused before it becomes a job.
    let path = dir.path().join("bad.csv");
    std::fs::write(&path, "name,plan\nx,pro\n").unwrap();
    assert!(
        stage_copy(&store, &config, &path, &request(&tenant, None))
            .await
            .is_err()
    );
}

async fn a_job_cut_off_mid_way_is_taken_over_and_writes_each_row_once<S: Store + ControlStore>(
    store: S,
    dir: &tempfile::TempDir,
) {
    let (store, tenant, config) = setup(store, dir).await;
    let mut text = String::from("email,plan\n");
    for i in 0..5000 {
        // Every 7th row is refused.
        let plan = if i % 7 == 0 { "gold" } else { "pro" };
        text.push_str(&format!("u{i}@x.test,{plan}\n"));
    }
    let path = dir.path().join("big.csv");
    std::fs::write(&path, &text).unwrap();
    let job = stage_copy(&store, &config, &path, &request(&tenant, None))
        .await
        .unwrap();
    let claimed = store
        .claim_import(Some(&job.id), "first", 300)
        .await
        .unwrap()
        .unwrap();

    // The first worker dies after a few batches: its task is aborted where it stands.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let first = {
        let (store, config) = (store.clone(), config.clone());
        tokio::spawn(async move {
            imports::worker::work(&store, &config, claimed, "first", move |p| {
                let _ = tx.send(p);
            })
            .await
        })
    };
    let mut seen = 0;
    while let Some(p) = rx.recv().await {
        seen = p.records;
        if p.records >= 1500 {
            break;
        }
    }
    first.abort();
    let _ = first.await;
    assert!((1500..5000).contains(&seen), "cut at {seen}");
    let midway = store.import(&tenant, &job.id).await.unwrap().unwrap();
    assert_eq!(midway.state, ImportState::Running);

    // While the lease holds nobody else takes it; after, another worker does.
    assert!(
        store
            .claim_import(None, "second", 300)
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let taken = store
        .claim_import(None, "second", 300)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.id, job.id);
    assert!(taken.records_done >= 1500);
    imports::worker::work(&store, &config, taken, "second", |_| {})
        .await
        .unwrap();
    let done = store.import(&tenant, &job.id).await.unwrap().unwrap();
    let refused = (0..5000).filter(|i| i % 7 == 0).count() as i64;
    assert_eq!(done.state, ImportState::Done);
    assert_eq!(
        (done.added, done.updated, done.refused),
        (5000 - refused, 0, refused)
    );
    assert_eq!(done.records_done, 5000);
    assert_eq!(store.contact_count(&tenant).await.unwrap(), 5000 - refused);
    let errors = store
        .import_errors(&tenant, &job.id, 0, 10_000)
        .await
        .unwrap();
    assert_eq!(
        errors.len() as i64,
        refused,
        "no refused row reported twice"
    );
    // The first worker's lost lease: its late batch would be refused.
    assert!(
        store
            .import_batch(&job.id, "first", 300, &Default::default())
            .await
            .is_err()
    );
}
