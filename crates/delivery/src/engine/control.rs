//! Operators' view and commands: queue summary by site and domain, pause/resume, retry now,
//! bounce or delete by filter, a message's attempts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use smtp_wire::Reply;

use super::settle::AttemptInfo;
use super::{Engine, now_ms};
use crate::events::{Event, Outcome};
use crate::queue::{Filter, Hold, Part};
use spool::MessageId;

#[derive(Debug, Clone, Serialize)]
pub struct SiteSummary {
    pub site: String,
    pub provider: Option<String>,
    /// Recipients waiting for a connection.
    pub ready_recipients: u64,
    pub connections: u32,
    pub connections_max: u32,
    /// "paused", "suspended", "backing_off" or none.
    pub hold: Option<&'static str>,
    pub hold_reason: Option<String>,
    /// Unix ms when a suspension or back-off ends.
    pub hold_until_ms: Option<u64>,
    pub throttle: Option<String>,
    pub delivered: u64,
    pub deferred: u64,
    pub bounced: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct DomainSummary {
    pub domain: String,
    pub site: Option<String>,
    pub ready_recipients: u64,
    pub deferred_recipients: u64,
    pub held_recipients: u64,
    /// Queued messages with recipients at this domain (in-flight ones excluded).
    pub messages: u64,
    /// Acceptance time of the oldest queued message, Unix ms.
    pub oldest_ms: Option<u64>,
    /// The next retry, Unix ms.
    pub next_attempt_ms: Option<u64>,
    pub paused: bool,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueSummary {
    pub ready_recipients: u64,
    pub deferred_recipients: u64,
    pub held_recipients: u64,
    pub in_flight_parts: u64,
    pub routing_parts: u64,
    /// Acceptance time of the oldest queued message, Unix ms.
    pub oldest_ms: Option<u64>,
    pub sites: Vec<SiteSummary>,
    pub domains: Vec<DomainSummary>,
}

fn to_unix_ms(at: Instant, now: Instant, now_ms: u64) -> u64 {
    now_ms + at.saturating_duration_since(now).as_millis() as u64
}

fn note(entry: &mut DomainSummary, received_ms: u64) {
    entry.messages += 1;
    entry.oldest_ms = Some(entry.oldest_ms.map_or(received_ms, |o| o.min(received_ms)));
}

/// Totals for the metrics endpoint, without the per-domain breakdown.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub ready: u64,
    pub deferred: u64,
    pub held: u64,
    pub in_flight_parts: u64,
    /// Acceptance time of the oldest queued message, Unix ms.
    pub oldest_ms: Option<u64>,
    /// Per site: name, ready recipients, open connections, held (paused/suspended/backing off).
    pub sites: Vec<(String, u64, u32, bool)>,
}

/// A domain's site and its limits.
#[derive(Debug, Clone)]
pub struct SitePlan {
    pub site: String,
    pub provider: Option<String>,
    pub limits: crate::shaping::Limits,
    pub provider_connections_max: Option<u32>,
}

impl Engine {
    /// Queue totals for /metrics: one pass, no per-domain maps.
    pub fn gauges(&self) -> Gauges {
        let now = Instant::now();
        let mut state = self.inner.lock();
        let mut g = Gauges {
            in_flight_parts: state.in_flight,
            ..Gauges::default()
        };
        let mut oldest = u64::MAX;
        for site in state.sites.values_mut() {
            let ready: u64 = site.ready.iter().map(|p| p.rcpts.len() as u64).sum();
            if let Some(p) = site.ready.iter().map(|p| p.received_ms).min() {
                oldest = oldest.min(p);
            }
            g.ready += ready;
            let held = site.hold(now).is_some();
            g.sites
                .push((site.name.to_string(), ready, site.connections, held));
        }
        for part in state.timers.iter() {
            g.deferred += part.rcpts().len() as u64;
            oldest = oldest.min(part.received_ms);
        }
        for part in state.held.values().flatten() {
            g.held += part.rcpts.len() as u64;
            oldest = oldest.min(part.received_ms);
        }
        g.oldest_ms = (oldest != u64::MAX).then_some(oldest);
        g
    }

