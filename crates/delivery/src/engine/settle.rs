//! Settling an attempt: each recipient becomes delivered, deferred (back on the retry timer),
//! bounced or expired; response rules adjust the site; the spool records what is final, after
//! any bounce has itself been spooled; events and metrics are emitted.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_wire::Reply;
use spool::{Envelope, MessageId, Recipient};

use super::{Inner, now_ms};
use crate::events::{Event, Outcome};
use crate::outcome::dsn::{self, RecipientReport};
use crate::queue::Part;
use crate::shaping::Action;

/// After a failed connection (before the site counts as down), the next try comes this soon.
const CONNECT_RETRY: Duration = Duration::from_secs(1);

/// Where and how an attempt was made.
pub(crate) struct AttemptInfo {
    pub site: Arc<str>,
    pub host: Option<String>,
    pub ip: Option<IpAddr>,
    pub tls: Option<String>,
    pub started: Instant,
    /// The server offered DSN (it will send success reports itself).
    pub remote_dsn: bool,
    /// The part came off a site queue through `next_part` (counted in `in_flight`).
    pub on_connection: bool,
    /// The part's recipient addresses in `rcpts` order, when the caller has read them.
    pub addresses: Option<Vec<String>>,
    /// Some recipient of the part asked for NOTIFY=SUCCESS.
    pub success_wanted: bool,
    /// The message's sender, `auth_user` and `attributes`, when the caller has read its
    /// envelope (parts do not carry them; otherwise they are read from the spool).
    pub owner: Option<Owner>,
}

/// Who a message is from, as its envelope says.
#[derive(Debug, Clone, Default)]
pub(crate) struct Owner {
    pub sender: String,
    pub auth_user: Option<String>,
    pub attributes: Option<String>,
}

impl Owner {
    pub fn of(envelope: &Envelope) -> Owner {
        Owner {
            sender: envelope.sender.clone(),
            auth_user: envelope.auth_user.clone(),
            attributes: envelope.attributes.clone(),
        }
    }
}

impl AttemptInfo {
    pub fn without_connection(site: Arc<str>) -> AttemptInfo {
        AttemptInfo {
            site,
            host: None,
            ip: None,
            tls: None,
            started: Instant::now(),
            remote_dsn: false,
            on_connection: false,
            addresses: None,
            success_wanted: false,
            owner: None,
        }
    }
}

fn status_text(reply: &Reply) -> String {
    match reply.status {
        Some((a, b, c)) => format!("{a}.{b}.{c}"),
        None if reply.code >= 500 => "5.0.0".into(),
        None if reply.code >= 400 => "4.0.0".into(),
        None => "2.0.0".into(),
    }
}

struct Final {
    index: u32,
    reply: Reply,
    outcome: Outcome,
}

