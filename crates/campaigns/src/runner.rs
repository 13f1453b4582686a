//! The campaigns' loop: a scheduled campaign whose time has come is started (its audience
//! resolved and fixed), and every campaign in `sending` is expanded by one task until it is
//! spooled, paused or cancelled. A run that fails (spool full, store busy) is tried again.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use store::{AudienceStore, Campaign, CampaignState, CampaignStore};
use tokio::sync::Notify;

use crate::ab::{AbTest, Metric};
use crate::documents::{Audience, DocumentError};
use crate::expand::{Ended, Expansion, SendError, Sending};
use crate::timing::Timing;
use crate::winner::Tally;

/// How often the loop looks for due and unfinished campaigns without being woken.
const TICK: Duration = Duration::from_secs(1);
/// How long a failed run waits before it is tried again.
const RETRY: Duration = Duration::from_secs(5);

/// Resolves the campaign's audience, fixes it, and moves the campaign to `sending`.
pub async fn start<S: CampaignStore + AudienceStore>(
    store: &S,
    campaign: &Campaign,
) -> Result<Campaign, SendError> {
    let document: serde_json::Value =
        serde_json::from_str(&campaign.draft.audience).map_err(|_| DocumentError {
            field: "audience".into(),
            message: "is not JSON".into(),
        })?;
    let audience = Audience::read(&document)?;
    let mut plan = crate::plan::resolve(store, &campaign.tenant_id, &audience).await?;
    if let Some(test) = ab_test(campaign)? {
        plan.test_percent = Some(test.test_percent);
        plan.test_minimum = test.variants.len() as i64;
    }
    let count = store
        .fix_audience(&campaign.tenant_id, &campaign.id, &plan)
        .await?;
    let started = store
        .set_campaign_state(&campaign.tenant_id, &campaign.id, CampaignState::Sending)
        .await?;
    tracing::info!(campaign = %campaign.id, tenant = %campaign.tenant_id, recipients = count, "campaign started");
    Ok(started)
}

/// The campaign's A/B test, if it has one.
pub fn ab_test(campaign: &Campaign) -> Result<Option<AbTest>, DocumentError> {
    let Some(text) = campaign.draft.ab_test.as_deref() else {
        return Ok(None);
    };
    let value = serde_json::from_str(text).map_err(|_| DocumentError {
        field: "ab".into(),
        message: "is not JSON".into(),
    })?;
    AbTest::read(&value, None).map(Some)
}

/// Each variant's tally from the campaign's counters: unique human opens or clicks over
/// delivered messages (over sent ones while none is delivered).
pub async fn tallies<S: CampaignStore>(
    store: &S,
    campaign: &Campaign,
    test: &AbTest,
) -> Result<Vec<Tally>, SendError> {
    let counts = store.campaign_counts(&campaign.id).await?;
    let get = |metric: &str, n: usize| {
        let dimension = format!("variant:{n}");
        counts
            .iter()
            .find(|(m, d, _)| m == metric && *d == dimension)
            .map_or(0, |(_, _, c)| *c)
    };
    let engaged = match test.metric {
        Metric::Opens => "opened_unique",
        Metric::Clicks => "clicked_unique",
    };
    Ok((0..test.variants.len())
        .map(|n| {
            let delivered = get("delivered", n);
            Tally {
                delivered: if delivered > 0 {
                    delivered
                } else {
                    get("sent", n)
                },
                engaged: get(engaged, n),
            }
        })
        .collect())
}

/// Decides an A/B campaign's winner now from its counters, or takes `chosen` (an
/// operator's pick). Returns the decision made, or `None` when one was made before.
pub async fn decide<S: CampaignStore>(
    store: &S,
    campaign: &Campaign,
    chosen: Option<usize>,
) -> Result<Option<(usize, String)>, SendError> {
    let Some(test) = ab_test(campaign)? else {
        return Err(DocumentError {
            field: "ab".into(),
            message: "the campaign has no A/B test".into(),
        }
        .into());
    };
    let (winner, reason) = match chosen {
        Some(n) if n < test.variants.len() => (
            n,
            format!("{} chosen by an operator", test.variants[n].name),
        ),
        Some(n) => {
            return Err(DocumentError {
                field: "variant".into(),
                message: format!(
                    "the test has variants 0 to {}, not {n}",
                    test.variants.len() - 1
                ),
            }
            .into());
        }
        None => {
            let decision = crate::winner::decide(&test, &tallies(store, campaign, &test).await?);
            (decision.winner, decision.reason)
        }
    };
    let made = store
        .decide_winner(&campaign.tenant_id, &campaign.id, winner as i64, &reason)
        .await?;
    if made {
        tracing::info!(campaign = %campaign.id, winner, %reason, "A/B test decided");
    }
    Ok(made.then_some((winner, reason)))
}

