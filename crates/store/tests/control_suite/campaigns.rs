//! Campaigns on both stores: drafts change only while drafts, states move only along
//! the allowed transitions (a conditional update: two moves at once cannot both win),
//! start and finish times are kept, and another tenant sees none of it.

use store::{CampaignDraft, CampaignState, CampaignStore, ControlStore, StoreError};

fn draft(name: &str) -> CampaignDraft {
    CampaignDraft {
        name: name.into(),
        audience: r#"{"lists":["ls_1"]}"#.into(),
        content: r#"{"from":"news@acme.test","template_id":"Welcome"}"#.into(),
        schedule: None,
        rate_per_sec: Some(100),
        send_window: None,
        ab_test: None,
    }
}

fn refused<T: std::fmt::Debug>(result: Result<T, StoreError>) -> String {
    match result {
        Err(StoreError::Invalid {
            field: "state",
            reason,
        }) => reason,
        other => panic!("expected a state refusal, got {other:?}"),
    }
}

pub async fn campaigns_move_only_along_their_transitions<S: CampaignStore + ControlStore>(
    store: &S,
) {
    let a = store.add_tenant("acme").await.unwrap().id;
    let b = store.add_tenant("beta").await.unwrap().id;
    let made = store
        .add_campaign(&a, &draft("December news"))
        .await
        .unwrap();
    assert_eq!(made.state, CampaignState::Draft);
    assert!(matches!(
        store.add_campaign(&a, &draft("  ")).await,
        Err(StoreError::Invalid { field: "name", .. })
    ));

    // A draft changes; another tenant can neither see nor change it.
    let mut changed = draft("December newsletter");
    changed.rate_per_sec = None;
    assert!(store.update_draft(&a, &made.id, &changed).await.unwrap());
    assert!(!store.update_draft(&b, &made.id, &changed).await.unwrap());
    assert_eq!(store.campaign(&b, &made.id).await.unwrap(), None);
    assert!(store.campaigns(&b).await.unwrap().is_empty());
    let found = store.campaign(&a, &made.id).await.unwrap().unwrap();
    assert_eq!(found.draft, changed);

    // draft -> scheduled -> draft -> sending -> paused -> sending -> sent.
    store
        .set_campaign_state(&a, &made.id, CampaignState::Scheduled)
        .await
        .unwrap();
    refused(store.update_draft(&a, &made.id, &changed).await);
    store
        .set_campaign_state(&a, &made.id, CampaignState::Draft)
        .await
        .unwrap();
    let sending = store
        .set_campaign_state(&a, &made.id, CampaignState::Sending)
        .await
        .unwrap();
    let started = sending.started_ms.expect("started");
    let reason = refused(
        store
            .set_campaign_state(&a, &made.id, CampaignState::Scheduled)
            .await,
    );
    assert!(reason.contains("sending"), "{reason}");
    store
        .set_campaign_state(&a, &made.id, CampaignState::Paused)
        .await
        .unwrap();
    let resumed = store
        .set_campaign_state(&a, &made.id, CampaignState::Sending)
        .await
        .unwrap();
    assert_eq!(
        resumed.started_ms,
        Some(started),
        "resuming keeps the start"
    );
    assert!(matches!(
        store
            .set_campaign_state(&b, &made.id, CampaignState::Paused)
            .await,
        Err(StoreError::NotFound(_))
    ));
    let sent = store
        .set_campaign_state(&a, &made.id, CampaignState::Sent)
        .await
        .unwrap();
    assert!(sent.finished_ms.is_some());
    refused(
        store
            .set_campaign_state(&a, &made.id, CampaignState::Sending)
            .await,
    );
    // A sent campaign can still be cancelled: what waits in the queue is taken back.
    let cancelled = store
        .set_campaign_state(&a, &made.id, CampaignState::Cancelled)
        .await
        .unwrap();
    assert_eq!(cancelled.state, CampaignState::Cancelled);
    refused(
        store
            .set_campaign_state(&a, &made.id, CampaignState::Cancelled)
            .await,
    );

    // Two starts of one scheduled campaign at once: exactly one wins.
    let other = store.add_campaign(&a, &draft("January")).await.unwrap();
    store
        .set_campaign_state(&a, &other.id, CampaignState::Scheduled)
        .await
        .unwrap();
    let (first, second) = tokio::join!(
        store.set_campaign_state(&a, &other.id, CampaignState::Sending),
        store.set_campaign_state(&a, &other.id, CampaignState::Sending),
    );
    assert_eq!(
        [first.is_ok(), second.is_ok()]
            .iter()
            .filter(|ok| **ok)
            .count(),
        1,
        "{first:?} {second:?}"
    );
    let names: Vec<String> = store
        .campaigns(&a)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.draft.name)
        .collect();
    assert_eq!(names.len(), 2);
}

#[test]
fn the_transition_table() {
    use CampaignState::*;
    assert!(Draft.may_become(Sending) && Paused.may_become(Sending));
    assert!(Sent.may_become(Cancelled) && !Cancelled.may_become(Draft));
    assert!(!Cancelled.may_become(Cancelled) && !Sent.may_become(Sending));
    assert!(!Sending.may_become(Draft));
    assert_eq!(
        CampaignState::sources(Cancelled),
        vec![Draft, Scheduled, Sending, Paused, Sent]
    );
    for state in CampaignState::ALL {
        assert_eq!(CampaignState::parse(state.as_str()), Some(state));
    }
}
