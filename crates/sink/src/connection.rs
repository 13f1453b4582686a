//! One task per connection: the connect decision, then the session driven over the socket
//! (and over TLS after STARTTLS), with the configured delays, recipient and end-of-data
//! decisions, capture and the per-connection message limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use smtp_wire::{Event, PeerContext, Reply, Session};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use crate::Shared;
use crate::policy::{Outcome, outcome};
use crate::stats::Local;

const READ_BUFFER_BYTES: usize = 64 * 1024;
/// How long a reply may wait for a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let accepted = AtomicU64::new(0);
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(pair) => pair,
            Err(err) => {
                // EMFILE and friends: back off rather than spin.
                tracing::warn!(error = %err, "sink accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let index = accepted.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(handle(shared.clone(), tcp, index));
    }
}

enum Exit {
    Closed,
    StartTls,
}

/// Per-connection state the driver keeps beside the session.
struct Conn<'a> {
    shared: &'a Shared,
    rng: SmallRng,
    local: Local,
    messages: u64,
    /// When the first byte of the current transaction arrived.
    transaction_started: Option<Instant>,
    buf: Vec<u8>,
}

async fn handle(shared: Arc<Shared>, mut tcp: TcpStream, index: u64) {
    let stats = &shared.stats;
    let config = &shared.config;
    let over_limit =
        config.connections_max > 0 && stats.open.load(Ordering::Relaxed) >= config.connections_max;
    if over_limit {
        stats.connections_over_limit.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("tsubame_sink_connections_refused_total", "reason" => "limit")
            .increment(1);
        let reply = Reply::new(
            421,
            (4, 7, 0),
            "sink: too many connections, try again later",
        );
        let _ = timeout(
            WRITE_TIMEOUT,
            tcp.write_all(reply.to_wire_string().as_bytes()),
        )
        .await;
        let _ = tcp.shutdown().await;
        return;
    }
    stats.opened();
    let started = Instant::now();
    // Each connection has its own generator, derived from the seed and its arrival order.
    let mut conn = Conn {
        shared: &shared,
        rng: SmallRng::seed_from_u64(config.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        local: Local::new(),
        messages: 0,
        transaction_started: None,
        buf: vec![0u8; READ_BUFFER_BYTES],
    };
    let refusal = config.policy.at_connect(conn.rng.random());
    stats.count(
        "connect",
        refusal.as_ref().map_or(Outcome::Accepted, outcome),
    );
    if let Some(reply) = refusal {
        tokio::time::sleep(config.command_latency).await;
        let _ = timeout(
            WRITE_TIMEOUT,
            tcp.write_all(reply.to_wire_string().as_bytes()),
        )
        .await;
        let _ = tcp.shutdown().await;
    } else {
        let mut session = Session::new(
            shared.session_config.clone(),
            PeerContext {
                relay_trusted: true,
                tls_active: false,
            },
        );
        if let Exit::StartTls = conn.drive(&mut tcp, &mut session).await
            && let Some(acceptor) = &shared.tls
        {
            match timeout(Duration::from_secs(30), acceptor.accept(&mut tcp)).await {
                Ok(Ok(mut tls)) => {
                    stats.tls_sessions.fetch_add(1, Ordering::Relaxed);
                    conn.drive(&mut tls, &mut session).await;
                }
                Ok(Err(err)) => tracing::debug!(error = %err, "sink TLS handshake failed"),
                Err(_) => tracing::debug!("sink TLS handshake timed out"),
            }
        }
    }
    let local = std::mem::replace(&mut conn.local, Local::new());
    stats.closed(local, started.elapsed());
}

impl Conn<'_> {
    async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        session: &mut Session,
    ) -> Exit {
        let config = &self.shared.config;
        loop {
            let event = session.advance();
            let malformed = session.take_rejected().len() as u64;
            if malformed > 0 {
                self.shared
                    .stats
                    .messages_malformed
                    .fetch_add(malformed, Ordering::Relaxed);
                self.transaction_done();
            }
            match event {
                Event::NeedInput => {}
                // The sink's session config leaves local checks off: never asked.
                Event::CheckLocal(_) => {
                    session.complete_local(false);
                    continue;
                }
                Event::CheckRecipient(address) => {
                    let refusal = config.policy.at_rcpt(&address, self.rng.random());
                    self.shared
                        .stats
                        .count("rcpt", refusal.as_ref().map_or(Outcome::Accepted, outcome));
                    session.complete_recipient(refusal);
                    continue;
                }
                Event::Submit(txn) => {
                    let reply = config.policy.at_data(self.rng.random());
                    let result = outcome(&reply);
                    self.shared.stats.count("data", result);
                    if result == Outcome::Accepted {
                        self.shared
                            .stats
                            .bytes
                            .fetch_add(txn.content.len() as u64, Ordering::Relaxed);
                        if let Some(capture) = &self.shared.capture
                            && let Err(err) = capture.write(&txn).await
                        {
                            tracing::warn!(error = %err, "sink could not capture a message");
                        }
                    }
                    self.transaction_done();
                    self.messages += 1;
                    // The end-of-data reply waits alone: flush what came before it first.
                    if !write(io, session).await {
                        return Exit::Closed;
                    }
                    tokio::time::sleep(config.data_latency).await;
                    session.complete_submission(reply);
                    if config.messages_per_connection > 0
                        && self.messages >= config.messages_per_connection
                    {
                        // Like a provider recycling connections: the reply, then 421 and close.
                        let _ = write(io, session).await;
                        self.shared
                            .stats
                            .connections_recycled
                            .fetch_add(1, Ordering::Relaxed);
                        let bye = Reply::new(
                            421,
                            (4, 7, 0),
                            "sink: too many messages on this connection, closing",
                        );
                        let _ =
                            timeout(WRITE_TIMEOUT, io.write_all(bye.to_wire_string().as_bytes()))
                                .await;
                        let _ = io.shutdown().await;
                        return Exit::Closed;
                    }
                    if !write(io, session).await {
                        return Exit::Closed;
                    }
                    continue;
                }
                Event::Authenticate(_) => {
                    session.complete_auth(None);
                    continue;
                }
                Event::StartTls => {
                    let _ = self.delayed_write(io, session).await;
                    return Exit::StartTls;
                }
                Event::Close => {
                    let _ = self.delayed_write(io, session).await;
                    let _ = io.shutdown().await;
                    return Exit::Closed;
                }
            }
            if !self.delayed_write(io, session).await {
                return Exit::Closed;
            }
            let n = match timeout(config.idle_timeout, io.read(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Exit::Closed,
                Err(_) => {
                    let bye = Reply::new(421, (4, 4, 2), "sink: idle timeout, closing");
                    let _ =
                        timeout(WRITE_TIMEOUT, io.write_all(bye.to_wire_string().as_bytes())).await;
                    return Exit::Closed;
                }
                Ok(Ok(n)) => n,
            };
            if self.transaction_started.is_none() {
                self.transaction_started = Some(Instant::now());
            }
            session.feed(&self.buf[..n]);
        }
    }

    /// Replies to commands wait for the command latency, when one is set.
    async fn delayed_write<S: AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        session: &mut Session,
    ) -> bool {
        if session.output().is_empty() {
            return true;
        }
        tokio::time::sleep(self.shared.config.command_latency).await;
        write(io, session).await
    }

    fn transaction_done(&mut self) {
        if let Some(started) = self.transaction_started.take() {
            self.local.transaction(started.elapsed());
        }
    }
}

async fn write<S: AsyncWrite + Unpin>(io: &mut S, session: &mut Session) -> bool {
    if session.output().is_empty() {
        return true;
    }
    let ok = matches!(
        timeout(WRITE_TIMEOUT, async {
            io.write_all(session.output()).await?;
            io.flush().await
        })
        .await,
        Ok(Ok(()))
    );
    session.clear_output();
    ok
}
