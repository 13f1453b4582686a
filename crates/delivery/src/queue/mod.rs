//! The scheduler's state, without I/O: site queues, the retry timer, held parts and
//! per-message bookkeeping. The engine holds it under one mutex and keeps each critical
//! section short.
//!
//! A *part* is one message's pending recipients for one domain (at most
//! `recipients_per_transaction` of them). A part is in exactly one place: a site's ready
//! queue, the retry timer, the held list of a paused domain, being routed, or in flight on a
//! connection.

pub mod site;
pub mod timer;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spool::MessageId;

pub use site::{Hold, Site};
pub use timer::{Deferred, Timer};

/// Capacity an empty ready queue may keep; a larger one is given back.
const READY_CAPACITY_KEPT: usize = 4096;

/// How soon a site blocked by its provider's total connection cap looks again.
const PROVIDER_RETRY: Duration = Duration::from_millis(50);

/// One message's recipients for one domain.
#[derive(Debug, Clone)]
pub struct Part {
    pub id: MessageId,
    /// Lower-case recipient domain.
    pub domain: Arc<str>,
    /// Indices into the envelope's recipients.
    pub rcpts: Vec<u32>,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the message was accepted, Unix milliseconds.
    pub received_ms: u64,
    /// A "delayed" DSN went out for these recipients (kept in memory only: after a restart
    /// one more may be sent).
    pub delay_warned: bool,
    /// The message as it arrived, for the first attempt only: a part that waits (retry
    /// timer, paused domain) lets go of it, and later attempts read the spool.
    pub fresh: Option<Arc<Fresh>>,
}

/// A message's envelope and record from its arrival notice, shared by its parts.
#[derive(Debug)]
pub struct Fresh {
    pub envelope: spool::Envelope,
    pub record: spool::Stored,
}

/// What a connection should do next.
pub enum Next {
    Deliver(Part),
    /// The site's rate says wait this long.
    Wait(Duration),
    /// Nothing queued: wait on the site's notify, at most the idle timeout.
    Empty(Arc<tokio::sync::Notify>, Duration),
    /// Close: the site is held, or the engine is stopping.
    Stop,
}

/// Which parts an operator's command applies to.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub id: Option<MessageId>,
    pub domain: Option<String>,
    pub sender: Option<String>,
    pub site: Option<String>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.id.is_none() && self.domain.is_none() && self.sender.is_none() && self.site.is_none()
    }

    /// True when the part (message `id`, `domain`) matches every field given; `site` is
    /// where the domain goes. Parts do not carry their sender: `sender` looks it up (from
    /// the spool), and only when the filter names one.
    pub fn matches(
        &self,
        id: MessageId,
        domain: &str,
        site: Option<&str>,
        sender: impl FnOnce(MessageId) -> Option<String>,
    ) -> bool {
        self.id.is_none_or(|want| want == id)
            && self
                .domain
                .as_deref()
                .is_none_or(|d| d.eq_ignore_ascii_case(domain))
            && self.site.as_deref().is_none_or(|s| site == Some(s))
            && self
                .sender
                .as_deref()
                .is_none_or(|s| sender(id).is_some_and(|found| s.eq_ignore_ascii_case(&found)))
    }
}

#[derive(Default)]
pub struct State {
    pub sites: HashMap<Arc<str>, Site>,
    /// Deferred parts by due time.
    pub timers: Timer,
    /// Parts outstanding per message of several parts; a message that is not here has one,
    /// and is finished when it is. (Most messages have one part: no entry for them keeps a
    /// large backlog small.)
    pub messages: HashMap<MessageId, u32>,
    pub paused_domains: HashSet<Arc<str>>,
    /// Parts of paused domains.
    pub held: HashMap<Arc<str>, Vec<Part>>,
    /// The site each domain was last routed to (its keys are the domain names parts share).
    pub routed: HashMap<Arc<str>, Arc<str>>,
    /// The last failure per domain with deferred mail, for the queue view.
    pub domain_errors: HashMap<Arc<str>, Arc<str>>,
    /// Sites to look at again at a given time (rate limits, suspensions, back-off).
    pub kicks: BTreeSet<(Instant, Arc<str>)>,
    /// Parts being routed (DNS in progress).
    pub routing: u64,
    /// Parts on connections right now.
    pub in_flight: u64,
    /// Open connections per provider (all its sites together).
    pub provider_connections: HashMap<String, u32>,
    pub stopping: bool,
    /// Cluster mode: this node lost touch with the cluster, whose other nodes may take its
    /// mail over at any moment; nothing new starts until it is back.
    pub fenced: bool,
    /// Cluster mode: delivery may start only before this moment, extended by every stored
    /// heartbeat. A process that was frozen (or cut off) past it starts nothing, even before
    /// its cluster loop runs again to notice.
    pub lease_until: Option<Instant>,
    /// Cluster mode: this node's share of every site's and provider's limits.
    pub share: shares::Share,
}

