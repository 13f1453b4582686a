//! The retry schedule: exponential back-off with jitter, up to a maximum age.
//!
//! With the defaults a deferred recipient is retried after about 1, 2, 4, 8, 16, 32 and 64
//! minutes, then 2 h, then every 4 h (each ±20 %), until it is 5 days old; then it expires and
//! bounces with 4.4.7.

use std::time::Duration;

/// Settings, validated by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before the second attempt.
    pub initial: Duration,
    /// Each further delay is this many times the previous one.
    pub factor: f64,
    /// Delays never exceed this.
    pub interval_max: Duration,
    /// A recipient older than this (since the message was accepted) is not retried again.
    pub max_age: Duration,
    /// Each delay is moved by up to ± this fraction, so deferred mail does not come back in
    /// lockstep.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_secs(60),
            factor: 2.0,
            interval_max: Duration::from_secs(4 * 3600),
            max_age: Duration::from_secs(5 * 86_400),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// Delay after the `attempts`-th failed attempt (1 = the first), with `unit` a random
    /// number in [0, 1) for the jitter.
    pub fn delay(&self, attempts: u32, unit: f64) -> Duration {
        let exponent = attempts.saturating_sub(1).min(64) as i32;
        let base = self.initial.as_secs_f64() * self.factor.powi(exponent);
        let base = base.min(self.interval_max.as_secs_f64());
        let jittered = base * (1.0 + self.jitter * (2.0 * unit - 1.0));
        Duration::from_secs_f64(jittered.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_doubles_then_caps_and_jitter_stays_in_bounds() {
        let policy = RetryPolicy::default();
        let mid: Vec<u64> = (1..=10).map(|n| policy.delay(n, 0.5).as_secs()).collect();
        assert_eq!(
            mid,
            [60, 120, 240, 480, 960, 1920, 3840, 7680, 14400, 14400]
        );
        assert_eq!(policy.delay(1, 0.0).as_secs(), 48);
        assert_eq!(policy.delay(1, 0.999_999).as_secs(), 71);
        assert_eq!(policy.delay(u32::MAX, 0.5).as_secs(), 14400, "no overflow");
    }
}
