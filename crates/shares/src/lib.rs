//! A node's share of cluster-wide limits (tenants' rates and daily quotas, providers'
//! connection budgets and message rates). Each limit is split evenly over the live nodes,
//! without any coordination per message: a node knows its rank among the live nodes (sorted
//! by name) and their count, and takes `limit / count`, plus one of the `limit % count`
//! leftover units when its rank holds one of them. The leftovers move from rank to rank
//! every minute, so a limit smaller than the cluster (one connection for three nodes)
//! still reaches every node's queue in turn. The parts always add up to the limit.
//!
//! A single node is rank 0 of 1: every limit is its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// How long a leftover unit stays with one rank.
const ROTATION_SECS: u64 = 60;

/// This node's place among the live nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub rank: u32,
    pub count: u32,
}

impl Default for Share {
    fn default() -> Self {
        Share { rank: 0, count: 1 }
    }
}

impl Share {
    /// This node's part of a whole-number limit at `now_secs` (Unix seconds).
    pub fn part_at(self, limit: u64, now_secs: u64) -> u64 {
        let count = u64::from(self.count.max(1));
        let rank = u64::from(self.rank) % count;
        let leftover = limit % count;
        let slot = (rank + now_secs / ROTATION_SECS) % count;
        limit / count + u64::from(slot < leftover)
    }

    /// This node's part of a whole-number limit now.
    pub fn part(self, limit: u64) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.part_at(limit, now)
    }

    /// This node's fraction of a rate.
    pub fn fraction(self) -> f64 {
        1.0 / f64::from(self.count.max(1))
    }

    pub fn is_whole(self) -> bool {
        self.count <= 1
    }
}

/// The current share, updated by the cluster loop and read on every admission; cheap to
/// clone (all clones see the same value).
#[derive(Debug, Clone, Default)]
pub struct Shares(Arc<AtomicU64>);

impl Shares {
    pub fn set(&self, share: Share) {
        let packed = (u64::from(share.rank) << 32) | u64::from(share.count.max(1));
        self.0.store(packed, Ordering::Relaxed);
    }

    pub fn get(&self) -> Share {
        let packed = self.0.load(Ordering::Relaxed);
        if packed == 0 {
            return Share::default();
        }
        Share {
            rank: (packed >> 32) as u32,
            count: (packed as u32).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_add_up_to_the_limit_and_leftovers_rotate() {
        for count in 1..=5u32 {
            for limit in [0u64, 1, 2, 3, 7, 10, 1000, 1001] {
                for now in [0u64, 59, 60, 125, 3600] {
                    let total: u64 = (0..count)
                        .map(|rank| Share { rank, count }.part_at(limit, now))
                        .sum();
                    assert_eq!(total, limit, "count {count} limit {limit} at {now}");
                }
            }
        }
        // One connection for three nodes: each node has it for a minute in turn.
        let holders = |now| {
            (0..3)
                .filter(|&rank| Share { rank, count: 3 }.part_at(1, now) == 1)
                .collect::<Vec<u32>>()
        };
        assert_eq!(holders(0), vec![0]);
        assert_eq!(holders(60), vec![2]);
        assert_eq!(holders(120), vec![1]);
        assert_eq!(
            Share::default().part_at(7, 0),
            7,
            "a single node has it all"
        );
    }

    #[test]
    fn shares_are_shared_between_clones() {
        let shares = Shares::default();
        assert_eq!(shares.get(), Share::default());
        let seen = shares.clone();
        shares.set(Share { rank: 2, count: 3 });
        assert_eq!(seen.get(), Share { rank: 2, count: 3 });
        assert!((seen.get().fraction() - 1.0 / 3.0).abs() < 1e-9);
    }
}