impl State {
    pub fn lease_expired(&self, now: Instant) -> bool {
        self.lease_until.is_some_and(|until| now >= until)
    }

    /// Registers a newly admitted message with this many parts.
    pub fn add_message(&mut self, id: MessageId, parts: u32) {
        if parts > 1 {
            self.messages.insert(id, parts);
        }
    }

    /// A part reached its end (every recipient final). True when the whole message did.
    pub fn part_finished(&mut self, id: MessageId) -> bool {
        match self.messages.get_mut(&id) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                self.messages.remove(&id);
                true
            }
            None => true,
        }
    }

    /// Makes sure the route's site exists (built by `make` on first sight) and remembers
    /// that `domain` goes there.
    pub fn ensure_site(
        &mut self,
        domain: &Arc<str>,
        route: &Arc<crate::route::Route>,
        make: impl FnOnce() -> Site,
    ) {
        if self.routed.get(domain) != Some(&route.site) {
            self.routed.insert(domain.clone(), route.site.clone());
        }
        match self.sites.get_mut(&route.site) {
            Some(site) => {
                if site.route != *route {
                    site.route = route.clone();
                }
            }
            None => {
                self.sites.insert(route.site.clone(), make());
            }
        }
    }

    /// Puts a part on a site's ready queue (or holds it when its domain is paused).
    pub fn push_ready(&mut self, mut part: Part, site_name: &Arc<str>) {
        if self.paused_domains.contains(&part.domain) {
            part.fresh = None;
            self.held.entry(part.domain.clone()).or_default().push(part);
            return;
        }
        if let Some(site) = self.sites.get_mut(site_name) {
            site.ready.push_back(part);
            site.notify.notify_one();
        }
    }

    /// Schedules a deferred part. True when it is now the earliest timer.
    pub fn schedule(&mut self, part: Part, due: Instant) -> bool {
        self.timers.push(part, due)
    }

    /// Removes and returns every part due by `now`.
    pub fn take_due(&mut self, now: Instant) -> Vec<Part> {
        self.timers.take_due(now)
    }

    /// Removes and returns the kicked sites due by `now`.
    pub fn take_kicks(&mut self, now: Instant) -> Vec<Arc<str>> {
        let mut sites = Vec::new();
        while let Some(first) = self.kicks.first() {
            if first.0 > now {
                break;
            }
            if let Some((_, site)) = self.kicks.pop_first() {
                sites.push(site);
            }
        }
        sites
    }

    /// The next time the timer loop must wake.
    pub fn next_wake(&self) -> Option<Instant> {
        let timer = self.timers.next_due();
        let kick = self.kicks.first().map(|(t, _)| *t);
        match (timer, kick) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Decides whether `site` gets one more connection now; if so counts it as open. When a
    /// rate or hold is in the way, a kick is scheduled for when it ends.
    pub fn open_connection(&mut self, site_name: &Arc<str>, now: Instant) -> bool {
        if self.stopping || self.fenced || self.lease_expired(now) {
            return false;
        }
        let Some(site) = self.sites.get_mut(site_name) else {
            return false;
        };
        // Parts that idle or still-connecting connections will take need no new connection.
        let share = self.share;
        if site.ready.len() <= (site.idle + site.opening) as usize
            || u64::from(site.connections) >= share.part(u64::from(site.limits.connections_max))
        {
            return false;
        }
        match site.hold(now) {
            None => {}
            Some(Hold::Paused) => return false,
            Some(Hold::Suspended { until, .. } | Hold::BackingOff { until, .. }) => {
                self.kicks.insert((until, site_name.clone()));
                return false;
            }
        }
        if let (Some(provider), Some(max)) = (&site.provider, site.provider_connections_max)
            && u64::from(
                self.provider_connections
                    .get(provider)
                    .copied()
                    .unwrap_or(0),
            ) >= share.part(u64::from(max))
        {
            // Another site of the provider holds the budget; look again shortly.
            self.kicks.insert((now + PROVIDER_RETRY, site_name.clone()));
            return false;
        }
        if let Some(bucket) = &mut site.connection_bucket
            && let Err(wait) = bucket.take_share(now, share.fraction())
        {
            self.kicks.insert((now + wait, site_name.clone()));
            return false;
        }
        site.connections += 1;
        site.opening += 1;
        if let Some(provider) = &site.provider {
            *self
                .provider_connections
                .entry(provider.clone())
                .or_default() += 1;
        }
        true
    }

    /// The next part for a connection to `site_name`.
    pub fn next_part(&mut self, site_name: &Arc<str>, now: Instant) -> Next {
        let stopping = self.stopping || self.fenced || self.lease_expired(now);
        let share = self.share;
        let Some(site) = self.sites.get_mut(site_name) else {
            return Next::Stop;
        };
        if stopping || site.hold(now).is_some() {
            return Next::Stop;
        }
        // This node's part of the site's connections shrank (a node joined, or the leftover
        // moved on): the connections beyond it close after their current message.
        if !share.is_whole()
            && u64::from(site.connections) > share.part(u64::from(site.limits.connections_max))
        {
            return Next::Stop;
        }
        loop {
            let Some(front) = site.ready.front() else {
                return Next::Empty(site.notify.clone(), site.limits.idle_timeout);
            };
            if self.paused_domains.contains(&front.domain) {
                if let Some(part) = site.ready.pop_front() {
                    self.held.entry(part.domain.clone()).or_default().push(part);
                }
                continue;
            }
            if let Err(wait) = site.take_message_token(now, share.fraction()) {
                return Next::Wait(wait);
            }
            let Some(part) = site.ready.pop_front() else {
                continue;
            };
            if site.ready.is_empty() && site.ready.capacity() > READY_CAPACITY_KEPT {
                // A queue that held a large backlog gives its memory back once drained.
                site.ready.shrink_to_fit();
            }
            self.in_flight += 1;
            return Next::Deliver(part);
        }
    }

    /// A connection to the site finished connecting, successfully or not.
    pub fn connection_opened(&mut self, site_name: &Arc<str>) {
        if let Some(site) = self.sites.get_mut(site_name) {
            site.opening = site.opening.saturating_sub(1);
        }
    }

    /// A connection to the site closed.
    pub fn connection_closed(&mut self, site_name: &Arc<str>) {
        if let Some(site) = self.sites.get_mut(site_name) {
            site.connections = site.connections.saturating_sub(1);
            if let Some(count) = site
                .provider
                .as_ref()
                .and_then(|p| self.provider_connections.get_mut(p))
            {
                *count = count.saturating_sub(1);
            }
        }
    }

    /// Removes queued (not in-flight) parts matching the filter from the ready queues, the
    /// timer and the held lists. `sender` finds a message's sender (asked only when the
    /// filter names one).
    pub fn take_matching(
        &mut self,
        filter: &Filter,
        sender: &dyn Fn(MessageId) -> Option<String>,
    ) -> Vec<Part> {
        self.take_where(&|id, domain, site| filter.matches(id, domain, site, sender))
    }

    /// Takes every waiting part (ready, on a timer, or held) for which `wanted(message,
    /// domain, site)` holds; the site is `None` for held parts.
    pub fn take_where(
        &mut self,
        wanted: &dyn Fn(MessageId, &str, Option<&str>) -> bool,
    ) -> Vec<Part> {
        let mut taken = Vec::new();
        for site in self.sites.values_mut() {
            let name = site.name.clone();
            let (keep, take): (Vec<Part>, Vec<Part>) = site
                .ready
                .drain(..)
                .partition(|p| !wanted(p.id, &p.domain, Some(&name)));
            site.ready = keep.into();
            taken.extend(take);
        }
        let routed = &self.routed;
        taken.extend(self.timers.take_where(|d| {
            let site = routed.get(&d.domain).map(|s| &**s);
            wanted(d.id, &d.domain, site)
        }));
        for parts in self.held.values_mut() {
            let (keep, take): (Vec<Part>, Vec<Part>) = parts
                .drain(..)
                .partition(|p| !wanted(p.id, &p.domain, None));
            *parts = keep;
            taken.extend(take);
        }
        self.held.retain(|_, parts| !parts.is_empty());
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(n: u128) -> Part {
        Part {
            id: MessageId(n),
            domain: Arc::from("example.com"),
            rcpts: vec![0],
            attempts: 1,
            received_ms: 0,
            delay_warned: false,
            fresh: None,
        }
    }

    #[test]
    fn timers_come_back_in_due_order_and_equal_times_stay_apart() {
        let mut state = State::default();
        let base = Instant::now() + Duration::from_secs(60);
        assert!(state.schedule(part(1), base + Duration::from_millis(30)));
        assert!(
            state.schedule(part(2), base),
            "earlier: now the first timer"
        );
        assert!(!state.schedule(part(3), base), "same time: not earlier");
        assert!(!state.schedule(part(4), base + Duration::from_secs(3600)));
        assert_eq!(state.timers.len(), 4);
        let first = state.next_wake().expect("a timer");
        assert!(first <= base && base - first < Duration::from_millis(1));
        assert!(state.take_due(base - Duration::from_millis(5)).is_empty());
        let due: Vec<u128> = state
            .take_due(base + Duration::from_millis(30))
            .iter()
            .map(|p| p.id.0)
            .collect();
        assert_eq!(due, vec![2, 3, 1]);
        let last = state.take_due(base + Duration::from_secs(7200));
        assert_eq!(last.len(), 1);
        assert!(state.next_wake().is_none());
    }
}