    /// Where mail for `domain` goes and under which limits (capacity forecasts): the site,
    /// its provider, the site's limits and the provider's connection cap across its sites.
    pub async fn site_of(&self, domain: &str) -> Result<SitePlan, crate::route::RouteError> {
        let route = self
            .inner
            .router
            .route(&domain.to_ascii_lowercase())
            .await?;
        let (provider, limits) = self
            .inner
            .config
            .shaping
            .for_hosts(route.hosts.iter().map(|h| h.host.as_str()));
        Ok(SitePlan {
            site: route.site.to_string(),
            provider: provider.map(|p| p.name.clone()),
            limits: limits.clone(),
            provider_connections_max: provider.and_then(|p| p.connections_max_total),
        })
    }

    /// The shaping in force: limits per provider and the response rules.
    pub fn shaping(&self) -> &crate::shaping::Shaping {
        &self.inner.config.shaping
    }

    /// The queue by site and by domain.
    pub fn summary(&self) -> QueueSummary {
        let now = Instant::now();
        let now_ms = now_ms();
        let mut guard = self.inner.lock();
        // Disjoint borrows: the sites are updated (expired holds) while the rest is read.
        let state = &mut *guard;
        let routed = &state.routed;
        let mut domains: BTreeMap<Arc<str>, DomainSummary> = BTreeMap::new();
        let mut sites = Vec::new();
        for site in state.sites.values_mut() {
            let hold = site.hold(now);
            let (hold_name, hold_reason, hold_until) = match &hold {
                None => (None, None, None),
                Some(Hold::Paused) => (Some("paused"), None, None),
                Some(Hold::Suspended { until, reason }) => (
                    Some("suspended"),
                    Some(reason.clone()),
                    Some(to_unix_ms(*until, now, now_ms)),
                ),
                Some(Hold::BackingOff { until, reason }) => (
                    Some("backing_off"),
                    Some(reason.clone()),
                    Some(to_unix_ms(*until, now, now_ms)),
                ),
            };
            let mut ready = 0u64;
            for part in &site.ready {
                ready += part.rcpts.len() as u64;
                let entry = domains.entry(part.domain.clone()).or_default();
                entry.ready_recipients += part.rcpts.len() as u64;
                note(entry, part.received_ms);
            }
            sites.push(SiteSummary {
                site: site.name.to_string(),
                provider: site.provider.clone(),
                ready_recipients: ready,
                connections: site.connections,
                connections_max: site.limits.connections_max,
                hold: hold_name,
                hold_reason,
                hold_until_ms: hold_until,
                throttle: site
                    .throttle
                    .as_ref()
                    .filter(|(_, until, _)| *until > now)
                    .map(|(_, _, why)| why.clone()),
                delivered: site.delivered,
                deferred: site.deferred,
                bounced: site.bounced,
            });
        }
        let mut deferred_total = 0;
        for part in state.timers.iter() {
            let due = state.timers.due(part);
            deferred_total += part.rcpts().len() as u64;
            let entry = domains.entry(part.domain.clone()).or_default();
            entry.deferred_recipients += part.rcpts().len() as u64;
            let due_ms = to_unix_ms(due, now, now_ms);
            entry.next_attempt_ms = Some(entry.next_attempt_ms.map_or(due_ms, |n| n.min(due_ms)));
            note(entry, part.received_ms);
        }
        let mut held_total = 0;
        for (domain, parts) in &state.held {
            for part in parts {
                held_total += part.rcpts.len() as u64;
                let entry = domains.entry(domain.clone()).or_default();
                entry.held_recipients += part.rcpts.len() as u64;
                note(entry, part.received_ms);
            }
        }
        for domain in &state.paused_domains {
            domains.entry(domain.clone()).or_default();
        }
        // Errors of domains that no longer have mail queued are of no more use.
        state.domain_errors.retain(|d, _| domains.contains_key(d));
        let domains: Vec<DomainSummary> = domains
            .into_iter()
            .map(|(domain, mut d)| {
                d.site = routed.get(&domain).map(|s| s.to_string());
                d.paused = state.paused_domains.contains(&domain);
                d.last_error = state.domain_errors.get(&domain).map(|e| e.to_string());
                d.domain = domain.to_string();
                d
            })
            .collect();
        sites.sort_by(|a, b| a.site.cmp(&b.site));
        QueueSummary {
            ready_recipients: sites.iter().map(|s| s.ready_recipients).sum(),
            deferred_recipients: deferred_total,
            held_recipients: held_total,
            in_flight_parts: state.in_flight,
            routing_parts: state.routing,
            oldest_ms: domains.iter().filter_map(|d| d.oldest_ms).min(),
            sites,
            domains,
        }
    }

