//! What a session needs to know about the server: name, limits and offered features. Built
//! once from validated configuration and shared by all sessions.

/// Limits and features for every session of one listener.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Our host name, used in the greeting and EHLO reply.
    pub hostname: String,
    /// Largest message accepted, in bytes (advertised as SIZE).
    pub message_bytes_max: usize,
    /// Most recipients accepted in one transaction.
    pub recipients_max: usize,
    /// Longest command line accepted, CRLF included.
    pub command_line_bytes_max: usize,
    /// Protocol errors tolerated before the session is closed.
    pub bad_commands_max: u32,
    /// STARTTLS can be offered (a certificate is loaded).
    pub starttls_available: bool,
    /// AUTH may be offered on connections that are not under TLS. Off by default: passwords
    /// must not cross the network in clear text.
    pub auth_plaintext_allowed: bool,
    /// Every syntactically valid, relay-permitted RCPT is handed to the driver as
    /// [`crate::Event::CheckRecipient`] before it is accepted (sinks, suppression lists,
    /// bounce addresses). Off: the session accepts it itself.
    pub recipient_checks: bool,
    /// A RCPT from a client that may not relay is handed to the driver as
    /// [`crate::Event::CheckLocal`] (is it an address this server receives mail for, such as
    /// a bounce address?) instead of being refused at once. Off: refused at once.
    pub local_checks: bool,
}

/// Facts about one connection that the driver knows before the first byte.
#[derive(Debug, Clone, Copy)]
pub struct PeerContext {
    /// The client's address is in a trusted network: it may relay without AUTH.
    pub relay_trusted: bool,
    /// The connection is already under TLS (implicit-TLS listener).
    pub tls_active: bool,
}
