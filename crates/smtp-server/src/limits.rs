//! Admission control at accept time: a global connection cap, a per-address cap, and a
//! per-address rate of new connections. A refusal costs one small write and a close, so a
//! flood of connections cannot buy TLS handshakes or session state. Addresses in the
//! exempt networks (by default the trusted relay networks, as Postfix exempts mynetworks)
//! only count towards the global cap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::ConnectionLimits;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The server-wide connection cap is reached.
    Global,
    /// This address already has its share of open connections.
    PerIp,
    /// This address opened too many connections in the current interval.
    Rate,
}

impl Refusal {
    /// The reply sent before closing.
    pub fn reply(self) -> &'static [u8] {
        match self {
            Refusal::Global => b"421 4.7.0 Too many connections, try again later\r\n",
            Refusal::PerIp => b"421 4.7.0 Too many connections from your address\r\n",
            Refusal::Rate => b"421 4.7.0 Connection rate limit exceeded, slow down\r\n",
        }
    }

    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Global => "global_limit",
            Refusal::PerIp => "per_ip_limit",
            Refusal::Rate => "rate_limit",
        }
    }
}

#[derive(Debug)]
struct PerIp {
    open: u32,
    window_start: Instant,
    window_count: u32,
}

#[derive(Debug, Default)]
struct State {
    open: usize,
    per_ip: HashMap<IpAddr, PerIp>,
    admitted_since_sweep: usize,
}

/// Shared admission state.
#[derive(Debug, Clone)]
pub struct Limiter {
    limits: ConnectionLimits,
    state: Arc<Mutex<State>>,
}

/// Held for the life of a connection; releases its slots on drop.
#[derive(Debug)]
pub struct Permit {
    /// The address whose per-address slot this holds; `None` for an exempt address.
    ip: Option<IpAddr>,
    state: Arc<Mutex<State>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.open -= 1;
        if let Some(entry) = self.ip.and_then(|ip| state.per_ip.get_mut(&ip)) {
            entry.open -= 1;
        }
    }
}

impl Limiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: ConnectionLimits) -> Self {
        Limiter {
            limits,
            state: Arc::default(),
        }
    }

    /// Admits a connection from `ip` at `now`, or says why not.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Result<Permit, Refusal> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.open >= self.limits.connections_max {
            return Err(Refusal::Global);
        }
        if self.limits.exempt_networks.iter().any(|n| n.contains(ip)) {
            state.open += 1;
            return Ok(Permit {
                ip: None,
                state: self.state.clone(),
            });
        }
        state.admitted_since_sweep += 1;
        if state.admitted_since_sweep >= 4096 {
            self.sweep(&mut state, now);
        }
        let entry = state.per_ip.entry(ip).or_insert(PerIp {
            open: 0,
            window_start: now,
            window_count: 0,
        });
        if now.duration_since(entry.window_start) >= self.limits.rate_interval {
            entry.window_start = now;
            entry.window_count = 0;
        }
        entry.window_count = entry.window_count.saturating_add(1);
        if entry.window_count > self.limits.connection_rate_per_ip_max {
            return Err(Refusal::Rate);
        }
        if entry.open >= self.limits.connections_per_ip_max {
            return Err(Refusal::PerIp);
        }
        entry.open += 1;
        state.open += 1;
        Ok(Permit {
            ip: Some(ip),
            state: self.state.clone(),
        })
    }

    /// Forgets addresses with nothing open and an expired window, bounding the map's size.
    fn sweep(&self, state: &mut State, now: Instant) {
        let interval = self.limits.rate_interval;
        state
            .per_ip
            .retain(|_, e| e.open > 0 || now.duration_since(e.window_start) < interval);
        state.admitted_since_sweep = 0;
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).open
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter() -> Limiter {
        Limiter::new(ConnectionLimits {
            connections_max: 3,
            connections_per_ip_max: 2,
            connection_rate_per_ip_max: 4,
            rate_interval: Duration::from_secs(10),
            exempt_networks: vec!["10.0.0.0/8".parse().expect("cidr")],
        })
    }

    /// A trusted application opening one connection per message, many at once, is held
    /// only by the global cap.
    #[test]
    fn exempt_networks_skip_the_per_address_limits() {
        let limiter = limiter();
        let now = Instant::now();
        let app: IpAddr = "10.1.2.3".parse().expect("ip");
        for _ in 0..100 {
            drop(limiter.admit(app, now).expect("exempt from the rate"));
        }
        let held: Vec<Permit> = (0..3)
            .map(|_| {
                limiter
                    .admit(app, now)
                    .expect("exempt from the per-address cap")
            })
            .collect();
        assert_eq!(limiter.admit(app, now).err(), Some(Refusal::Global));
        drop(held);
        assert_eq!(limiter.open(), 0);
        let other: IpAddr = "127.0.0.1".parse().expect("ip");
        for _ in 0..4 {
            drop(limiter.admit(other, now).expect("within rate"));
        }
        assert_eq!(limiter.admit(other, now).err(), Some(Refusal::Rate));
    }

    #[test]
    fn per_ip_and_global_caps() {
        let limiter = limiter();
        let now = Instant::now();
        let a: IpAddr = "127.0.0.1".parse().expect("ip");
        let b: IpAddr = "127.0.0.2".parse().expect("ip");
        let p1 = limiter.admit(a, now).expect("first");
        let _p2 = limiter.admit(a, now).expect("second");
        assert_eq!(limiter.admit(a, now).err(), Some(Refusal::PerIp));
        let _p3 = limiter.admit(b, now).expect("other address");
        assert_eq!(limiter.admit(b, now).err(), Some(Refusal::Global));
        drop(p1);
        assert!(limiter.admit(b, now).is_ok());
    }

    #[test]
    fn rate_window() {
        let limiter = limiter();
        let now = Instant::now();
        let a: IpAddr = "127.0.0.1".parse().expect("ip");
        for _ in 0..4 {
            drop(limiter.admit(a, now).expect("within rate"));
        }
        assert_eq!(limiter.admit(a, now).err(), Some(Refusal::Rate));
        assert!(limiter.admit(a, now + Duration::from_secs(11)).is_ok());
    }
}