/// Runs forever: starts due campaigns and expands sending ones. `wake` makes it look at
/// once (a campaign was just started or resumed).
pub async fn run<S, X>(expansion: Arc<Expansion<S, X>>, wake: Arc<Notify>)
where
    S: CampaignStore + AudienceStore + 'static,
    X: Sending,
{
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    loop {
        expansion.duty.wait().await;
        if let Err(err) = start_due(&*expansion.store).await {
            tracing::warn!(error = %err, "looking for due campaigns failed");
        }
        match expansion
            .store
            .campaigns_in_state(CampaignState::Sending)
            .await
        {
            Ok(sending) => {
                for mut campaign in sending {
                    if campaign.testing() {
                        match campaign.ab.decide_at_ms {
                            // The test group is still being spooled.
                            None => {}
                            Some(at) if at <= jiff::Timestamp::now().as_millisecond() => {
                                match decide(&*expansion.store, &campaign, None).await {
                                    Ok(_) => {}
                                    Err(err) => {
                                        tracing::warn!(campaign = %campaign.id, error = %err, "deciding an A/B test failed");
                                        continue;
                                    }
                                }
                                match expansion
                                    .store
                                    .campaign(&campaign.tenant_id, &campaign.id)
                                    .await
                                {
                                    Ok(Some(fresh)) => campaign = fresh,
                                    _ => continue,
                                }
                            }
                            Some(_) => continue,
                        }
                    }
                    let mut taken = running.lock().unwrap_or_else(|p| p.into_inner());
                    if !taken.insert(campaign.id.clone()) {
                        continue;
                    }
                    drop(taken);
                    tokio::spawn(expand_one(expansion.clone(), running.clone(), campaign));
                }
            }
            Err(err) => tracing::warn!(error = %err, "listing sending campaigns failed"),
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(TICK) => {}
        }
    }
}

async fn start_due<S: CampaignStore + AudienceStore>(store: &S) -> Result<(), SendError> {
    let now = jiff::Timestamp::now();
    for campaign in store.campaigns_in_state(CampaignState::Scheduled).await? {
        let due = match Timing::of(&campaign) {
            Ok(timing) => timing.starts_at().is_none_or(|at| at <= now),
            Err(_) => true,
        };
        if !due {
            continue;
        }
        if let Err(err) = start(store, &campaign).await {
            // A scheduled campaign whose audience no longer resolves (a list deleted
            // since) stays scheduled and says why in the log; the console shows it late.
            tracing::warn!(campaign = %campaign.id, error = %err, "a due campaign could not start");
        }
    }
    Ok(())
}

async fn expand_one<S, X>(
    expansion: Arc<Expansion<S, X>>,
    running: Arc<Mutex<HashSet<String>>>,
    campaign: Campaign,
) where
    S: CampaignStore + AudienceStore + 'static,
    X: Sending,
{
    let ended = expansion.run(&campaign).await;
    match ended {
        Ok(Ended::Finished) => {
            tracing::info!(campaign = %campaign.id, "campaign spooled to its last recipient")
        }
        Ok(Ended::Testing) => {
            tracing::info!(campaign = %campaign.id, "A/B test group spooled; waiting for the winner")
        }
        Ok(Ended::OffDuty) => {
            tracing::info!(campaign = %campaign.id, "campaign expansion handed to the node on duty")
        }
        Ok(Ended::Stopped(state)) => {
            tracing::info!(campaign = %campaign.id, state = state.as_str(), "campaign stopped")
        }
        Err(SendError::Document(err)) => {
            // The content or audience stopped checking since the start (a sending domain
            // or template removed): waiting will not fix it, the tenant must.
            tracing::warn!(campaign = %campaign.id, error = %err, "campaign paused: its documents no longer check");
            if let Err(err) = expansion
                .store
                .set_campaign_state(&campaign.tenant_id, &campaign.id, CampaignState::Paused)
                .await
            {
                tracing::warn!(campaign = %campaign.id, error = %err, "pausing a campaign failed");
            }
        }
        Err(err) => {
            tracing::warn!(campaign = %campaign.id, error = %err, "campaign run failed; tried again shortly");
            tokio::time::sleep(RETRY).await;
        }
    }
    running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&campaign.id);
}
