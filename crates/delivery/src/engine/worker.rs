//! One connection to a site: connect (hosts in preference order, each host's addresses in
//! turn), then deliver parts from the site's ready queue until the queue stays empty for the
//! idle timeout, the connection has carried its limit of messages, or the site is held.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use smtp_wire::Reply;
use smtp_wire::client::{Outbound, OutboundRecipient, Stage};
use spool::Envelope;

use super::settle::AttemptInfo;
use super::{ActiveGuard, Inner};
use crate::connection::{Connection, ConnectionError, Destination};
use crate::queue::{Fresh, Next, Part};
use crate::route::Route;

/// Addresses tried per host before moving to the next host.
const ADDRESSES_PER_HOST_MAX: usize = 4;

struct Open {
    conn: Connection,
    host: String,
    ip: IpAddr,
}

pub(crate) async fn run(inner: Arc<Inner>, site: Arc<str>, route: Arc<Route>, _guard: ActiveGuard) {
    let connected = connect(&inner, &route).await;
    inner.lock().connection_opened(&site);
    let mut open = match connected {
        Ok(open) => open,
        Err(reply) => {
            inner.connect_failed(&site, reply);
            inner.lock().connection_closed(&site);
            return;
        }
    };
    inner.connect_succeeded(&site);
    metrics::gauge!("tsubame_delivery_connections", "site" => site.to_string()).increment(1.0);
    let messages_max = inner
        .lock()
        .sites
        .get(&site)
        .map_or(1, |s| s.limits.messages_per_connection) as u64;
    let mut healthy = true;
    while healthy && open.conn.messages_sent < messages_max {
        // With a poisoned spool no outcome can be recorded: delivering more would only
        // create duplicates after the restart that recovers it.
        if inner.spool.is_poisoned() {
            break;
        }
        let next = inner.lock().next_part(&site, Instant::now());
        match next {
            Next::Deliver(part) => healthy = deliver(&inner, &site, &mut open, part).await,
            Next::Wait(wait) => tokio::time::sleep(wait).await,
            Next::Empty(notify, idle) => {
                let notified = notify.notified();
                set_idle(&inner, &site, 1);
                let woken = tokio::time::timeout(idle, notified).await.is_ok();
                set_idle(&inner, &site, -1);
                if !woken {
                    break;
                }
            }
            Next::Stop => break,
        }
    }
    if healthy {
        open.conn.quit().await;
    }
    metrics::gauge!("tsubame_delivery_connections", "site" => site.to_string()).decrement(1.0);
    inner.lock().connection_closed(&site);
    // A replacement, when this one left work behind (message limit reached).
    inner.kick(&site);
}

fn set_idle(inner: &Inner, site: &Arc<str>, delta: i32) {
    if let Some(site) = inner.lock().sites.get_mut(site) {
        site.idle = site.idle.saturating_add_signed(delta);
    }
}

/// Tries each host, and each of its addresses, until one greets us and satisfies the TLS
/// policy. The error is the reply (real or ours) that the parts will be deferred with.
async fn connect(inner: &Inner, route: &Route) -> Result<Open, Reply> {
    let mut last = Reply::new(451, (4, 4, 1), "no mail exchanger could be tried");
    for host in &route.hosts {
        let addrs = match inner.router.dns().addresses(&host.host).await {
            Ok(addrs) if addrs.is_empty() => {
                last = Reply::new(
                    451,
                    (4, 4, 3),
                    format!("{} has no address records", host.host),
                );
                continue;
            }
            Ok(addrs) => addrs,
            Err(err) => {
                last = Reply::new(451, (4, 4, 3), err.to_string());
                continue;
            }
        };
        for ip in addrs.into_iter().take(ADDRESSES_PER_HOST_MAX) {
            let destination = Destination {
                addr: SocketAddr::new(ip, host.port),
                host_name: host.host.clone(),
                tls: route.tls,
                auth: route.auth.clone(),
            };
            match Connection::open(
                &destination,
                &inner.config.hostname,
                inner.config.timeouts,
                &inner.tls,
            )
            .await
            {
                Ok(conn) => {
                    return Ok(Open {
                        conn,
                        host: host.host.clone(),
                        ip,
                    });
                }
                Err(err) => {
                    tracing::debug!(host = %host.host, %ip, error = %err, "connection attempt failed");
                    last = connection_error_reply(&err, &host.host);
                }
            }
        }
    }
    Err(last)
}

/// What a connection failure means for the recipients in flight or waiting.
pub(crate) fn connection_error_reply(err: &ConnectionError, host: &str) -> Reply {
    match err {
        ConnectionError::Refused(reply) => reply.clone(),
        ConnectionError::Connect { addr, source } => Reply::new(
            451,
            (4, 4, 1),
            format!("connect to {host}[{addr}] failed: {source}"),
        ),
        ConnectionError::Tls(why) => Reply::new(451, (4, 7, 10), format!("TLS with {host}: {why}")),
        // A refused login is a configuration problem to fix, not a reason to bounce mail.
        ConnectionError::Auth(reply) => Reply::new(
            451,
            (4, 7, 8),
            format!("authentication to {host} failed: {}", reply.summary()),
        ),
        ConnectionError::Timeout(stage) => Reply::new(
            451,
            (4, 4, 2),
            format!("timed out talking to {host} in stage {stage:?}"),
        ),
        ConnectionError::Lost(why) => {
            Reply::new(451, (4, 4, 2), format!("connection to {host} lost: {why}"))
        }
    }
}

