//! Durable expansion: a campaign's fixed audience turned into spooled messages, batch by
//! batch, so that a crash at any moment resumes with nobody mailed twice and nobody skipped.
//!
//! Each batch goes through three steps:
//! 1. its message ids are recorded in the store as an *open* batch at the campaign's cursor;
//! 2. its messages are composed and spooled *held* (durable, group-committed, but kept from
//!    delivery);
//! 3. the batch is committed with the cursor in one transaction, then released to delivery.
//!
//! A crash before 3 leaves an open batch: [`settle_open_batches`] takes its messages back
//! out of the spool (durably) before delivery starts, and the batch is spooled again from
//! the cursor. A crash after 3 leaves committed messages in the spool, which delivery finds
//! at start-up like any other. Held messages were never seen by delivery, so none of an
//! uncommitted batch can have gone out.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spool::{Envelope, MessageId, Spool, SpoolError};
use store::{Campaign, CampaignState, CampaignStore, Contact, StoreError};

use crate::ab::AbTest;
use crate::documents::DocumentError;
use crate::timing::Timing;

/// Who gets which variant when: the campaign's timing, or for an A/B test each variant's
/// (its own send time over the campaign's) and the test group's end.
struct Plan {
    timings: Vec<Timing>,
    /// Recipients below this are the test group (dealt to the variants in turn).
    test_end: i64,
    /// The winner, once decided: the rest of the audience gets it.
    winner: Option<usize>,
}

impl Plan {
    fn of(campaign: &Campaign, tenant_zone: Option<String>) -> Result<Plan, DocumentError> {
        let timing = Timing {
            tenant_zone,
            ..Timing::of(campaign)?
        };
        let Some(text) = campaign.draft.ab_test.as_deref() else {
            return Ok(Plan {
                timings: vec![timing],
                test_end: 0,
                winner: Some(0),
            });
        };
        let value = serde_json::from_str(text).map_err(|_| DocumentError {
            field: "ab".into(),
            message: "is not JSON".into(),
        })?;
        let test = AbTest::read(&value, None)?;
        let timings = test
            .variants
            .iter()
            .map(|v| match &v.schedule {
                Some(schedule) => Timing {
                    schedule: Some(schedule.clone()),
                    ..timing.clone()
                },
                None => timing.clone(),
            })
            .collect();
        Ok(Plan {
            timings,
            test_end: campaign.ab.test_end.unwrap_or(0),
            winner: campaign
                .ab
                .winner
                .and_then(|w| usize::try_from(w).ok())
                .filter(|w| *w < test.variants.len()),
        })
    }

    /// The variant recipient `seq` gets; `None` past the test group before the winner.
    fn variant(&self, seq: i64) -> Option<usize> {
        if seq < self.test_end {
            Some(seq.rem_euclid(self.timings.len() as i64) as usize)
        } else {
            self.winner
        }
    }

    /// Where this run must stop: the test group's end while the winner is not known.
    fn stop(&self, total: i64) -> i64 {
        if self.winner.is_none() {
            self.test_end.min(total)
        } else {
            total
        }
    }
}

/// Why a send stopped with an error; the campaign stays as it was and is tried again.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("spool: {0}")]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error("composing: {0}")]
    Compose(String),
}

/// A message ready to spool.
pub struct Composed {
    pub envelope: Envelope,
    /// Stored before `content` without joining them (the DKIM signature).
    pub prefix: Vec<u8>,
    pub content: Vec<u8>,
}

/// One recipient to compose a message for.
pub struct Addressee<'a> {
    pub seq: i64,
    pub address: &'a str,
    pub contact: &'a Contact,
    pub id: MessageId,
    /// No delivery before this (Unix ms); 0: at once.
    pub not_before_ms: u64,
    /// The A/B variant the recipient gets (0 without a test).
    pub variant: usize,
}

/// Whether the tenant may send a batch now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Granted,
    /// Over the tenant's rate or daily quota: try again after this long.
    Wait(Duration, String),
    /// The tenant may not send at all (suspended): the campaign pauses.
    Refused(String),
}