    /// Cluster mode: stops (true) or resumes (false) starting deliveries, everywhere. Each
    /// connection finishes the message it is on; mail stays queued.
    pub fn set_fenced(&self, fenced: bool) {
        let sites: Vec<Arc<str>> = {
            let mut state = self.inner.lock();
            if state.fenced == fenced {
                return;
            }
            state.fenced = fenced;
            for site in state.sites.values() {
                site.notify.notify_waiters();
            }
            state.sites.keys().cloned().collect()
        };
        if fenced {
            tracing::warn!(target: "tsubame::delivery", "delivery fenced: out of touch with the cluster");
        } else {
            tracing::info!(target: "tsubame::delivery", "delivery resumed: back in touch with the cluster");
            for site in sites {
                self.inner.kick(&site);
            }
        }
    }

    /// Cluster mode: deliveries may start until `until` (a stored heartbeat's time plus the
    /// fence delay). Extending an expired lease resumes delivery.
    pub fn extend_lease(&self, until: Instant) {
        let sites: Vec<Arc<str>> = {
            let mut state = self.inner.lock();
            let was_expired = state.lease_expired(Instant::now());
            state.lease_until = Some(until);
            if !was_expired {
                return;
            }
            state.sites.keys().cloned().collect()
        };
        for site in sites {
            self.inner.kick(&site);
        }
    }

    /// Cluster mode: this node's share of every site's and provider's connections and rates.
    /// A larger share takes effect at once; a smaller one as connections finish a message.
    pub fn set_share(&self, share: shares::Share) {
        let sites: Vec<Arc<str>> = {
            let mut state = self.inner.lock();
            if state.share == share {
                return;
            }
            state.share = share;
            state.sites.keys().cloned().collect()
        };
        tracing::info!(target: "tsubame::delivery", rank = share.rank, nodes = share.count, "delivery share of cluster-wide limits changed");
        for site in sites {
            self.inner.kick(&site);
        }
    }

    /// Pauses or resumes a site. False when no such site is known.
    pub fn set_site_paused(&self, site: &str, paused: bool) -> bool {
        let name = {
            let mut state = self.inner.lock();
            let Some(entry) = state.sites.iter_mut().find(|(name, _)| &***name == site) else {
                return false;
            };
            entry.1.paused = paused;
            if paused {
                entry.1.notify.notify_waiters();
            }
            entry.0.clone()
        };
        tracing::info!(target: "tsubame::delivery", site, paused, "site pause changed by operator");
        if !paused {
            self.inner.kick(&name);
        }
        true
    }

    /// Pauses or resumes a recipient domain; resuming sends its held parts back to routing.
    pub fn set_domain_paused(&self, domain: &str, paused: bool) {
        let domain: Arc<str> = Arc::from(domain.to_ascii_lowercase().as_str());
        tracing::info!(target: "tsubame::delivery", domain = %domain, paused, "domain pause changed by operator");
        let released = {
            let mut state = self.inner.lock();
            if paused {
                state.paused_domains.insert(domain);
                return;
            }
            state.paused_domains.remove(&domain);
            state.held.remove(&domain).unwrap_or_default()
        };
        for part in released {
            self.inner.route_part(part);
        }
    }

    /// Sends matching deferred and held parts to delivery now. Returns how many recipients:
    /// the deferred ones plus those waiting at sites whose back-off was lifted.
    pub fn retry_now(&self, filter: &Filter) -> u64 {
        let parts = {
            let sender = self.inner.sender_lookup();
            let mut state = self.inner.lock();
            let state = &mut *state;
            let routed = &state.routed;
            state.timers.take_where(|d| {
                let site = routed.get(&d.domain).map(|s| &**s);
                filter.is_empty() || filter.matches(d.id, &d.domain, site, &sender)
            })
        };
        let deferred: u64 = parts.iter().map(|p| p.rcpts.len() as u64).sum();
        let waiting = self.lift_backoff(filter, &parts);
        for part in parts {
            self.inner.route_part(part);
        }
        deferred + waiting
    }

