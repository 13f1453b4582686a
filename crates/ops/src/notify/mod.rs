//! Notifications of alerts and reports: the channels' payloads ([`payload`]) and sending
//! them with retries ([`send`]).

pub mod payload;
pub mod send;
pub mod spool_mail;

pub use send::{MailOut, Notifier, Outgoing};
