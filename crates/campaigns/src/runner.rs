//! The campaigns' loop: a scheduled campaign whose time has come is started (its audience
//! resolved and fixed), and every campaign in `sending` is expanded by one task until it is
//! spooled, paused or cancelled. A run that fails (spool full, store busy) is tried again.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use store::{AudienceStore, Campaign, CampaignState, CampaignStore};
use tokio::sync::Notify;

use crate::documents::{Audience, DocumentError};
use crate::expand::{Ended, Expansion, SendError, Sending};
use crate::timing::Timing;

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
    let plan = crate::plan::resolve(store, &campaign.tenant_id, &audience).await?;
    let count = store
        .fix_audience(&campaign.tenant_id, &campaign.id, &plan)
        .await?;
    let started = store
        .set_campaign_state(&campaign.tenant_id, &campaign.id, CampaignState::Sending)
        .await?;
    tracing::info!(campaign = %campaign.id, tenant = %campaign.tenant_id, recipients = count, "campaign started");
    Ok(started)
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
        if let Err(err) = start_due(&*expansion.store).await {
            tracing::warn!(error = %err, "looking for due campaigns failed");
        }
        match expansion
            .store
            .campaigns_in_state(CampaignState::Sending)
            .await
        {
            Ok(sending) => {
                for campaign in sending {
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