    /// "Retry now" means now: sites backing off after failed connections (the retried
    /// parts' sites, or every site matching the filter) try again at once, as Postfix's
    /// flush forgets dead destinations. Operator pauses and response-rule suspensions stay.
    /// Returns how many recipients were waiting at the sites it released.
    fn lift_backoff(&self, filter: &Filter, parts: &[Part]) -> u64 {
        let sender = self.inner.sender_lookup();
        let mut state = self.inner.lock();
        let mut sites: std::collections::HashSet<Arc<str>> = parts
            .iter()
            .filter_map(|p| state.routed.get(&p.domain).cloned())
            .collect();
        for (name, site) in &state.sites {
            let ready_match = site
                .ready
                .iter()
                .any(|p| filter.is_empty() || filter.matches(p.id, &p.domain, Some(name), &sender));
            if ready_match || filter.site.as_deref() == Some(&**name) {
                sites.insert(name.clone());
            }
        }
        let mut lifted = Vec::new();
        let mut waiting = 0;
        for name in sites {
            if let Some(site) = state.sites.get_mut(&name)
                && site.backoff.take().is_some()
            {
                site.connect_failures = 0;
                waiting += site.ready.iter().map(|p| p.rcpts.len() as u64).sum::<u64>();
                tracing::info!(target: "tsubame::delivery", site = %name, "connection back-off lifted by retry");
                lifted.push(name);
            }
        }
        drop(state);
        for name in lifted {
            self.inner.kick(&name);
        }
        waiting
    }

    /// Bounces matching queued recipients (a DSN goes to the sender as usual). Returns how
    /// many recipients. Parts on a connection right now are not touched.
    pub fn bounce(&self, filter: &Filter, reason: &str) -> u64 {
        let sender = self.inner.sender_lookup();
        let parts = self.inner.lock().take_matching(filter, &sender);
        let reply = Reply::new(
            550,
            (5, 0, 0),
            format!("removed from the queue by an operator: {reason}"),
        );
        let mut count = 0;
        for part in parts {
            count += part.rcpts.len() as u64;
            let results = part.rcpts.iter().map(|&i| (i, reply.clone())).collect();
            let site: Arc<str> = Arc::from("operator");
            self.inner
                .settle(part, results, AttemptInfo::without_connection(site));
        }
        count
    }

    /// Deletes matching queued recipients without any notification. Returns how many.
    pub fn delete(&self, filter: &Filter) -> u64 {
        let sender = self.inner.sender_lookup();
        let parts = self.inner.lock().take_matching(filter, &sender);
        let mut count = 0;
        for part in parts {
            count += part.rcpts.len() as u64;
            self.inner.delete_part(part);
        }
        count
    }

    /// Deletes every waiting part of these messages without any notification (a cancelled
    /// campaign's queue). Parts on a connection right now finish their attempt. Returns how
    /// many recipients.
    pub fn delete_messages(&self, ids: &std::collections::HashSet<MessageId>) -> u64 {
        let parts = self.inner.lock().take_where(&|id, _, _| ids.contains(&id));
        let mut count = 0;
        for part in parts {
            count += part.rcpts.len() as u64;
            self.inner.delete_part(part);
        }
        count
    }

    /// The attempts recorded for a queued message.
    pub fn attempts(&self, id: MessageId) -> Vec<Event> {
        self.inner.events.attempts(id)
    }
}

impl super::Inner {
    /// Finds a queued message's sender in the spool: parts do not carry it (a large
    /// backlog would hold one string per message), so a filter by sender reads envelopes.
    fn sender_lookup(&self) -> impl Fn(MessageId) -> Option<String> + '_ {
        |id| {
            self.spool
                .envelope(id)
                .ok()
                .map(|(envelope, _)| envelope.sender)
        }
    }

    /// Finishes a part's recipients without delivery or notification.
    fn delete_part(self: &Arc<Self>, part: Part) {
        let finished = self.lock().part_finished(part.id);
        let now = now_ms();
        let sender = (self.sender_lookup())(part.id).unwrap_or_default();
        for &index in &part.rcpts {
            self.events.record(
                part.id,
                Event {
                    time_ms: now,
                    outcome: Outcome::Deleted,
                    message_id: part.id.to_string(),
                    sender: sender.clone(),
                    recipient: format!("#{index}@{}", part.domain),
                    site: "operator".into(),
                    attempt: part.attempts,
                    remote_host: None,
                    remote_ip: None,
                    response: "deleted by an operator".into(),
                    category: None,
                    tls: None,
                    attempt_ms: 0,
                    queued_ms: now.saturating_sub(part.received_ms),
                    auth_user: None,
                    attributes: None,
                },
                !finished,
            );
        }
        if finished {
            self.events.forget(part.id);
        }
        let inner = self.clone();
        let guard = self.guard();
        tokio::spawn(async move {
            let _guard = guard;
            let written = if finished {
                inner.spool.remove(part.id).await
            } else {
                inner.spool.recipients_done(part.id, part.rcpts).await
            };
            if let Err(err) = written {
                tracing::error!(id = %part.id, error = %err, "recording a deletion failed");
            }
        });
    }
}