impl Inner {
    /// Settles the results of an attempt on a part.
    pub(crate) fn settle(
        self: &Arc<Self>,
        part: Part,
        results: Vec<(u32, Reply)>,
        info: AttemptInfo,
    ) {
        let now = Instant::now();
        let now_ms = now_ms();
        let attempt = part.attempts + 1;
        let max_age_ms = self.config.retry.max_age.as_millis() as u64;
        let expired = now_ms >= part.received_ms.saturating_add(max_age_ms);
        let mut finals = Vec::new();
        let mut deferred: Vec<(u32, Reply)> = Vec::new();
        for (index, reply) in results {
            let outcome = match reply.code {
                200..=399 => Outcome::Delivered,
                500.. => Outcome::Bounced,
                _ if expired => Outcome::Expired,
                _ => {
                    deferred.push((index, reply));
                    continue;
                }
            };
            finals.push(Final {
                index,
                reply,
                outcome,
            });
        }
        let rule = if info.host.is_some() {
            deferred
                .iter()
                .map(|(_, r)| r)
                .chain(finals.iter().map(|f| &f.reply))
                .find_map(|r| self.rule_for(&info.site, r))
        } else {
            None
        };
        let last_error_text = deferred.first().map(|(_, r)| r.one_line());
        let warn_delay = !deferred.is_empty()
            && !part.delay_warned
            && self.config.delay_warning.is_some_and(|after| {
                now_ms.saturating_sub(part.received_ms) >= after.as_millis() as u64
            });
        let mut next_attempt = None;
        let message_finished = {
            let mut state = self.lock();
            if info.on_connection {
                state.in_flight = state.in_flight.saturating_sub(1);
            }
            if let Some(site) = state.sites.get_mut(&info.site) {
                for f in &finals {
                    match f.outcome {
                        Outcome::Delivered => site.delivered += 1,
                        _ => site.bounced += 1,
                    }
                }
                site.deferred += deferred.len() as u64;
                if let Some((name, action)) = &rule {
                    apply_rule(site, name, action, now);
                }
            }
            if let Some((_, Action::Suspend(d))) = &rule {
                state.kicks.insert((now + *d, info.site.clone()));
            }
            if finals.iter().any(|f| f.outcome == Outcome::Delivered) {
                state.domain_errors.remove(&part.domain);
            }
            if deferred.is_empty() {
                state.part_finished(part.id)
            } else {
                let delay = self.config.retry.delay(attempt, rand::random::<f64>());
                // A last attempt at the maximum age, rather than none after the last delay.
                let latest =
                    Duration::from_millis((part.received_ms + max_age_ms).saturating_sub(now_ms));
                // The queue view shows the last error per domain: one copy per domain, not
                // one per deferred part.
                if let Some(text) = last_error_text.as_deref()
                    && state
                        .domain_errors
                        .get(&part.domain)
                        .is_none_or(|known| &**known != text)
                {
                    state
                        .domain_errors
                        .insert(part.domain.clone(), Arc::from(text));
                }
                let retry = Part {
                    rcpts: deferred.iter().map(|(i, _)| *i).collect(),
                    attempts: attempt,
                    delay_warned: part.delay_warned || warn_delay,
                    fresh: None,
                    ..part.clone()
                };
                let wait = delay.min(latest);
                if state.schedule(retry, now + wait) {
                    self.timer_wake.notify_one();
                }
                next_attempt = Some((attempt, now_ms + wait.as_millis() as u64));
                false
            }
        };
        if rule.is_some() {
            self.timer_wake.notify_one();
        }
        self.emit_events(&part, attempt, &info, &finals, &deferred, message_finished);
        if warn_delay {
            let inner = self.clone();
            let guard = self.guard();
            let (id, delayed, remote) = (part.id, deferred.clone(), info.host.clone());
            tokio::spawn(async move {
                let _guard = guard;
                if let Err(err) = inner.send_delay_report(id, &delayed, remote).await {
                    tracing::warn!(%id, error = %err, "could not spool a delay notification");
                }
            });
        }
        if let Some((attempts, next_ms)) = next_attempt {
            // The schedule survives a restart; losing this record only means an earlier try.
            let inner = self.clone();
            let guard = self.guard();
            let id = part.id;
            tokio::spawn(async move {
                let _guard = guard;
                if let Err(err) = inner.spool.deferred(id, attempts, next_ms).await {
                    tracing::debug!(%id, error = %err, "could not record the retry schedule");
                }
            });
        }
        if finals.is_empty() && !message_finished {
            return;
        }
        let needs_report = finals.iter().any(|f| f.outcome != Outcome::Delivered)
            || (info.success_wanted && !info.remote_dsn);
        if !needs_report || !self.any_report_wanted(part.id, &finals, info.remote_dsn) {
            // The common case, nothing to spool first: record without a task or a wake-up.
            let written = if message_finished {
                self.spool.remove_detached(part.id)
            } else {
                self.spool
                    .recipients_done_detached(part.id, finals.iter().map(|f| f.index).collect())
            };
            if let Err(err) = written {
                tracing::error!(id = %part.id, error = %err, "could not record final recipients; they will be retried after restart");
            }
            return;
        }
        let inner = self.clone();
        let guard = self.guard();
        let remote_mta = info.host.clone();
        let remote_dsn = info.remote_dsn;
        tokio::spawn(async move {
            let _guard = guard;
            inner
                .record_finals(part.id, finals, message_finished, remote_mta, remote_dsn)
                .await;
        });
    }

    fn rule_for(&self, site: &Arc<str>, reply: &Reply) -> Option<(String, Action)> {
        if reply.code < 400 {
            return None;
        }
        let state = self.lock();
        let site = state.sites.get(site)?;
        let text = reply.lines.join(" ");
        site.rules
            .iter()
            .find(|r| r.matches(reply.code, reply.status, &text))
            .map(|r| (r.name.clone(), r.action.clone()))
    }

