//! One connection: admission already passed; this runs the greeting check, TLS, and the
//! read → session → write loop with its timeouts, until the session closes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use smtp_wire::{Event, PeerContext, ReadPhase, Reply, Session, SessionConfig};
use spool::tenant_marker;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_rustls::TlsAcceptor;

use crate::config::ServerConfig;
use crate::limits::Permit;
use crate::submit::Ingress;
use crate::tenants::{Login, Tenants};

/// What every connection shares.
pub(crate) struct Shared {
    pub config: ServerConfig,
    pub session_config: Arc<SessionConfig>,
    pub ingress: Ingress,
    pub tls: Option<TlsAcceptor>,
    pub users_path: PathBuf,
    pub tenants: Option<Arc<dyn Tenants>>,
    pub shutdown: watch::Receiver<bool>,
}

enum Exit {
    Closed,
    StartTls,
}

/// Bytes read per call while message content flows; also the most a client can make us
/// buffer beyond the session's limits.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Bytes read per call between messages. Idle sessions are most of a busy server's
/// connections, so what they hold while waiting is what limits how many fit in memory.
const COMMAND_READ_BYTES: usize = 512;

pub(crate) async fn handle(
    shared: Arc<Shared>,
    mut tcp: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
    permit: Permit,
) {
    metrics::gauge!("tsubame_smtp_connections").increment(1.0);
    metrics::counter!("tsubame_smtp_connections_total").increment(1);
    let _ = tcp.set_nodelay(true);
    let result = run(&shared, &mut tcp, peer, implicit_tls).await;
    if let Err(err) = result {
        tracing::debug!(client = %peer, error = %err, "connection ended with an error");
    }
    drop(permit);
    metrics::gauge!("tsubame_smtp_connections").decrement(1.0);
}

async fn run(
    shared: &Shared,
    tcp: &mut TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
) -> std::io::Result<()> {
    let trusted = shared
        .config
        .relay_networks
        .iter()
        .any(|n| n.contains(peer.ip()));
    let context = PeerContext {
        relay_trusted: trusted,
        tls_active: implicit_tls,
    };
    if implicit_tls {
        let Some(acceptor) = &shared.tls else {
            return Ok(());
        };
        let mut tls = handshake(acceptor, tcp, shared.config.timeouts.tls_handshake).await?;
        let mut session = Session::new(shared.session_config.clone(), context);
        drive(shared, &mut tls, &mut session, peer).await?;
        return Ok(());
    }
    if talks_first(tcp, shared.config.timeouts.greeting_delay).await {
        metrics::counter!("tsubame_smtp_connections_refused_total", "reason" => "early_talker")
            .increment(1);
        tracing::info!(client = %peer, "refused early talker");
        let reply = b"554 5.5.0 Protocol error: data sent before the greeting\r\n";
        let _ = timeout(Duration::from_secs(5), tcp.write_all(reply)).await;
        return Ok(());
    }
    let mut session = Session::new(shared.session_config.clone(), context);
    if let Exit::StartTls = drive(shared, tcp, &mut session, peer).await? {
        let Some(acceptor) = &shared.tls else {
            return Ok(());
        };
        let mut tls = handshake(acceptor, tcp, shared.config.timeouts.tls_handshake).await?;
        drive(shared, &mut tls, &mut session, peer).await?;
    }
    Ok(())
}

async fn handshake<'a>(
    acceptor: &TlsAcceptor,
    tcp: &'a mut TcpStream,
    limit: Duration,
) -> std::io::Result<tokio_rustls::server::TlsStream<&'a mut TcpStream>> {
    match timeout(limit, acceptor.accept(tcp)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        )),
    }
}

/// True if the client sent anything before our greeting (RFC 5321 §4.3.1: the client waits).
async fn talks_first(tcp: &TcpStream, delay: Duration) -> bool {
    let mut probe = [0u8; 1];
    if delay.is_zero() {
        return matches!(try_peek(tcp, &mut probe), Ok(n) if n > 0);
    }
    matches!(timeout(delay, tcp.peek(&mut probe)).await, Ok(Ok(n)) if n > 0)
}

