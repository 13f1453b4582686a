//! Delivery to receiving servers.
//!
//! - [`route`]: recipient domain → route (static routes, DNS MX with our own cache) → site.
//! - [`shaping`]: per-site and per-provider limits, response rules (suspend, throttle).
//! - `connection`: one outbound SMTP connection with per-stage timeouts and a TLS policy.

mod connection;
pub mod route;
pub mod shaping;
mod tls;

pub use connection::{ClientTimeouts, Connection, ConnectionError, Destination};
pub use tls::{TlsClients, TlsPolicy};
