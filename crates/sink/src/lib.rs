//! `tsubame sink`: a receiving SMTP server that behaves like a mailbox provider, for staging
//! and load tests. It speaks through the same sans-IO session as our ingress (PIPELINING,
//! CHUNKING, strict CRLF), answers by [`Policy`] (failure shares per stage, local-part
//! triggers), can be slow on purpose, limits concurrent connections and messages per
//! connection like providers do, offers STARTTLS, counts everything ([`Stats`], and the
//! `metrics` facade for /metrics) and can keep what it receives ([`Capture`]).
//!
//! # Layout
//! - [`policy`]: what to answer, without I/O.
//! - `connection`: one task per connection (the async driver around the session).
//! - [`stats`]: counts and latencies; [`capture`]: received messages to files.

pub mod capture;
mod connection;
pub mod policy;
pub mod stats;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use smtp_wire::SessionConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use capture::Capture;
pub use policy::{Policy, PolicyError, Shares};
pub use stats::{Stats, Summary};

/// How the sink behaves. Validate with [`SinkConfig::validate`] before [`Sink::bind`].
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Addresses to listen on.
    pub listen: Vec<SocketAddr>,
    /// Name in the greeting and EHLO reply.
    pub hostname: String,
    /// Failure shares and triggers.
    pub policy: Policy,
    /// Delay before every reply other than the end-of-data one (greeting included).
    pub command_latency: Duration,
    /// Delay before each end-of-data reply (a provider's content scanning).
    pub data_latency: Duration,
    /// Concurrent connections beyond which new ones get 421 (0: no limit).
    pub connections_max: u64,
    /// Messages after which a connection is closed with 421 (0: no limit).
    pub messages_per_connection: u64,
    /// STARTTLS is offered with this configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Where to keep received messages, if anywhere.
    pub capture: Option<PathBuf>,
    /// Largest message accepted (advertised as SIZE).
    pub message_bytes_max: usize,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// Seed for the share rolls: the same seed and traffic give the same answers.
    pub seed: u64,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2626))],
            hostname: "sink.tsubame.test".into(),
            policy: Policy::default(),
            command_latency: Duration::ZERO,
            data_latency: Duration::ZERO,
            connections_max: 0,
            messages_per_connection: 0,
            tls: None,
            capture: None,
            message_bytes_max: 64 << 20,
            idle_timeout: Duration::from_secs(300),
            seed: 0,
        }
    }
}

/// Why the sink cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("no listen address")]
    NoListener,
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("capture directory {path}: {source}")]
    Capture {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("self-signed certificate: {0}")]
    Certificate(String),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

impl SinkConfig {
    /// Checks what can be checked before binding.
    pub fn validate(&self) -> Result<(), SinkError> {
        if self.listen.is_empty() {
            return Err(SinkError::NoListener);
        }
        self.policy.validate()?;
        Ok(())
    }
}

/// A TLS configuration with a certificate made up on the spot, for STARTTLS in tests and
/// staging where nobody verifies the sink.
pub fn self_signed_tls(hostname: &str) -> Result<Arc<rustls::ServerConfig>, SinkError> {
    let names = vec![hostname.to_string(), "localhost".to_string()];
    let generated = rcgen::generate_simple_self_signed(names)
        .map_err(|e| SinkError::Certificate(e.to_string()))?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(generated.signing_key.serialize_der())
        .map_err(|e| SinkError::Certificate(e.to_string()))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![generated.cert.der().clone()], key)?;
    Ok(Arc::new(config))
}

/// What every connection shares.
pub(crate) struct Shared {
    pub config: SinkConfig,
    pub session_config: Arc<SessionConfig>,
    pub tls: Option<TlsAcceptor>,
    pub capture: Option<Capture>,
    pub stats: Arc<Stats>,
}

/// A bound sink, ready to run.
pub struct Sink {
    shared: Arc<Shared>,
    listeners: Vec<TcpListener>,
}

impl Sink {
    /// Validates the configuration and binds every listener.
    pub async fn bind(config: SinkConfig) -> Result<Sink, SinkError> {
        config.validate()?;
        let mut listeners = Vec::new();
        for &addr in &config.listen {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| SinkError::Listen { addr, source })?;
            listeners.push(listener);
        }
        let capture = match &config.capture {
            Some(path) => Some(Capture::new(path).map_err(|source| SinkError::Capture {
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        let session_config = Arc::new(SessionConfig {
            hostname: config.hostname.clone(),
            message_bytes_max: config.message_bytes_max,
            recipients_max: 10_000,
            command_line_bytes_max: 4096,
            bad_commands_max: 20,
            starttls_available: config.tls.is_some(),
            auth_plaintext_allowed: false,
            recipient_checks: true,
            local_checks: false,
        });
        let shared = Arc::new(Shared {
            tls: config.tls.clone().map(TlsAcceptor::from),
            session_config,
            capture,
            stats: Arc::new(Stats::default()),
            config,
        });
        Ok(Sink { shared, listeners })
    }

    /// The bound addresses (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// The live counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.shared.stats.clone()
    }

    /// Serves until `stop` resolves; connections still open are dropped then.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let mut tasks = Vec::new();
        for listener in self.listeners {
            tasks.push(tokio::spawn(connection::accept_loop(
                listener,
                self.shared.clone(),
            )));
        }
        stop.await;
        for task in tasks {
            task.abort();
        }
    }
}
