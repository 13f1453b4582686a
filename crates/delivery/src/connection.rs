//! One outbound SMTP connection: connect, greet, STARTTLS per policy, then any number of
//! messages, each with its per-recipient outcome. Every wait has the timeout of its stage.

use std::net::SocketAddr;
use std::time::Duration;

use smtp_wire::Reply;
use smtp_wire::client::{
    ClientEvent, ClientFailure, ClientSession, Outbound, Stage, TransactionOutcome,
};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::tls::{TlsClients, TlsPolicy};

/// Per-stage limits. Defaults follow RFC 5321 §4.5.3.2 (connect is ours).
#[derive(Debug, Clone, Copy)]
pub struct ClientTimeouts {
    /// TCP connect.
    pub connect: Duration,
    /// The 220 greeting (§4.5.3.2.1: 5 min).
    pub banner: Duration,
    /// EHLO/HELO, STARTTLS, RSET, QUIT replies.
    pub command: Duration,
    /// TLS handshake.
    pub tls_handshake: Duration,
    /// MAIL reply (§4.5.3.2.2: 5 min).
    pub mail: Duration,
    /// Each RCPT reply (§4.5.3.2.3: 5 min).
    pub rcpt: Duration,
    /// DATA's 354 (§4.5.3.2.4: 2 min).
    pub data: Duration,
    /// Writing content, per write (§4.5.3.2.5: 3 min per block).
    pub data_block: Duration,
    /// The reply to the final dot (§4.5.3.2.6: 10 min).
    pub data_dot: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        let min = |m: u64| Duration::from_secs(60 * m);
        ClientTimeouts {
            connect: Duration::from_secs(30),
            banner: min(5),
            command: min(5),
            tls_handshake: Duration::from_secs(30),
            mail: min(5),
            rcpt: min(5),
            data: min(2),
            data_block: min(3),
            data_dot: min(10),
        }
    }
}

impl ClientTimeouts {
    fn for_stage(&self, stage: Stage) -> Duration {
        match stage {
            Stage::Banner => self.banner,
            Stage::MailFrom => self.mail,
            Stage::RcptTo => self.rcpt,
            Stage::Data => self.data,
            Stage::DataDot => self.data_dot,
            Stage::Hello
            | Stage::StartTls
            | Stage::Auth
            | Stage::Reset
            | Stage::Quit
            | Stage::Idle => self.command,
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The MX host's address.
    pub addr: SocketAddr,
    /// The MX host name, for TLS (SNI and, with `Verify`, the certificate check).
    pub host_name: String,
    /// TLS handling.
    pub tls: TlsPolicy,
    /// SMTP AUTH credentials (smarthosts); sent only under TLS.
    pub auth: Option<Credentials>,
}

/// A user name and password for SMTP AUTH.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password, whatever logs a route.
        write!(
            f,
            "Credentials {{ user: {:?}, password: \"***\" }}",
            self.user
        )
    }
}

/// Why a connection could not be used. Each maps to a deferral or bounce category.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// TCP connect failed or timed out.
    #[error("connect to {addr} failed: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The server refused us at greeting or EHLO/HELO (e.g. 421, 554).
    #[error("refused by server: {}", .0.summary())]
    Refused(Reply),
    /// TLS was required but not offered, refused, or the handshake/verification failed.
    #[error("TLS required: {0}")]
    Tls(String),
    /// AUTH was refused, or the server offers no mechanism we speak.
    #[error("authentication failed: {}", .0.summary())]
    Auth(Reply),
    /// No reply within the stage's timeout.
    #[error("timed out waiting in stage {0:?}")]
    Timeout(Stage),
    /// The server closed the connection or sent something unreadable.
    #[error("connection lost: {0}")]
    Lost(String),
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only during the TLS handshake, while the TCP stream is owned by the connector.
    Detached,
}

/// An established, greeted connection ready to take messages.
pub struct Connection {
    stream: Stream,
    session: ClientSession,
    timeouts: ClientTimeouts,
    /// Messages sent on this connection (for reuse limits).
    pub messages_sent: u64,
    /// The negotiated TLS version, if any (for events and Received-like logs).
    pub tls_version: Option<String>,
    failed_stage: Option<Stage>,
    /// Where replies are read into; allocated once per connection, not zeroed per read.
    read_buf: Box<[u8]>,
}