fn outbound(envelope: &Envelope, rcpts: &[u32]) -> Outbound {
    let notify_text = |bits: u8| -> Option<String> {
        if bits == 0 {
            return None;
        }
        if bits & crate::outcome::dsn::NOTIFY_NEVER != 0 {
            return Some("NEVER".into());
        }
        let names = [(1u8, "SUCCESS"), (2, "FAILURE"), (4, "DELAY")];
        let list: Vec<&str> = names
            .iter()
            .filter(|(bit, _)| bits & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        Some(list.join(","))
    };
    Outbound {
        sender: envelope.sender.clone(),
        recipients: rcpts
            .iter()
            .filter_map(|&i| envelope.recipients.get(i as usize))
            .map(|r| OutboundRecipient {
                address: r.address.clone(),
                notify: notify_text(r.notify),
                orcpt: r.orcpt.clone(),
            })
            .collect(),
        dsn_ret: match envelope.dsn_ret {
            1 => Some("FULL"),
            2 => Some("HDRS"),
            _ => None,
        },
        dsn_envid: envelope.dsn_envid.clone(),
        body_8bit: envelope.flags & Envelope::FLAG_8BITMIME != 0,
        smtputf8: envelope.flags & Envelope::FLAG_SMTPUTF8 != 0,
        content_canonical: envelope.flags & Envelope::FLAG_CANONICAL != 0,
    }
}

/// A message ready to send: kept from its arrival, or read back from the spool.
enum Loaded {
    Fresh(Arc<Fresh>),
    Read(Box<Envelope>, Vec<u8>),
}

impl Loaded {
    fn envelope(&self) -> &Envelope {
        match self {
            Loaded::Fresh(fresh) => &fresh.envelope,
            Loaded::Read(envelope, _) => envelope,
        }
    }

    fn content(&self) -> &[u8] {
        match self {
            Loaded::Fresh(fresh) => fresh.record.content(),
            Loaded::Read(_, content) => content,
        }
    }
}

/// The part's message and which recipients are final. The spool's index is asked even
/// for a fresh message: an operator may have removed it meanwhile.
fn load(inner: &Inner, part: &mut Part) -> Result<(Loaded, Vec<bool>), spool::SpoolError> {
    match part.fresh.take() {
        Some(fresh) => {
            let done = inner.spool.recipients_final(part.id)?;
            Ok((Loaded::Fresh(fresh), done))
        }
        None => {
            let (envelope, content, done) = inner.spool.read(part.id)?;
            Ok((Loaded::Read(Box::new(envelope), content), done))
        }
    }
}

/// Delivers one part; false when the connection can no longer be used.
async fn deliver(inner: &Arc<Inner>, site: &Arc<str>, open: &mut Open, mut part: Part) -> bool {
    let (loaded, done) = match load(inner, &mut part) {
        Ok(found) => found,
        Err(spool::SpoolError::NotFound) => {
            // Removed by an operator while queued.
            inner.lock().in_flight -= 1;
            inner.part_vanished(part);
            return true;
        }
        Err(err) => {
            tracing::error!(id = %part.id, error = %err, "cannot read a spooled message; deferring it");
            let reply = Reply::new(451, (4, 3, 0), format!("local spool read error: {err}"));
            let results = part.rcpts.iter().map(|&i| (i, reply.clone())).collect();
            let mut info = AttemptInfo::without_connection(site.clone());
            info.on_connection = true;
            inner.settle(part, results, info);
            return true;
        }
    };
    let envelope = loaded.envelope();
    part.rcpts
        .retain(|&i| !done.get(i as usize).copied().unwrap_or(true));
    if part.rcpts.is_empty() {
        inner.lock().in_flight -= 1;
        inner.part_vanished(part);
        return true;
    }
    let message = outbound(envelope, &part.rcpts);
    let addresses: Vec<String> = message
        .recipients
        .iter()
        .map(|r| r.address.clone())
        .collect();
    let started = Instant::now();
    let delivered = open.conn.deliver(&message, loaded.content()).await;
    let mut info = AttemptInfo {
        site: site.clone(),
        host: Some(open.host.clone()),
        ip: Some(open.ip),
        tls: open.conn.tls_version.clone(),
        started,
        remote_dsn: open.conn.capabilities().dsn,
        on_connection: true,
        addresses: Some(addresses),
        success_wanted: part.rcpts.iter().any(|&i| {
            envelope
                .recipients
                .get(i as usize)
                .is_some_and(|r| r.notify & crate::outcome::dsn::NOTIFY_SUCCESS != 0)
        }),
        owner: Some(super::settle::Owner::of(envelope)),
    };
    match delivered {
        Ok(outcome) => {
            let results = part.rcpts.iter().copied().zip(outcome.recipients).collect();
            inner.settle(part, results, info);
            true
        }
        Err(err)
            if open.conn.messages_sent > 1
                && open.conn.failed_stage() == Some(Stage::MailFrom)
                && !matches!(err, ConnectionError::Timeout(_)) =>
        {
            // A reused connection the server had already closed: nothing of this
            // transaction was answered, so nothing can have been accepted. The part goes back
            // to the front of the queue for a fresh connection, with no attempt counted.
            tracing::debug!(site = %site, error = %err, "reused connection was closed by the server; requeueing");
            inner.requeue_front(site, part);
            false
        }
        Err(err) => {
            let reply = connection_error_reply(&err, &open.host);
            info.tls = open.conn.tls_version.clone();
            let results = part.rcpts.iter().map(|&i| (i, reply.clone())).collect();
            inner.settle(part, results, info);
            false
        }
    }
}
