//! The validated settings of the SMTP ingress. Built once by the binary from its TOML and
//! flags, then passed explicitly; nothing here reads files or the environment.

use std::net::SocketAddr;
use std::time::Duration;

use crate::cidr::Cidr;

/// Everything the SMTP listeners and sessions need.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Plain listeners (STARTTLS offered when TLS is configured).
    pub listen: Vec<SocketAddr>,
    /// Implicit-TLS listeners (RFC 8314 "submissions").
    pub listen_tls: Vec<SocketAddr>,
    /// Our host name in the greeting, EHLO reply and Received headers.
    pub hostname: String,
    /// Largest message accepted, bytes.
    pub message_bytes_max: usize,
    /// Most recipients per transaction.
    pub recipients_max: usize,
    /// Longest command line, CRLF included.
    pub command_line_bytes_max: usize,
    /// Protocol errors per session before disconnect.
    pub bad_commands_max: u32,
    /// Allow AUTH without TLS.
    pub auth_plaintext_allowed: bool,
    /// Networks whose clients may relay without AUTH.
    pub relay_networks: Vec<Cidr>,
    /// Load balancers whose connections start with a PROXY protocol header (v1 or v2)
    /// naming the real client, whose address then counts for limits, relay and logs.
    /// Connections from these addresses without a valid header are closed.
    pub proxy_protocol_from: Vec<Cidr>,
    /// Connection limits.
    pub limits: ConnectionLimits,
    /// Timeouts.
    pub timeouts: Timeouts,
}

/// Limits applied when a connection arrives.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open connections across all clients.
    pub connections_max: usize,
    /// Open connections from one client address.
    pub connections_per_ip_max: u32,
    /// New connections from one client address per `rate_interval`.
    pub connection_rate_per_ip_max: u32,
    /// The window for `connection_rate_per_ip_max`.
    pub rate_interval: Duration,
    /// Client networks the per-address limits do not apply to (only `connections_max`
    /// does): trusted applications that open one connection per message are not attackers.
    pub exempt_networks: Vec<Cidr>,
}

/// How long a client may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Wait before the greeting; a client that talks first is refused (0 = check only).
    pub greeting_delay: Duration,
    /// Time to send one complete command line (RFC 5321 §4.5.3.2.7: at least 5 minutes).
    pub command: Duration,
    /// Longest silence while receiving content.
    pub data_idle: Duration,
    /// Minimum average content rate once `data_grace` has passed, bytes per second.
    pub data_rate_bytes_per_sec_min: u64,
    /// Time allowed before the minimum rate applies.
    pub data_grace: Duration,
    /// TLS handshake.
    pub tls_handshake: Duration,
    /// On shutdown, how long transactions in flight may still run.
    pub shutdown_grace: Duration,
}