/// Bytes read from the server at a time: replies are short, a pipelined batch a few lines.
const READ_BUFFER_BYTES: usize = 8192;

impl Connection {
    /// Connects, greets and applies the TLS policy.
    pub async fn open(
        destination: &Destination,
        helo_name: &str,
        timeouts: ClientTimeouts,
        tls: &TlsClients,
    ) -> Result<Connection, ConnectionError> {
        let addr = destination.addr;
        let tcp = match timeout(timeouts.connect, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => return Err(ConnectionError::Connect { addr, source }),
            Err(_) => {
                return Err(ConnectionError::Connect {
                    addr,
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer within {:?}", timeouts.connect),
                    ),
                });
            }
        };
        let _ = tcp.set_nodelay(true);
        let mut conn = Connection {
            stream: Stream::Plain(tcp),
            session: ClientSession::new(helo_name),
            timeouts,
            messages_sent: 0,
            tls_version: None,
            failed_stage: None,
            read_buf: vec![0u8; READ_BUFFER_BYTES].into_boxed_slice(),
        };
        conn.expect_ready().await?;
        if destination.tls != TlsPolicy::Disabled {
            conn.negotiate_tls(destination, tls).await?;
        }
        if let Some(credentials) = &destination.auth {
            conn.authenticate(credentials).await?;
        }
        Ok(conn)
    }

    /// The stage the last [`Connection::deliver`] failed in, if it failed on the connection
    /// (`MailFrom`: before any reply of that transaction arrived).
    pub fn failed_stage(&self) -> Option<Stage> {
        self.failed_stage
    }

    /// What the server offered (after TLS, if negotiated).
    pub fn capabilities(&self) -> &smtp_wire::client::Capabilities {
        self.session.capabilities()
    }

    async fn authenticate(&mut self, credentials: &Credentials) -> Result<(), ConnectionError> {
        if self.tls_version.is_none() {
            self.quit().await;
            return Err(ConnectionError::Tls(
                "credentials are only sent under TLS, and TLS is not active".into(),
            ));
        }
        if !self
            .session
            .authenticate(&credentials.user, &credentials.password)
        {
            self.quit().await;
            return Err(ConnectionError::Auth(Reply::new(
                530,
                (5, 7, 0),
                "server offers no AUTH mechanism we support (PLAIN, LOGIN)",
            )));
        }
        match self.next_event().await? {
            ClientEvent::Ready => Ok(()),
            ClientEvent::Failed(ClientFailure::Auth(reply)) => {
                self.quit().await;
                Err(ConnectionError::Auth(reply))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn expect_ready(&mut self) -> Result<(), ConnectionError> {
        match self.next_event().await? {
            ClientEvent::Ready => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn negotiate_tls(
        &mut self,
        destination: &Destination,
        tls: &TlsClients,
    ) -> Result<(), ConnectionError> {
        let must = matches!(destination.tls, TlsPolicy::Required | TlsPolicy::Verify);
        if !self.session.capabilities().starttls {
            if must {
                self.quit().await;
                return Err(ConnectionError::Tls("STARTTLS not offered".into()));
            }
            return Ok(());
        }
        self.session.start_tls();
        match self.next_event().await? {
            ClientEvent::TlsReady => {}
            ClientEvent::StartTlsRefused(reply) if !must => {
                tracing::debug!(reply = %reply.summary(), "STARTTLS refused; continuing in clear text");
                return Ok(());
            }
            ClientEvent::StartTlsRefused(reply) => {
                self.quit().await;
                return Err(ConnectionError::Tls(format!(
                    "STARTTLS refused: {}",
                    reply.summary()
                )));
            }
            other => return Err(unexpected(other)),
        }
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Detached) else {
            return Err(ConnectionError::Tls("TLS already active".into()));
        };
        let name = rustls::pki_types::ServerName::try_from(destination.host_name.clone()).map_err(
            |_| ConnectionError::Tls(format!("invalid host name {:?}", destination.host_name)),
        )?;
        let connector = TlsConnector::from(tls.for_policy(destination.tls));
        let stream = match timeout(self.timeouts.tls_handshake, connector.connect(name, tcp)).await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => return Err(ConnectionError::Tls(format!("handshake failed: {err}"))),
            Err(_) => return Err(ConnectionError::Tls("handshake timed out".into())),
        };
        self.tls_version = stream
            .get_ref()
            .1
            .protocol_version()
            .map(|v| format!("{v:?}"));
        self.stream = Stream::Tls(Box::new(stream));
        self.session.tls_established();
        self.expect_ready().await
    }

    /// Delivers one message; the outcome holds one final reply per recipient.
    pub async fn deliver(
        &mut self,
        message: &Outbound,
        content: &[u8],
    ) -> Result<TransactionOutcome, ConnectionError> {
        self.session.send(message, content);
        self.messages_sent += 1;
        self.failed_stage = None;
        match self.next_event().await? {
            ClientEvent::Transaction(outcome) => Ok(outcome),
            other => {
                if let ClientEvent::Failed(ClientFailure::ConnectionLost(stage)) = &other {
                    self.failed_stage = Some(*stage);
                }
                Err(unexpected(other))
            }
        }
    }

    /// Says QUIT and closes, without waiting long for a reply.
    pub async fn quit(&mut self) {
        self.session.quit();
        let _ = timeout(Duration::from_secs(5), self.next_event()).await;
        let _ = match &mut self.stream {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
            Stream::Detached => Ok(()),
        };
    }

    async fn next_event(&mut self) -> Result<ClientEvent, ConnectionError> {
        loop {
            if let event @ (ClientEvent::Transaction(_)
            | ClientEvent::Ready
            | ClientEvent::TlsReady
            | ClientEvent::StartTlsRefused(_)
            | ClientEvent::Closed
            | ClientEvent::Failed(_)) = self.session.poll()
            {
                return Ok(event);
            }
            // Whatever the session queued while handling replies goes out before we wait.
            if !self.session.output().is_empty() {
                let limit = self.timeouts.data_block.max(self.timeouts.command);
                let stage = self.session.stage();
                let written = match &mut self.stream {
                    Stream::Plain(s) => write_all(s, self.session.output(), limit, stage).await,
                    Stream::Tls(s) => {
                        write_all(s.as_mut(), self.session.output(), limit, stage).await
                    }
                    Stream::Detached => Err(ConnectionError::Lost("no stream".into())),
                };
                if let Err(err) = written {
                    self.failed_stage = Some(stage);
                    return Err(err);
                }
                self.session.clear_output();
            }
            let stage = self.session.stage();
            let limit = self.timeouts.for_stage(stage);
            let read = match &mut self.stream {
                Stream::Plain(s) => timeout(limit, s.read(&mut self.read_buf)).await,
                Stream::Tls(s) => timeout(limit, s.read(&mut self.read_buf)).await,
                Stream::Detached => return Err(ConnectionError::Lost("no stream".into())),
            };
            if !matches!(read, Ok(Ok(_))) {
                self.failed_stage = Some(stage);
            }
            match read {
                Err(_) => return Err(ConnectionError::Timeout(stage)),
                Ok(Ok(0)) => self.session.eof(),
                Ok(Ok(n)) => self.session.feed(&self.read_buf[..n]),
                Ok(Err(err)) => return Err(ConnectionError::Lost(err.to_string())),
            }
        }
    }
}

/// Writes with a time limit; a timeout is reported for `stage`, the stage being written for.
async fn write_all<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    limit: Duration,
    stage: Stage,
) -> Result<(), ConnectionError> {
    match timeout(limit, async {
        stream.write_all(bytes).await?;
        stream.flush().await
    })
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(ConnectionError::Lost(err.to_string())),
        Err(_) => Err(ConnectionError::Timeout(stage)),
    }
}

fn unexpected(event: ClientEvent) -> ConnectionError {
    match event {
        ClientEvent::Failed(ClientFailure::Greeting(reply) | ClientFailure::Hello(reply)) => {
            ConnectionError::Refused(reply)
        }
        ClientEvent::Failed(ClientFailure::ConnectionLost(stage)) => {
            ConnectionError::Lost(format!("closed by server in {stage:?}"))
        }
        ClientEvent::Failed(other) => ConnectionError::Lost(format!("{other:?}")),
        ClientEvent::Closed => ConnectionError::Lost("closed".into()),
        other => ConnectionError::Lost(format!("unexpected {other:?}")),
    }
}