    fn emit_events(
        &self,
        part: &Part,
        attempt: u32,
        info: &AttemptInfo,
        finals: &[Final],
        deferred: &[(u32, Reply)],
        message_finished: bool,
    ) {
        let now_ms = now_ms();
        let attempt_ms = info.started.elapsed().as_millis() as u64;
        let queued_ms = now_ms.saturating_sub(part.received_ms);
        let all = finals
            .iter()
            .map(|f| (f.index, &f.reply, f.outcome))
            .chain(deferred.iter().map(|(i, r)| (*i, r, Outcome::Deferred)));
        let mut envelope: Option<Envelope> = None;
        let owner = match &info.owner {
            Some(owner) => owner.clone(),
            None => {
                envelope = self.spool.envelope(part.id).ok().map(|(e, _)| e);
                envelope.as_ref().map(Owner::of).unwrap_or_default()
            }
        };
        for (index, reply, outcome) in all {
            if outcome == Outcome::Delivered {
                self.latency.record(queued_ms as f64 / 1000.0);
            }
            let known = info.addresses.as_ref().and_then(|a| {
                let at = part.rcpts.iter().position(|&i| i == index)?;
                a.get(at).cloned()
            });
            let recipient = match known {
                Some(address) => address,
                None => {
                    if envelope.is_none() {
                        envelope = self.spool.envelope(part.id).ok().map(|(e, _)| e);
                    }
                    envelope
                        .as_ref()
                        .and_then(|e| e.recipients.get(index as usize))
                        .map_or_else(
                            || format!("#{index}@{}", part.domain),
                            |r| r.address.clone(),
                        )
                }
            };
            let category = (outcome != Outcome::Delivered).then(|| {
                self.config
                    .classifier
                    .classify(reply.code, reply.status, &reply.lines.join(" "))
                    .as_str()
            });
            let event = Event {
                time_ms: now_ms,
                outcome,
                message_id: part.id.to_string(),
                sender: owner.sender.clone(),
                recipient,
                site: info.site.to_string(),
                attempt,
                remote_host: info.host.clone(),
                remote_ip: info.ip,
                response: reply.one_line(),
                category,
                tls: info.tls.clone(),
                attempt_ms,
                queued_ms,
                auth_user: owner.auth_user.clone(),
                attributes: owner.attributes.clone(),
            };
            tracing::debug!(target: "tsubame::delivery", id = %part.id, outcome = outcome.as_str(), recipient = %event.recipient, response = %event.response, "recipient settled");
            self.events.record(part.id, event, !message_finished);
        }
        if message_finished {
            self.events.forget(part.id);
        }
    }

    /// Spools bounces first, then records the final recipients (or removes the message).
    async fn record_finals(
        &self,
        id: MessageId,
        finals: Vec<Final>,
        message_finished: bool,
        remote_mta: Option<String>,
        remote_dsn: bool,
    ) {
        let reportable = finals
            .iter()
            .any(|f| f.outcome != Outcome::Delivered || !remote_dsn);
        if reportable && let Err(err) = self.send_reports(id, &finals, remote_mta, remote_dsn).await
        {
            // The recipients stay pending: after a restart they are tried again, and the
            // bounce is not lost.
            tracing::error!(%id, error = %err, "could not spool a delivery status notification");
            return;
        }
        let written = if message_finished {
            self.spool.remove(id).await
        } else {
            let indices = finals.iter().map(|f| f.index).collect();
            self.spool.recipients_done(id, indices).await
        };
        if let Err(err) = written {
            tracing::error!(%id, error = %err, "could not record final recipients; they will be retried after restart");
        }
    }

    /// Whether any final recipient gets a DSN (cheap: reads only the envelope's head, and
    /// only when something bounced or a success report might be wanted).
    fn any_report_wanted(&self, id: MessageId, finals: &[Final], remote_dsn: bool) -> bool {
        let Ok((envelope, _)) = self.spool.envelope(id) else {
            return false;
        };
        finals.iter().any(|f| {
            let notify = envelope
                .recipients
                .get(f.index as usize)
                .map_or(0, |r| r.notify);
            match f.outcome {
                Outcome::Delivered => !remote_dsn && dsn::wants_success_report(&envelope, notify),
                _ => dsn::wants_failure_report(&envelope, notify),
            }
        })
    }

