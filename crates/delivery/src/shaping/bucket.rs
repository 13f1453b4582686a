//! A token bucket: `rate` tokens per second, holding at most `burst`.

use std::time::{Duration, Instant};

/// A rate as written in shaping.toml: `"50/s"`, `"3000/min"`, `"100000/h"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
}

impl Rate {
    pub fn parse(text: &str) -> Result<Rate, String> {
        let (count, unit) = text
            .split_once('/')
            .ok_or_else(|| format!("rate {text:?}: expected COUNT/s, COUNT/min or COUNT/h"))?;
        let count: f64 = count
            .trim()
            .parse()
            .map_err(|_| format!("rate {text:?}: {count:?} is not a number"))?;
        let seconds = match unit.trim() {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            "h" | "hour" => 3600.0,
            other => return Err(format!("rate {text:?}: unknown unit {other:?}")),
        };
        if !(count > 0.0 && count.is_finite()) {
            return Err(format!("rate {text:?}: the count must be positive"));
        }
        Ok(Rate {
            per_second: count / seconds,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket. The burst is one second's worth, at least one token.
    pub fn new(rate: Rate, now: Instant) -> Bucket {
        let burst = rate.per_second.max(1.0);
        Bucket {
            rate: rate.per_second,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// An empty bucket: the first token comes after 1/rate seconds.
    pub fn empty(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: 0.0,
            ..Bucket::new(rate, now)
        }
    }

    fn refill(&mut self, now: Instant, share: f64) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        let burst = (self.burst * share).max(1.0);
        self.tokens = (self.tokens + elapsed * self.rate * share).min(burst);
        self.last = now;
    }

    /// Takes a token, or says how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.take_share(now, 1.0)
    }

    /// Takes a token from this node's `share` (0 < share ≤ 1) of the rate: in cluster mode
    /// the nodes' rates add up to the configured one.
    pub fn take_share(&mut self, now: Instant, share: f64) -> Result<(), Duration> {
        let share = share.clamp(f64::MIN_POSITIVE, 1.0);
        self.refill(now, share);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / (self.rate * share),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(Rate::parse("50/s").unwrap().per_second, 50.0);
        assert_eq!(Rate::parse("120/min").unwrap().per_second, 2.0);
        assert_eq!(Rate::parse("3600/h").unwrap().per_second, 1.0);
        for bad in ["50", "x/s", "5/week", "0/s", "-1/s"] {
            assert!(Rate::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bucket_allows_the_rate_and_no_more() {
        let start = Instant::now();
        let mut bucket = Bucket::new(Rate { per_second: 10.0 }, start);
        let taken = (0..100).filter(|_| bucket.take(start).is_ok()).count();
        assert_eq!(taken, 10, "burst is one second's worth");
        let wait = bucket.take(start).unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::from_millis(90));
        let later = start + Duration::from_secs(2);
        let taken = (0..100).filter(|_| bucket.take(later).is_ok()).count();
        assert_eq!(taken, 10, "refill is capped at the burst");
    }
}
