//! One test suite for the control plane (tenants, keys, domains, idempotency, the
//! objectives' counters, alerts and reports; events, suppressions and webhooks in
//! `events.rs`; console logins, sessions and audit in `console.rs`), run against both stores: SQLite on a file and
//! PostgreSQL (a throwaway server from Debian's packages, `testkit::postgres`). Cluster
//! mode's shared control plane must answer exactly as the single node's does.

mod audience;
mod campaign_sends;
mod campaigns;
mod compat;
mod console;
mod events;
mod templates;

mod cases {
    pub use super::audience::*;
    pub use super::campaign_sends::*;
    pub use super::campaigns::*;
    pub use super::compat::*;
    pub use super::console::*;
    pub use super::events::*;
    pub use super::templates::*;
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

    pub async fn slo_slots_are_saved_replaced_read_and_purged<S: store::SloStore>(store: &S) {
        use store::SloSlot;
        let slot = |slot: i64, good: u64, total: u64| SloSlot {
            slo: "delivery-7s".into(),
            grain_ms: 60_000,
            slot,
            good,
            total,
        };
        store
            .save_slo_slots(&[slot(10, 5, 6), slot(11, 1, 1)])
            .await
            .unwrap();
        store.save_slo_slots(&[slot(10, 9, 10)]).await.unwrap();
        let read = store.slo_slots(10 * 60_000).await.unwrap();
        assert_eq!(read.len(), 2);
        assert!(
            read.contains(&slot(10, 9, 10)),
            "a slot is replaced, not added to"
        );
        assert_eq!(store.purge_slo_slots(11 * 60_000).await.unwrap(), 1);
        assert_eq!(store.slo_slots(0).await.unwrap(), vec![slot(11, 1, 1)]);
    }

    pub async fn alerts_timelines_silences_reports_and_samples<S: store::OpsStore>(store: &S) {
        use store::{AlertAction, AlertRecord, ReportRecord, SilenceRecord};
        let mut alert = AlertRecord {
            id: "al_1".into(),
            rule: "deferral_jump".into(),
            labels: [("provider".to_string(), "yahoo".to_string())].into(),
            summary: "yahoo defers".into(),
            members: vec!["mx1".into(), "mx2".into()],
            priority: "P2".into(),
            level: 1,
            triggered_ms: 1_000,
            ..Default::default()
        };
        let action = |what: &str, at_ms: i64| AlertAction {
            alert_id: "al_1".into(),
            at_ms,
            action: what.into(),
            who: "tsubame".into(),
            text: String::new(),
        };
        store
            .save_alert(&alert, &[action("triggered", 1_000)])
            .await
            .unwrap();
        assert_eq!(store.open_alerts().await.unwrap(), vec![alert.clone()]);
        alert.acknowledged = Some(("ann".into(), 2_000));
        alert.resolved = Some(("ann".into(), 3_000));
        alert.miss = Some(("out_of_hours".into(), "night".into()));
        store
            .save_alert(&alert, &[action("resolved", 3_000)])
            .await
            .unwrap();
        store
            .add_alert_actions(&[action("note", 3_500)])
            .await
            .unwrap();
        assert!(store.open_alerts().await.unwrap().is_empty());
        assert_eq!(store.alert("al_1").await.unwrap(), Some(alert.clone()));
        assert_eq!(store.alerts_between(0, 2_000).await.unwrap(), vec![alert]);
        assert!(store.alerts_between(1_001, 9_000).await.unwrap().is_empty());
        let timeline: Vec<String> = store
            .alert_actions("al_1")
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.action)
            .collect();
        assert_eq!(timeline, ["triggered", "resolved", "note"]);

        let silence = SilenceRecord {
            id: "si_1".into(),
            matchers: [("alertname".to_string(), "deferral_jump".to_string())].into(),
            starts_ms: 0,
            ends_ms: 10_000,
            created_by: "ann".into(),
            comment: "known".into(),
        };
        store.add_silence(&silence).await.unwrap();
        assert_eq!(store.silences(5_000).await.unwrap(), vec![silence]);
        assert!(store.expire_silence("si_1", 6_000).await.unwrap());
        assert!(!store.expire_silence("si_1", 7_000).await.unwrap());
        assert!(store.silences(6_500).await.unwrap().is_empty());

        let report = ReportRecord {
            id: "rp_weekly_2026-W49".into(),
            kind: "weekly".into(),
            period: "2026-W49".into(),
            created_ms: 1,
            content_type: "text/plain; charset=utf-8".into(),
            body: "weekly report".into(),
        };
        assert!(store.save_report(&report).await.unwrap());
        assert!(
            !store.save_report(&report).await.unwrap(),
            "one per kind and period"
        );
        assert_eq!(
            store.report(&report.id).await.unwrap(),
            Some(report.clone())
        );
        assert_eq!(
            store.reports().await.unwrap()[0].body,
            "",
            "listed without bodies"
        );

        store.add_ops_sample(100, "{\"queued\":1}").await.unwrap();
        store.add_ops_sample(100, "{\"queued\":2}").await.unwrap();
        store.add_ops_sample(200, "{}").await.unwrap();
        assert_eq!(
            store.ops_samples(0, 150).await.unwrap(),
            vec![(100, "{\"queued\":2}".to_string())]
        );
        assert_eq!(store.purge_ops_samples(150).await.unwrap(), 1);
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
    slo_slots_are_saved_replaced_read_and_purged,
    alerts_timelines_silences_reports_and_samples,
    events_are_listed_by_filter_tag_and_tenant,
    suppressions_keep_their_first_reason_and_page_by_address,
    webhooks_follow_events_rotate_and_log_deliveries,
    logins_are_unique_per_address_and_roles_match_their_kind,
    a_password_change_ends_every_other_session,
    sessions_expire_by_age_and_idleness_and_go_with_their_login,
    the_audit_log_pages_newest_first_per_tenant,
    a_tenant_is_suspended_with_a_reason_and_reactivated,
    versions_activate_and_freeze_once_used,
    compat_numbers_are_stable_and_tenant_scoped,
    properties_are_declared_once_with_checked_names,
    upserts_fold_duplicates_merge_properties_and_keep_tenants_apart,
    list_counts_follow_members_and_consent_is_kept,
    the_audience_is_fixed_once_and_spooled_batch_by_batch,
    tracking_modes_default_to_anonymous,
    campaign_reports_are_counted_as_events_arrive,
    ab_tests_fix_a_sampled_group_count_per_variant_and_decide_once,
    campaigns_move_only_along_their_transitions,
);
