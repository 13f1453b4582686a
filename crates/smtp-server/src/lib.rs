//! SMTP ingress for tsubame: listeners, TLS, admission limits, and the async driver around
//! the sans-IO session of `smtp-wire`. Accepted messages go to the `spool`.
//!
//! # Layout
//! - [`Server`] (this file): binds listeners, runs accept loops, shuts down gracefully.
//! - `connection`: one task per connection (early-talker check, STARTTLS, timeouts).
//! - [`limits`]: admission (global, per-IP, per-IP rate).
//! - `submit`: transaction → headers → spool → reply, with the log line and metrics.
//! - [`tenants`]: the hook for tenants' SMTP AUTH, checks, limits and DKIM signing.
//! - [`headers`], [`tls`], [`users`], [`cidr`], [`config`].

pub mod cidr;
pub mod config;
mod connection;
pub mod headers;
pub mod limits;
pub mod long_lines;
pub mod proxy_header;
mod submit;
pub mod tenants;
pub mod tls;
pub mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_wire::SessionConfig;
use spool::Spool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

pub use config::{ConnectionLimits, ServerConfig, Timeouts};
pub use submit::Ingress;
pub use tenants::{Login, Tenants};

use connection::Shared;
use limits::Limiter;

/// Pending connections the kernel queues per listener before we accept them.
const LISTEN_BACKLOG: u32 = 4096;

/// Bound SMTP listeners, ready to run.
pub struct Server {
    shared: Arc<Shared>,
    listeners: Vec<(TcpListener, bool)>,
    limiter: Limiter,
    shutdown_tx: watch::Sender<bool>,
}

impl Server {
    /// Binds every configured listener. Implicit-TLS listeners need `tls`.
    pub fn bind(
        config: ServerConfig,
        spool: Spool,
        tls: Option<Arc<rustls::ServerConfig>>,
        users_path: PathBuf,
        tenants: Option<Arc<dyn Tenants>>,
    ) -> std::io::Result<Server> {
        let mut listeners = Vec::new();
        for addr in &config.listen {
            listeners.push((listen(*addr)?, false));
        }
        if tls.is_some() {
            for addr in &config.listen_tls {
                listeners.push((listen(*addr)?, true));
            }
        }
        let session_config = Arc::new(SessionConfig {
            hostname: config.hostname.clone(),
            message_bytes_max: config.message_bytes_max,
            recipients_max: config.recipients_max,
            command_line_bytes_max: config.command_line_bytes_max,
            bad_commands_max: config.bad_commands_max,
            starttls_available: tls.is_some(),
            auth_plaintext_allowed: config.auth_plaintext_allowed,
            recipient_checks: false,
            local_checks: tenants.is_some(),
        });
        let (shutdown_tx, shutdown) = watch::channel(false);
        let limiter = Limiter::new(config.limits.clone());
        let shared = Arc::new(Shared {
            ingress: Ingress::new(spool, config.hostname.clone(), tenants.clone()),
            tenants,
            tls: tls.map(TlsAcceptor::from),
            session_config,
            config,
            users_path,
            shutdown,
        });
        Ok(Server {
            shared,
            listeners,
            limiter,
            shutdown_tx,
        })
    }

    /// Addresses actually bound, plain listeners first (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    /// Accepts connections until `stop` resolves, then stops accepting, tells idle sessions
    /// to go (421), lets transactions in flight finish for up to the shutdown grace, and
    /// returns. Sessions still running after the grace are abandoned unacknowledged.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let mut accept_tasks = Vec::new();
        for (listener, implicit_tls) in self.listeners {
            let shared = self.shared.clone();
            let limiter = self.limiter.clone();
            let done = done_tx.clone();
            accept_tasks.push(tokio::spawn(accept_loop(
                listener,
                implicit_tls,
                shared,
                limiter,
                done,
            )));
        }
        drop(done_tx);
        stop.await;
        for task in &accept_tasks {
            task.abort();
        }
        let _ = self.shutdown_tx.send(true);
        let grace = self.shared.config.timeouts.shutdown_grace;
        tracing::info!(open = self.limiter.open(), grace = ?grace, "SMTP listeners closed; draining sessions");
        for task in accept_tasks {
            let _ = task.await;
        }
        if tokio::time::timeout(grace, done_rx.recv()).await.is_err() {
            tracing::warn!(
                open = self.limiter.open(),
                "shutdown grace over; abandoning sessions"
            );
        }
    }
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn accept_loop(
    listener: TcpListener,
    implicit_tls: bool,
    shared: Arc<Shared>,
    limiter: Limiter,
    done: mpsc::Sender<()>,
) {
    loop {
        let (mut tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // EMFILE and friends: back off instead of spinning; the cap will free up.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if shared
            .config
            .proxy_protocol_from
            .iter()
            .any(|n| n.contains(peer.ip()))
        {
            // The client's address comes in the balancer's header: admission waits for it.
            let (shared, limiter, done) = (shared.clone(), limiter.clone(), done.clone());
            tokio::spawn(async move {
                let Some(client) = proxied_client(&mut tcp, peer).await else {
                    return;
                };
                admit(&shared, &limiter, tcp, client, implicit_tls, done).await;
            });
            continue;
        }
        admit(&shared, &limiter, tcp, peer, implicit_tls, done.clone()).await;
    }
}

/// Admits `peer` (limits) and runs its connection, or refuses it.
async fn admit(
    shared: &Arc<Shared>,
    limiter: &Limiter,
    mut tcp: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
    done: mpsc::Sender<()>,
) {
    match limiter.admit(peer.ip(), Instant::now()) {
        Ok(permit) => {
            let shared = shared.clone();
            tokio::spawn(async move {
                connection::handle(shared, tcp, peer, implicit_tls, permit).await;
                drop(done);
            });
        }
        Err(refusal) => {
            metrics::counter!("tsubame_smtp_connections_refused_total", "reason" => refusal.label()).increment(1);
            tracing::debug!(client = %peer, reason = refusal.label(), "connection refused");
            if !implicit_tls {
                // Best effort and never waiting: a refused client gets no more of our time.
                let _ = tcp.try_write(refusal.reply());
            }
            let _ = tcp.shutdown().await;
        }
    }
}

/// Reads a balancer's PROXY protocol header: the client's address (the balancer's own for
/// its health checks), or None (connection closed) when the header is missing, malformed
/// or slower than 5 s.
async fn proxied_client(tcp: &mut TcpStream, balancer: SocketAddr) -> Option<SocketAddr> {
    use proxy_header::Parsed;
    let read = async {
        let mut buf = Vec::with_capacity(64);
        loop {
            match proxy_header::parse(&buf) {
                Parsed::Incomplete { at_least } => {
                    let have = buf.len();
                    buf.resize(at_least, 0);
                    tcp.read_exact(&mut buf[have..]).await.ok()?;
                }
                Parsed::Done { source, .. } => {
                    metrics::counter!("tsubame_smtp_proxied_connections_total").increment(1);
                    return Some(source.unwrap_or(balancer));
                }
                Parsed::Invalid(reason) => {
                    tracing::info!(balancer = %balancer, reason, "connection without a valid PROXY header closed");
                    return None;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()?
}
