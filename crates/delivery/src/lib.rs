//! Delivery to receiving servers.
//!
//! - [`route`]: recipient domain → route (static routes, DNS MX with our own cache) → site.
//! - [`shaping`]: per-site and per-provider limits, response rules (suspend, throttle).
//! - `connection`: one outbound SMTP connection with per-stage timeouts and a TLS policy.
//! - [`queue`]: site queues, the retry timer, held parts (no I/O).
//! - [`engine`]: the tokio side: arrivals, connections, settling outcomes, operator commands.
//! - [`outcome`]: failure categories, the retry schedule, DSNs. [`events`]: the event log.

mod connection;
pub mod engine;
pub mod events;
pub mod outcome;
pub mod queue;
pub mod route;
pub mod shaping;
mod tls;

pub use connection::{ClientTimeouts, Connection, ConnectionError, Credentials, Destination};
pub use engine::{DeliveryConfig, Engine};
pub use tls::{TlsClients, TlsPolicy};