    /// Spools one DSN for the recipients that asked for one (failures by default; successes
    /// with NOTIFY=SUCCESS when the receiving server cannot report them itself).
    async fn send_reports(
        &self,
        id: MessageId,
        finals: &[Final],
        remote_mta: Option<String>,
        remote_dsn: bool,
    ) -> Result<(), spool::SpoolError> {
        self.report(id, |envelope, now| {
            finals
                .iter()
                .filter_map(|f| {
                    let notify = envelope.recipients.get(f.index as usize)?.notify;
                    let action = match f.outcome {
                        Outcome::Delivered
                            if !remote_dsn && dsn::wants_success_report(envelope, notify) =>
                        {
                            "relayed"
                        }
                        Outcome::Delivered => return None,
                        _ if dsn::wants_failure_report(envelope, notify) => "failed",
                        _ => return None,
                    };
                    let (status, diagnostic) = if f.outcome == Outcome::Expired {
                        (
                            "4.4.7".to_string(),
                            format!("delivery time expired; last error: {}", f.reply.one_line()),
                        )
                    } else {
                        (status_text(&f.reply), f.reply.one_line())
                    };
                    Some(RecipientReport {
                        index: f.index,
                        action,
                        status,
                        remote_mta: remote_mta.clone(),
                        diagnostic,
                        last_attempt: now,
                    })
                })
                .collect()
        })
        .await
    }

    /// One "delayed" DSN for the deferred recipients that want it (see
    /// [`dsn::wants_delay_report`]).
    async fn send_delay_report(
        &self,
        id: MessageId,
        deferred: &[(u32, Reply)],
        remote_mta: Option<String>,
    ) -> Result<(), spool::SpoolError> {
        self.report(id, |envelope, now| {
            deferred
                .iter()
                .filter(|(index, _)| {
                    envelope
                        .recipients
                        .get(*index as usize)
                        .is_some_and(|r| dsn::wants_delay_report(envelope, r.notify))
                })
                .map(|(index, reply)| RecipientReport {
                    index: *index,
                    action: "delayed",
                    status: status_text(reply),
                    remote_mta: remote_mta.clone(),
                    diagnostic: reply.one_line(),
                    last_attempt: now,
                })
                .collect()
        })
        .await
    }

    /// Reads the message, lets `build` choose the recipients to report (given the envelope
    /// and now, Unix seconds), and spools the DSN when there are any.
    async fn report(
        &self,
        id: MessageId,
        build: impl FnOnce(&Envelope, i64) -> Vec<RecipientReport>,
    ) -> Result<(), spool::SpoolError> {
        let (envelope, content, _) = match self.spool.read(id) {
            Ok(found) => found,
            Err(spool::SpoolError::NotFound) => return Ok(()),
            Err(err) => return Err(err),
        };
        if envelope.flags & Envelope::FLAG_NO_DSN != 0 {
            return Ok(());
        }
        let now = (now_ms() / 1000) as i64;
        let reports = build(&envelope, now);
        if reports.is_empty() {
            return Ok(());
        }
        self.spool_report(id, &envelope, &content, &reports, now)
            .await
    }

    /// Builds a DSN for `reports` and spools it from the null sender to the original sender.
    async fn spool_report(
        &self,
        id: MessageId,
        envelope: &Envelope,
        content: &[u8],
        reports: &[RecipientReport],
        now: i64,
    ) -> Result<(), spool::SpoolError> {
        let dsn_id = self.spool.next_id();
        let body = dsn::build(&dsn::Report {
            hostname: &self.config.hostname,
            original_id: id,
            envelope,
            content,
            recipients: reports,
            now,
            dsn_id,
        });
        let eight_bit = body.iter().any(|b| *b >= 0x80);
        let dsn_envelope = Envelope {
            sender: String::new(),
            recipients: vec![Recipient {
                address: envelope.sender.clone(),
                notify: 0,
                orcpt: None,
            }],
            dsn_ret: 0,
            dsn_envid: None,
            flags: if eight_bit {
                Envelope::FLAG_8BITMIME
            } else {
                0
            },
            received_ms: now_ms(),
            client_ip: "local".into(),
            helo: self.config.hostname.clone(),
            auth_user: None,
            not_before_ms: 0,
            attributes: None,
        };
        self.spool.insert(dsn_id, dsn_envelope, body).await?;
        tracing::info!(target: "tsubame::delivery", %id, dsn = %dsn_id, to = %envelope.sender, recipients = reports.len(), "delivery status notification queued");
        Ok(())
    }