/// A campaign ready to send: its content checked and loaded once.
pub trait Prepared: Send + Sync + 'static {
    /// Counts `messages` against the tenant's rate limit and daily quota, like any mail.
    fn admit(&self, messages: usize) -> impl Future<Output = Admission> + Send;
    /// The personalised message for one recipient (CPU work: called off the async workers).
    fn compose(&self, to: &Addressee<'_>) -> Result<Composed, String>;
    /// A batch was committed: its messages (id, recipient, the attributes composed into
    /// its envelope) are queued, its skipped recipients are not. The expansion waits for
    /// it, so a slow event store slows the expansion down rather than letting events pile
    /// up in memory.
    fn recorded(
        &self,
        spooled: &[(MessageId, String, Option<String>)],
        skipped: &[String],
    ) -> impl Future<Output = ()> + Send;
}

/// What prepares a campaign's content (the API's composer, with DKIM and return paths).
pub trait Sending: Send + Sync + 'static {
    type Prepared: Prepared;
    fn prepare(
        &self,
        campaign: &Campaign,
    ) -> impl Future<Output = Result<Self::Prepared, SendError>> + Send;
    /// Where a cancelled campaign's queued messages are taken back from.
    fn queue(&self) -> Option<&dyn Withdraw>;
}

/// Takes a cancelled campaign's queued messages out of the queue.
pub trait Withdraw: Send + Sync {
    /// Removes these messages where they still wait; returns how many recipients.
    fn withdraw(&self, ids: &std::collections::HashSet<MessageId>) -> u64;
}

/// Takes back every queued message of a cancelled campaign; returns how many recipients.
pub async fn withdraw_campaign<S: CampaignStore>(
    store: &S,
    queue: &dyn Withdraw,
    campaign_id: &str,
) -> Result<u64, SendError> {
    let ids: std::collections::HashSet<MessageId> = store
        .batch_message_ids(campaign_id)
        .await?
        .into_iter()
        .map(MessageId)
        .collect();
    let withdrawn = queue.withdraw(&ids);
    tracing::info!(campaign = %campaign_id, recipients = withdrawn, "cancelled campaign's queued messages withdrawn");
    Ok(withdrawn)
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every recipient is spooled or skipped; the campaign is `sent`.
    Finished,
    /// Someone paused or cancelled it; what is spooled stays spooled.
    Stopped(CampaignState),
    /// An A/B test's group is spooled; the rest waits for the winner.
    Testing,
    /// Another node took campaign expansion over (this one lost its lease): it goes on from
    /// the last committed batch.
    OffDuty,
}

/// The expansion of campaigns into one spool.
pub struct Expansion<S, X> {
    pub store: Arc<S>,
    pub spool: Spool,
    pub sending: Arc<X>,
    /// Recipients per batch (one store round and one group of spool commits each).
    pub batch: u32,
    /// Expansion runs on one node of a cluster at a time.
    pub duty: leases::Duty,
}

/// Batches composed ahead of the one being spooled.
const AHEAD: usize = 2;
/// Longest a batch sleeps on the tenant's limits before looking at its state again.
const ADMIT_RECHECK: Duration = Duration::from_secs(10);

/// A batch read and composed, not yet recorded or spooled.
struct Ready {
    first: i64,
    end: i64,
    /// Every id the batch hands out, recorded before anything is spooled.
    ids: Vec<MessageId>,
    composed: Vec<(MessageId, String, Composed)>,
    /// Suppressed or deleted since the audience was fixed.
    skipped: Vec<String>,
    /// Recipients whose message could not be composed, and why.
    failed: Vec<(String, String)>,
}

fn unix_ms(at: jiff::Timestamp) -> u64 {
    u64::try_from(at.as_millisecond()).unwrap_or(0)
}

