//! Sign-in attempts limited per account and per network address: password guessing against
//! one account from many addresses, or against many accounts from one address, is slowed
//! down to a handful of tries per window, and the person is told when to try again.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How attempts are counted.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Failed attempts on one account within `window`.
    pub per_account: u32,
    /// Attempts (failed or not) from one address within `window`.
    pub per_address: u32,
    pub window: Duration,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits {
            per_account: 5,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Entries beyond this are pruned of expired windows before a new one is added.
const TRACKED_MAX: usize = 100_000;

#[derive(Debug)]
pub struct LoginThrottle {
    limits: ThrottleLimits,
    accounts: Mutex<HashMap<String, (Instant, u32)>>,
    addresses: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

fn count_in<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, (Instant, u32)>>,
    key: &K,
    window: Duration,
    now: Instant,
) -> (u32, Duration) {
    let map = map.lock().unwrap_or_else(|e| e.into_inner());
    match map.get(key) {
        Some(&(start, count)) if now.duration_since(start) < window => {
            (count, window - now.duration_since(start))
        }
        _ => (0, Duration::ZERO),
    }
}

fn bump<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, (Instant, u32)>>,
    key: K,
    window: Duration,
    now: Instant,
) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= TRACKED_MAX {
        map.retain(|_, (start, _)| now.duration_since(*start) < window);
    }
    let entry = map.entry(key).or_insert((now, 0));
    if now.duration_since(entry.0) >= window {
        *entry = (now, 0);
    }
    entry.1 += 1;
}

impl LoginThrottle {
    pub fn new(limits: ThrottleLimits) -> LoginThrottle {
        LoginThrottle {
            limits,
            accounts: Mutex::new(HashMap::new()),
            addresses: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` when this address or account has used up its attempts; the attempt is
    /// counted against the address either way.
    pub fn check(&self, account: &str, address: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let window = self.limits.window;
        let account = account.trim().to_lowercase();
        let (by_address, address_wait) = count_in(&self.addresses, &address, window, now);
        let (by_account, account_wait) = count_in(&self.accounts, &account, window, now);
        bump(&self.addresses, address, window, now);
        if by_address >= self.limits.per_address {
            return Err(address_wait);
        }
        if by_account >= self.limits.per_account {
            return Err(account_wait);
        }
        Ok(())
    }

    /// Counts a wrong password (or code) against the account.
    pub fn failed(&self, account: &str) {
        bump(
            &self.accounts,
            account.trim().to_lowercase(),
            self.limits.window,
            Instant::now(),
        );
    }

    /// A successful sign-in clears the account's failures.
    pub fn succeeded(&self, account: &str) {
        let mut map = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&account.trim().to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_locks_after_its_failures_from_any_address() {
        let throttle = LoginThrottle::new(ThrottleLimits {
            per_account: 3,
            per_address: 100,
            window: Duration::from_secs(60),
        });
        for i in 0..3 {
            let address = IpAddr::from([10, 0, 0, i]);
            assert!(throttle.check("Ann@acme.example", address).is_ok());
            throttle.failed("ann@acme.example");
        }
        let wait = throttle
            .check("ann@acme.example", IpAddr::from([10, 0, 0, 9]))
            .unwrap_err();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        // Another account is not affected.
        assert!(
            throttle
                .check("bob@acme.example", IpAddr::from([10, 0, 0, 9]))
                .is_ok()
        );
    }

    #[test]
    fn an_address_locks_after_its_attempts_on_any_account() {
        let throttle = LoginThrottle::new(ThrottleLimits {
            per_account: 100,
            per_address: 4,
            window: Duration::from_secs(60),
        });
        let address = IpAddr::from([192, 0, 2, 1]);
        for i in 0..4 {
            assert!(
                throttle
                    .check(&format!("user{i}@x.example"), address)
                    .is_ok()
            );
        }
        assert!(throttle.check("user9@x.example", address).is_err());
        assert!(
            throttle
                .check("user9@x.example", IpAddr::from([192, 0, 2, 2]))
                .is_ok()
        );
    }

    #[test]
    fn success_clears_an_accounts_failures() {
        let throttle = LoginThrottle::new(ThrottleLimits {
            per_account: 2,
            per_address: 100,
            window: Duration::from_secs(60),
        });
        let address = IpAddr::from([10, 0, 0, 1]);
        throttle.failed("ann@acme.example");
        throttle.succeeded("ann@acme.example");
        throttle.failed("ann@acme.example");
        assert!(throttle.check("ann@acme.example", address).is_ok());
    }
}
