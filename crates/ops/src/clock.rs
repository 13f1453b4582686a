//! The clock alerts, escalation and report schedules run on: the system's, moved forward
//! only when the server was started with an adjustable clock (drills and the scenario
//! tests, which must not sleep for hours). Objectives and samples always use real time.

use std::sync::atomic::{AtomicI64, Ordering};

pub struct Clock {
    offset_ms: AtomicI64,
    adjustable: bool,
}

pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Clock {
    pub fn system() -> Clock {
        Clock {
            offset_ms: AtomicI64::new(0),
            adjustable: false,
        }
    }

    pub fn adjustable() -> Clock {
        Clock {
            offset_ms: AtomicI64::new(0),
            adjustable: true,
        }
    }

    pub fn is_adjustable(&self) -> bool {
        self.adjustable
    }

    pub fn now_ms(&self) -> i64 {
        wall_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Moves the clock forward by `ms`; the new time, or `None` when it is the system's.
    pub fn advance(&self, ms: i64) -> Option<i64> {
        if !self.adjustable || ms < 0 {
            return None;
        }
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
        Some(self.now_ms())
    }
}