impl<S: CampaignStore, X: Sending> Expansion<S, X> {
    /// Spools the campaign from its cursor to the end of its audience, or until it leaves
    /// the `sending` state. The next batch is read and composed while the current one is
    /// spooled and committed, so the cores compose while the disk syncs.
    pub async fn run(&self, campaign: &Campaign) -> Result<Ended, SendError> {
        let tenant_zone = self.store.tenant_zone(&campaign.tenant_id).await?;
        let plan = Plan::of(campaign, tenant_zone)?;
        let prepared = Arc::new(self.sending.prepare(campaign).await?);
        let total = plan.stop(campaign.progress.recipients.unwrap_or(0));
        // The latest send time spooled in this run: an A/B test's waiting starts there.
        let latest = std::sync::atomic::AtomicU64::new(0);
        let limit = match campaign.draft.rate_per_sec {
            Some(rate) if rate > 0 => self.batch.min(rate.clamp(1, i64::from(u32::MAX)) as u32),
            _ => self.batch,
        };
        // Composing runs ahead of spooling by up to AHEAD batches: the cores compose while
        // the disk syncs, and memory holds at most that many composed batches.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Ready, SendError>>(AHEAD);
        let compose = async {
            // Owned here, so the channel closes when composing ends.
            let tx = tx;
            // The next rows are read while these are composed.
            let read = |from: i64| async move {
                if from < total {
                    let limit = limit.min(u32::try_from(total - from).unwrap_or(u32::MAX));
                    self.store.send_recipients(campaign, from, limit).await
                } else {
                    Ok(Vec::new())
                }
            };
            let mut from = campaign.progress.cursor;
            let mut rows = read(from).await.map_err(SendError::from);
            loop {
                let current = match rows {
                    Ok(current) if current.is_empty() => break,
                    Ok(current) => current,
                    Err(err) => {
                        let _ = tx.send(Err(err)).await;
                        break;
                    }
                };
                let end = current.last().map_or(from, |r| r.seq + 1);
                let (composed, following) = tokio::join!(
                    self.compose_rows(&plan, &latest, &prepared, from, current),
                    read(end)
                );
                rows = following.map_err(SendError::from);
                from = end;
                let next = match composed {
                    Ok(Some(ready)) => Ok(ready),
                    Ok(None) => break,
                    Err(err) => Err(err),
                };
                let failed = next.is_err();
                if tx.send(next).await.is_err() || failed {
                    break;
                }
            }
        };
        let spool = async {
            let started = Instant::now();
            let mut spooled_here: u64 = 0;
            while let Some(batch) = rx.recv().await {
                let batch = batch?;
                if !self.duty.held() {
                    return Ok(Some(Ended::OffDuty));
                }
                let now = self
                    .store
                    .campaign(&campaign.tenant_id, &campaign.id)
                    .await?;
                match now.map(|c| c.state) {
                    Some(CampaignState::Sending) => {}
                    Some(CampaignState::Cancelled) => {
                        // A batch may have been committed after the cancel's own withdrawal.
                        if let Some(queue) = self.sending.queue() {
                            withdraw_campaign(&*self.store, queue, &campaign.id).await?;
                        }
                        return Ok(Some(Ended::Stopped(CampaignState::Cancelled)));
                    }
                    Some(other) => return Ok(Some(Ended::Stopped(other))),
                    None => return Ok(Some(Ended::Stopped(CampaignState::Cancelled))),
                }
                let Some(spooled) = self.spool_batch(campaign, &prepared, batch).await? else {
                    // Stopped while waiting for the tenant's limits.
                    let state = self
                        .store
                        .campaign(&campaign.tenant_id, &campaign.id)
                        .await?
                        .map_or(CampaignState::Cancelled, |c| c.state);
                    return Ok(Some(Ended::Stopped(state)));
                };
                spooled_here += spooled;
                if let Some(rate) = campaign.draft.rate_per_sec.filter(|r| *r > 0) {
                    // A ceiling: the next batch waits until the ones so far are due.
                    let due = Duration::from_secs_f64(spooled_here as f64 / rate as f64);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
            Ok::<_, SendError>(None)
        };
        let ((), spooled) = tokio::join!(compose, spool);
        if let Some(stopped) = spooled? {
            return Ok(stopped);
        }
        if plan.winner.is_none() {
            let test = crate::runner::ab_test(campaign)?.ok_or_else(|| DocumentError {
                field: "ab".into(),
                message: "is missing".into(),
            })?;
            let now = unix_ms(jiff::Timestamp::now());
            let from = latest.load(std::sync::atomic::Ordering::Relaxed).max(now);
            let at = from.saturating_add(test.wait.as_millis() as u64);
            self.store
                .test_spooled(&campaign.id, i64::try_from(at).unwrap_or(i64::MAX))
                .await?;
            tracing::info!(campaign = %campaign.id, decide_at_ms = at, "A/B test group spooled; the winner is decided after the wait");
            return Ok(Ended::Testing);
        }
        self.store
            .set_campaign_state(&campaign.tenant_id, &campaign.id, CampaignState::Sent)
            .await?;
        Ok(Ended::Finished)
    }

    /// Composes the messages of recipients read from `from` on every core; `None` for no
    /// rows (past the end of the audience). Nothing is recorded or spooled yet.
    async fn compose_rows(
        &self,
        plan: &Plan,
        latest: &std::sync::atomic::AtomicU64,
        prepared: &Arc<X::Prepared>,
        from: i64,
        mut rows: Vec<store::SendRecipient>,
    ) -> Result<Option<Ready>, SendError> {
        // Past the test group before the winner is known: not this run's (reads stop at
        // the test group's end, so this keeps a mistake from skipping anyone).
        rows.retain(|r| plan.variant(r.seq).is_some());
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        let end = last.seq + 1;
        let now = jiff::Timestamp::now();
        let mut skipped = Vec::new();
        let mut planned = Vec::with_capacity(rows.len());
        for recipient in rows {
            let Some(variant) = plan.variant(recipient.seq) else {
                continue;
            };
            match recipient.contact {
                Some(contact) if !recipient.suppressed => {
                    let at = plan.timings[variant.min(plan.timings.len() - 1)].not_before(
                        contact.timezone.as_deref(),
                        contact.country.as_deref(),
                        now,
                    );
                    let not_before_ms = if at > now { unix_ms(at) } else { 0 };
                    latest.fetch_max(not_before_ms, std::sync::atomic::Ordering::Relaxed);
                    planned.push((
                        self.spool.next_id(),
                        recipient.seq,
                        recipient.address,
                        contact,
                        (not_before_ms, variant),
                    ));
                }
                _ => skipped.push(recipient.address),
            }
        }
        let ids: Vec<MessageId> = planned.iter().map(|p| p.0).collect();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = planned.len().div_ceil(cores).max(16);
        let mut jobs = Vec::new();
        while !planned.is_empty() {
            let rest = planned.split_off(chunk.min(planned.len()));
            let part = std::mem::replace(&mut planned, rest);
            let prepared = prepared.clone();
            jobs.push(tokio::task::spawn_blocking(move || {
                part.into_iter()
                    .map(|(id, seq, address, contact, (not_before_ms, variant))| {
                        let composed = prepared.compose(&Addressee {
                            seq,
                            address: &address,
                            contact: &contact,
                            id,
                            not_before_ms,
                            variant,
                        });
                        (id, address, composed)
                    })
                    .collect::<Vec<_>>()
            }));
        }
        let mut composed = Vec::with_capacity(ids.len());
        let mut failed = Vec::new();
        for job in jobs {
            let done = job
                .await
                .map_err(|err| SendError::Compose(err.to_string()))?;
            for (id, address, message) in done {
                match message {
                    Ok(message) => composed.push((id, address, message)),
                    Err(error) => failed.push((address, error)),
                }
            }
        }
        Ok(Some(Ready {
            first: from,
            end,
            ids,
            composed,
            skipped,
            failed,
        }))
    }

    /// One composed batch: admitted by the tenant's limits, recorded open at the cursor,
    /// spooled held (sharing group commits), committed with the cursor, released. Returns
    /// how many messages it spooled, or `None` when the campaign stopped while waiting.
    async fn spool_batch(
        &self,
        campaign: &Campaign,
        prepared: &Arc<X::Prepared>,
        batch: Ready,
    ) -> Result<Option<u64>, SendError> {
        let Ready {
            first,
            end,
            ids,
            composed,
            mut skipped,
            failed,
        } = batch;
        if composed.is_empty() && !failed.is_empty() {
            // Nobody in a whole batch could be composed: the content is at fault, not the
            // contacts. Stop rather than skip the whole audience.
            self.store
                .set_campaign_state(&campaign.tenant_id, &campaign.id, CampaignState::Paused)
                .await?;
            return Err(SendError::Compose(format!(
                "no message of a batch could be composed ({}); the campaign is paused",
                failed[0].1
            )));
        }
        // The tenant's limits hold for campaigns as for any mail: a batch waits for its
        // rate or the next day's quota (the state is checked while waiting).
        loop {
            match prepared.admit(composed.len()).await {
                Admission::Granted => break,
                Admission::Wait(wait, why) => {
                    tracing::info!(campaign = %campaign.id, %why, wait_s = wait.as_secs(), "campaign waits for the tenant's limits");
                    tokio::time::sleep(wait.min(ADMIT_RECHECK)).await;
                    let now = self
                        .store
                        .campaign(&campaign.tenant_id, &campaign.id)
                        .await?;
                    if now.is_none_or(|c| c.state != CampaignState::Sending) {
                        return Ok(None);
                    }
                }
                Admission::Refused(why) => {
                    self.store
                        .set_campaign_state(
                            &campaign.tenant_id,
                            &campaign.id,
                            CampaignState::Paused,
                        )
                        .await?;
                    return Err(SendError::Compose(format!("the campaign is paused: {why}")));
                }
            }
        }
        let raw: Vec<u128> = ids.iter().map(|id| id.0).collect();
        self.store
            .open_batch(&campaign.id, first, end, &raw)
            .await?;
        let mut inserts = tokio::task::JoinSet::new();
        for (id, address, message) in composed {
            let spool = self.spool.clone();
            inserts.spawn(async move {
                let attributes = message.envelope.attributes.clone();
                spool
                    .insert_held(id, message.envelope, &message.prefix, message.content)
                    .await
                    .map(|()| (id, address, attributes))
            });
        }
        let mut spooled = Vec::with_capacity(ids.len());
        let mut failure = None;
        while let Some(done) = inserts.join_next().await {
            match done {
                Ok(Ok(one)) => spooled.push(one),
                Ok(Err(err)) => failure = Some(SendError::from(err)),
                Err(_) => failure = Some(SpoolError::Poisoned.into()),
            }
        }
        if let Some(err) = failure {
            // Take back what reached the spool so the batch can be spooled again.
            take_back(&self.spool, &ids).await?;
            self.store.drop_batch(&campaign.id, first).await?;
            return Err(err);
        }
        for (address, error) in &failed {
            tracing::warn!(campaign = %campaign.id, recipient = %address, %error, "a campaign message could not be composed; recipient skipped");
        }
        skipped.extend(failed.into_iter().map(|(address, _)| address));
        self.store
            .commit_batch(
                &campaign.id,
                first,
                spooled.len() as i64,
                skipped.len() as i64,
            )
            .await?;
        self.spool.release(&ids);
        spooled.sort_unstable_by_key(|(id, ..)| *id);
        prepared.recorded(&spooled, &skipped).await;
        metrics::counter!("tsubame_campaign_spooled_total").increment(spooled.len() as u64);
        Ok(Some(spooled.len() as u64))
    }
}

/// Removes these messages from the spool, durably, where they are queued.
async fn take_back(spool: &Spool, ids: &[MessageId]) -> Result<(), SpoolError> {
    let mut removals = tokio::task::JoinSet::new();
    for &id in ids.iter().filter(|id| spool.contains(**id)) {
        let spool = spool.clone();
        removals.spawn(async move { spool.remove_durably(id).await });
    }
    while let Some(done) = removals.join_next().await {
        done.map_err(|_| SpoolError::Poisoned)??;
    }
    Ok(())
}

/// After a restart and before delivery starts: the messages of batches that never
/// committed are removed from the spool and the batches forgotten, so they are spooled
/// again from their campaign's cursor. Returns how many batches were settled.
pub async fn settle_open_batches<S: CampaignStore>(
    store: &S,
    spool: &Spool,
) -> Result<usize, SendError> {
    let open = store.open_batches().await?;
    for batch in &open {
        let ids: Vec<MessageId> = batch.message_ids.iter().map(|id| MessageId(*id)).collect();
        take_back(spool, &ids).await?;
        store
            .drop_batch(&batch.campaign_id, batch.first_seq)
            .await?;
        tracing::info!(
            campaign = %batch.campaign_id,
            first = batch.first_seq,
            messages = ids.len(),
            "campaign batch left open by a crash taken back; it is spooled again"
        );
    }
    Ok(open.len())
}
