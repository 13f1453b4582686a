//! Real peers for tests, started in-process. Only tests depend on this crate.

pub mod dns;
pub mod haproxy;
pub mod nats;
pub mod postgres;
pub mod sink;