    /// A part whose recipients were all finished elsewhere (operator action) or whose message
    /// is gone.
    pub(crate) fn part_vanished(self: &Arc<Self>, part: Part) {
        let finished = self.lock().part_finished(part.id);
        if finished {
            self.events.forget(part.id);
            let inner = self.clone();
            let guard = self.guard();
            tokio::spawn(async move {
                let _guard = guard;
                if let Ok(()) | Err(spool::SpoolError::NotFound) = inner.spool.remove(part.id).await
                {
                }
            });
        }
    }

    /// No host of the site would talk to us. After `connect_failures_max` in a row the site
    /// backs off; when no other connection is serving it, its waiting parts are deferred
    /// with the error.
    pub(crate) fn connect_failed(self: &Arc<Self>, site_name: &Arc<str>, reply: Reply) {
        let now = Instant::now();
        let rule = self.rule_for(site_name, &reply);
        let waiting = {
            let mut state = self.lock();
            let Some(site) = state.sites.get_mut(site_name) else {
                return;
            };
            // Connections opened together fail together: once the site is backing off, the
            // rest of that burst says nothing new and must not lengthen the back-off.
            let backing_off = site.backoff.as_ref().is_some_and(|(until, _)| *until > now);
            if !backing_off {
                site.connect_failures += 1;
            }
            if let Some((name, action)) = &rule {
                apply_rule(site, name, action, now);
            }
            let over = site
                .connect_failures
                .saturating_sub(site.limits.connect_failures_max);
            let dead = site.connect_failures >= site.limits.connect_failures_max;
            if backing_off {
                // Already backing off: keep the hold as it is.
            } else if dead {
                let backoff = site
                    .limits
                    .backoff
                    .saturating_mul(1u32 << over.min(16))
                    .min(site.limits.backoff_max);
                let reason = reply.one_line();
                tracing::warn!(target: "tsubame::delivery", site = %site_name, failures = site.connect_failures, backoff_s = backoff.as_secs(), %reason, "site backing off");
                site.backoff = Some((now + backoff, reason));
                state.kicks.insert((now + backoff, site_name.clone()));
            } else {
                // Not given up yet: try a fresh connection shortly, or the waiting mail would
                // sit in the queue until something else arrives for this site.
                state.kicks.insert((now + CONNECT_RETRY, site_name.clone()));
            }
            let site = state.sites.get_mut(site_name);
            match site {
                // Others are still delivering: they will take the queue.
                Some(site) if site.connections > 1 => Vec::new(),
                Some(site) if dead || rule.is_some() => {
                    // Taken whole, so the queue's memory goes with them.
                    std::mem::take(&mut site.ready).into()
                }
                _ => Vec::new(),
            }
        };
        for part in waiting {
            let results = part.rcpts.iter().map(|&i| (i, reply.clone())).collect();
            self.settle(
                part,
                results,
                AttemptInfo::without_connection(site_name.clone()),
            );
        }
        self.timer_wake.notify_one();
    }

    /// Puts a part that was never tried back at the front of its site's queue.
    pub(crate) fn requeue_front(&self, site_name: &Arc<str>, part: Part) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        match state.sites.get_mut(site_name) {
            Some(site) => {
                site.ready.push_front(part);
                site.notify.notify_one();
            }
            None => state.push_ready(part, site_name),
        }
    }

    pub(crate) fn connect_succeeded(&self, site_name: &Arc<str>) {
        if let Some(site) = self.lock().sites.get_mut(site_name) {
            site.connect_failures = 0;
        }
    }
}

fn apply_rule(site: &mut crate::queue::Site, name: &str, action: &Action, now: Instant) {
    match action {
        Action::Suspend(duration) => {
            tracing::warn!(target: "tsubame::delivery", site = %site.name, rule = name, seconds = duration.as_secs(), "site suspended by response rule");
            site.suspended = Some((now + *duration, name.to_string()));
        }
        Action::Throttle { rate, duration } => {
            tracing::warn!(target: "tsubame::delivery", site = %site.name, rule = name, per_second = rate.per_second, seconds = duration.as_secs(), "site throttled by response rule");
            site.throttle(*rate, now + *duration, name.to_string(), now);
        }
    }
}
