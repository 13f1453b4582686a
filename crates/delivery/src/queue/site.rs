//! A site: the ready queue and shaping state for one set of MX hosts.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Notify;

use super::Part;
use crate::route::Route;
use crate::shaping::{Bucket, Limits, Rate, ResponseRule};

/// Why a site takes no new work right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// An operator paused it.
    Paused,
    /// A response rule suspended it until then.
    Suspended { until: Instant, reason: String },
    /// Connections kept failing; backing off until then.
    BackingOff { until: Instant, reason: String },
}

pub struct Site {
    pub name: Arc<str>,
    pub route: Arc<Route>,
    /// The matched provider's name, if any.
    pub provider: Option<String>,
    /// The provider's cap on connections across all its sites.
    pub provider_connections_max: Option<u32>,
    pub limits: Limits,
    /// The provider's rules, then the global ones.
    pub rules: Arc<[ResponseRule]>,
    pub ready: VecDeque<Part>,
    /// Open or opening connections.
    pub connections: u32,
    /// Connections waiting for work.
    pub idle: u32,
    /// Connections still connecting: each will take a part as soon as it is up.
    pub opening: u32,
    pub connection_bucket: Option<Bucket>,
    pub message_bucket: Option<Bucket>,
    /// A response rule's temporary rate cap, until then, and why.
    pub throttle: Option<(Bucket, Instant, String)>,
    pub paused: bool,
    pub suspended: Option<(Instant, String)>,
    pub backoff: Option<(Instant, String)>,
    pub connect_failures: u32,
    /// Wakes a waiting connection when work arrives.
    pub notify: Arc<Notify>,
    pub delivered: u64,
    pub deferred: u64,
    pub bounced: u64,
}

impl Site {
    pub fn new(
        route: Arc<Route>,
        provider: Option<String>,
        limits: Limits,
        rules: Arc<[ResponseRule]>,
        now: Instant,
    ) -> Site {
        Site {
            name: route.site.clone(),
            route,
            provider,
            provider_connections_max: None,
            connection_bucket: limits.connection_rate.map(|r| Bucket::new(r, now)),
            message_bucket: limits.message_rate.map(|r| Bucket::new(r, now)),
            limits,
            rules,
            ready: VecDeque::new(),
            connections: 0,
            idle: 0,
            opening: 0,
            throttle: None,
            paused: false,
            suspended: None,
            backoff: None,
            connect_failures: 0,
            notify: Arc::new(Notify::new()),
            delivered: 0,
            deferred: 0,
            bounced: 0,
        }
    }

    /// What keeps the site from taking work now, if anything. Expired holds are cleared.
    pub fn hold(&mut self, now: Instant) -> Option<Hold> {
        if self.paused {
            return Some(Hold::Paused);
        }
        if let Some((until, reason)) = &self.suspended {
            if *until > now {
                return Some(Hold::Suspended {
                    until: *until,
                    reason: reason.clone(),
                });
            }
            tracing::info!(target: "tsubame::delivery", site = %self.name, "suspension ended");
            self.suspended = None;
        }
        if let Some((until, reason)) = &self.backoff {
            if *until > now {
                return Some(Hold::BackingOff {
                    until: *until,
                    reason: reason.clone(),
                });
            }
            self.backoff = None;
        }
        None
    }

    /// Takes a message token from the site's rate (and a throttle's, if one is active);
    /// `Err(wait)` when the caller must wait first.
    pub fn take_message_token(
        &mut self,
        now: Instant,
        share: f64,
    ) -> Result<(), std::time::Duration> {
        if let Some((bucket, until, _)) = &mut self.throttle {
            if *until <= now {
                self.throttle = None;
            } else {
                bucket.take_share(now, share)?;
            }
        }
        match &mut self.message_bucket {
            Some(bucket) => bucket.take_share(now, share),
            None => Ok(()),
        }
    }

    pub fn throttle(&mut self, rate: Rate, until: Instant, reason: String, now: Instant) {
        // Start empty: the throttle is a reaction to having sent too much already.
        self.throttle = Some((Bucket::empty(rate, now), until, reason));
    }
}
