//! The service level objectives' counters ([`SloStore`]): per objective, good and total
//! events per slot, written by the server every few seconds and read back at start-up, so
//! an error budget survives a restart.

use std::future::Future;

use crate::StoreError;

/// One slot of one objective's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SloSlot {
    pub slo: String,
    /// The slot's length (60,000 for minutes, 3,600,000 for hours).
    pub grain_ms: i64,
    /// The slot's number (Unix ms / grain).
    pub slot: i64,
    pub good: u64,
    pub total: u64,
}

pub trait SloStore {
    /// Writes these slots (replacing what a slot held).
    fn save_slo_slots(
        &self,
        slots: &[SloSlot],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every slot that began at or after `since_ms`.
    fn slo_slots(
        &self,
        since_ms: i64,
    ) -> impl Future<Output = Result<Vec<SloSlot>, StoreError>> + Send;
    /// Forgets slots that began before `before_ms`; how many.
    fn purge_slo_slots(
        &self,
        before_ms: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
