//! What happens after an attempt: classification of failures, the retry schedule, and
//! delivery status notifications (bounces).

pub mod classify;
pub mod dsn;
pub mod retry;
