//! The SMTP client, sans-IO: what the delivery engine speaks to receiving servers.
//!
//! - `session`: the state machine ([`ClientSession`], [`ClientEvent`]).
//! - `transaction`: replies inside a transaction and per-recipient outcomes.
//! - [`auth`]: AUTH PLAIN / LOGIN towards smarthosts.
//! - [`reply`]: incremental reply reader; [`capabilities`]: the EHLO keywords.
//! - [`content`]: DATA encoding (CRLF only, dot-stuffed).

pub mod auth;
pub mod capabilities;
pub mod content;
pub mod reply;
mod session;
mod transaction;

pub use capabilities::Capabilities;
pub use session::{
    ClientEvent, ClientFailure, ClientSession, Outbound, OutboundRecipient, Stage,
    TransactionOutcome,
};
