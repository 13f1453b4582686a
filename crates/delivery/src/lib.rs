//! Delivery to receiving servers. Today: one outbound SMTP connection ([`Connection`]) with
//! per-stage timeouts and a TLS policy, driving the sans-IO client of `smtp-wire`. Routing
//! (MX), site queues, shaping, retries and bounces build on it.

mod connection;
mod tls;

pub use connection::{ClientTimeouts, Connection, ConnectionError, Destination};
pub use tls::{TlsClients, TlsPolicy};
