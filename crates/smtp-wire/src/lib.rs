//! Sans-IO SMTP for tsubame: the server session state machine and its parsers.
//!
//! Nothing here touches a socket, a clock or a file. The driver (crate `smtp-server`) feeds
//! bytes in and carries replies out, which is what lets the protocol core be tested with
//! byte strings and fuzzed.
//!
//! # Layout
//! - [`session`]: the state machine ([`Session`], [`Event`]).
//! - `commands`: one handler per SMTP verb, including the SASL steps.
//! - [`line`]: CRLF-only command framing with a length limit.
//! - [`data`]: DATA and BDAT content receivers (dot-unstuffing, smuggling defence, size limit).
//! - [`auth`]: SASL PLAIN/LOGIN decoding.
//! - [`address`]: envelope address checks.
//! - [`envelope`]: the [`Transaction`] handed to the spool.
//! - [`reply`]: replies with enhanced status codes.
//! - [`client`]: the SMTP client state machine used for delivery.

pub mod address;
mod address_forms;
pub mod auth;
pub mod client;
mod commands;
pub mod config;
pub mod data;
pub mod date;
pub mod decimal;
pub mod envelope;
pub mod line;
pub mod reply;
pub mod session;

pub use config::{PeerContext, SessionConfig};
pub use envelope::{DsnRet, Notify, Recipient, Sender, Transaction};
pub use reply::Reply;
pub use session::{Event, ReadPhase, Rejected, Session};