/// Peeks without blocking: bytes already waiting from the client, if any.
fn try_peek(tcp: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: recv with MSG_PEEK|MSG_DONTWAIT on our own socket into a valid buffer; it
    // neither blocks nor consumes data.
    let n = unsafe {
        libc::recv(
            tcp.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Tracks the content phase for the minimum data rate.
struct ContentClock {
    started: Instant,
    bytes: u64,
}

async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    io: &mut S,
    session: &mut Session,
    peer: SocketAddr,
) -> std::io::Result<Exit> {
    let timeouts = shared.config.timeouts;
    let mut shutdown = shared.shutdown.clone();
    // Read into spare capacity (no zeroing); large only while content is being received.
    let mut buf: Vec<u8> = Vec::new();
    let mut command_deadline = Instant::now() + timeouts.command;
    let mut content: Option<ContentClock> = None;
    loop {
        let event = session.advance();
        for rejected in session.take_rejected() {
            metrics::counter!("tsubame_smtp_messages_rejected_total", "reason" => rejected.reason)
                .increment(1);
            tracing::warn!(
                client = %peer.ip(), sender = %rejected.sender, recipients = rejected.recipients,
                size = rejected.size_bytes, reply = %rejected.reply.summary(), reason = rejected.reason,
                "message rejected"
            );
        }
        match event {
            Event::NeedInput => {}
            Event::Submit(txn) => {
                let reply = shared.ingress.submit(txn, peer.ip()).await;
                session.complete_submission(reply);
                continue;
            }
            // The ingress session config leaves recipient checks off: the session decides.
            Event::CheckRecipient(_) => {
                session.complete_recipient(None);
                continue;
            }
            // A client without relay rights may reach the platform's return paths.
            Event::CheckLocal(address) => {
                let local = shared
                    .tenants
                    .as_ref()
                    .is_some_and(|t| t.is_return_path(&address));
                session.complete_local(local);
                continue;
            }
            Event::Authenticate(credentials) => {
                match authenticate(shared, credentials).await {
                    Ok(Authenticated::User(identity)) => {
                        tracing::info!(client = %peer.ip(), user = ?identity, ok = identity.is_some(), "SMTP AUTH");
                        session.complete_auth(identity);
                    }
                    Ok(Authenticated::Suspended(reason)) => {
                        tracing::info!(client = %peer.ip(), reason = %reason, "SMTP AUTH of a suspended tenant");
                        session.complete_auth_refused(Reply::new(
                            535,
                            (5, 7, 1),
                            format!(
                                "Authentication refused: this account is suspended: {}",
                                one_line(&reason)
                            ),
                        ));
                    }
                    Err(why) => {
                        tracing::warn!(client = %peer.ip(), error = %why, "SMTP AUTH could not be checked");
                        session.complete_auth_unavailable();
                    }
                }
                continue;
            }
            Event::StartTls => {
                flush(io, session, timeouts.command).await?;
                if session.discarded_at_starttls() > 0 {
                    tracing::warn!(client = %peer.ip(), bytes = session.discarded_at_starttls(), "discarded plaintext pipelined after STARTTLS");
                }
                return Ok(Exit::StartTls);
            }
            Event::Close => {
                flush(io, session, timeouts.command).await?;
                let _ = timeout(Duration::from_secs(1), io.shutdown()).await;
                return Ok(Exit::Closed);
            }
        }
        flush(io, session, timeouts.command).await?;
        let idle = session.read_phase() == ReadPhase::Command
            && !session.in_transaction()
            && session.input_pending() == 0;
        if *shutdown.borrow() && idle {
            session.shutting_down();
            continue;
        }
        let now = Instant::now();
        // The rate clock runs from the start of the content (DATA or the first BDAT chunk)
        // to the end of the transaction, so many small BDAT chunks cannot reset it.
        if !session.content_started() {
            content = None;
        }
        let rate_deadline = session.content_started().then(|| {
            let clock = content.get_or_insert(ContentClock {
                started: now,
                bytes: 0,
            });
            let min_rate = timeouts.data_rate_bytes_per_sec_min.max(1) as f64;
            clock.started
                + timeouts.data_grace
                + Duration::from_secs_f64(clock.bytes as f64 / min_rate)
        });
        // Checked before reading: data already waiting in the socket would otherwise always
        // win against an expired deadline.
        if rate_deadline.is_some_and(|r| r <= now) {
            metrics::counter!("tsubame_smtp_timeouts_total", "kind" => "data_rate").increment(1);
            session.too_slow();
            continue;
        }
        let phase_deadline = match session.read_phase() {
            ReadPhase::Command => {
                if session.input_pending() == 0 {
                    command_deadline = now + timeouts.command;
                }
                command_deadline
            }
            ReadPhase::Content => now + timeouts.data_idle,
        };
        let deadline = rate_deadline.map_or(phase_deadline, |r| phase_deadline.min(r));
        let chunk = match session.read_phase() {
            ReadPhase::Content => READ_CHUNK_BYTES,
            ReadPhase::Command => COMMAND_READ_BYTES,
        };
        if buf.capacity() != chunk {
            buf = Vec::with_capacity(chunk);
        }
        buf.clear();
        tokio::select! {
            read = timeout_at(deadline, io.read_buf(&mut buf)) => match read {
                Err(_) => {
                    if rate_deadline.is_some_and(|r| r <= Instant::now()) {
                        metrics::counter!("tsubame_smtp_timeouts_total", "kind" => "data_rate").increment(1);
                        session.too_slow();
                    } else {
                        metrics::counter!("tsubame_smtp_timeouts_total", "kind" => "idle").increment(1);
                        session.timed_out();
                    }
                }
                Ok(Ok(0)) => return Ok(Exit::Closed),
                Ok(Ok(n)) => {
                    if let Some(clock) = content.as_mut() {
                        clock.bytes += n as u64;
                    }
                    session.feed(&buf[..n]);
                    buf.clear();
                }
                Ok(Err(err)) => return Err(err),
            },
            _ = shutdown.changed(), if !*shutdown.borrow() => {}
        }
    }
}

/// What SMTP AUTH credentials turned out to be.
enum Authenticated {
    /// A tenant (`tenant:<id>`) or a local SMTP user; `None` when the credentials are wrong.
    User(Option<String>),
    /// A suspended tenant's (the operators' reason).
    Suspended(String),
}

/// The operators' free text, safe inside a one-line reply.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

/// Who the credentials name; `Err` when they could not be checked.
async fn authenticate(
    shared: &Shared,
    credentials: smtp_wire::auth::Credentials,
) -> Result<Authenticated, String> {
    let login = match &shared.tenants {
        Some(tenants) => {
            tenants
                .login(&credentials.username, &credentials.password)
                .await
        }
        None => Login::NotTenant,
    };
    match login {
        Login::Tenant(id) => Ok(Authenticated::User(Some(tenant_marker(&id)))),
        Login::Refused => Ok(Authenticated::User(None)),
        Login::Suspended(reason) => Ok(Authenticated::Suspended(reason)),
        Login::Unavailable => Err("the control plane did not answer".into()),
        Login::NotTenant => {
            let path = shared.users_path.clone();
            let user = credentials.username.clone();
            // argon2 is slow on purpose: off the async workers.
            let verified = tokio::task::spawn_blocking(move || {
                crate::users::verify(&path, &credentials.username, &credentials.password)
            })
            .await;
            match verified {
                Ok(Ok(ok)) => Ok(Authenticated::User(ok.then_some(user))),
                Ok(Err(err)) => Err(err.to_string()),
                Err(err) => Err(err.to_string()),
            }
        }
    }
}

async fn flush<S: AsyncWrite + Unpin>(
    io: &mut S,
    session: &mut Session,
    limit: Duration,
) -> std::io::Result<()> {
    if session.output().is_empty() {
        return Ok(());
    }
    let write = async {
        io.write_all(session.output()).await?;
        io.flush().await
    };
    match timeout(limit, write).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "client not reading replies",
            ));
        }
    }
    session.clear_output();
    Ok(())
}
