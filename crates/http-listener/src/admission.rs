//! Connection caps at accept time: open connections in total and per client address. A
//! refusal is one small HTTP answer and a close, so a client holding many connections
//! cannot use up the process's descriptors, which SMTP needs too.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener's cap on open connections is reached: 503.
    Total,
    /// This address already holds its share: 429.
    PerAddress,
}

impl Refusal {
    /// The whole answer written before closing.
    pub fn answer(self) -> Vec<u8> {
        let (status, retry_after, message) = match self {
            Refusal::Total => (
                "503 Service Unavailable",
                5,
                "too many HTTP connections; try again later",
            ),
            Refusal::PerAddress => (
                "429 Too Many Requests",
                1,
                "too many HTTP connections from your address; reuse one (keep-alive)",
            ),
        };
        let body = serde_json::json!({
            "errors": [{ "message": message, "field": null, "help": null }]
        })
        .to_string();
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Retry-After: {retry_after}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Total => "total_limit",
            Refusal::PerAddress => "per_ip_limit",
        }
    }
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_address: HashMap<IpAddr, u32>,
}

/// The shared counts.
#[derive(Debug, Clone)]
pub struct Admission {
    total_max: usize,
    per_address_max: u32,
    open: Arc<Mutex<Open>>,
}

/// Held for the life of a connection; gives its place back on drop.
#[derive(Debug)]
pub struct Slot {
    ip: IpAddr,
    open: Arc<Mutex<Open>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total -= 1;
        if let Some(count) = open.per_address.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                // Addresses with nothing open are forgotten, so the map stays as small as
                // the set of connected clients.
                open.per_address.remove(&self.ip);
            }
        }
    }
}

impl Admission {
    pub fn new(total_max: usize, per_address_max: u32) -> Admission {
        Admission {
            total_max,
            per_address_max,
            open: Arc::default(),
        }
    }

    /// A slot for a connection from `ip`, or why not.
    pub fn admit(&self, ip: IpAddr) -> Result<Slot, Refusal> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.total_max {
            return Err(Refusal::Total);
        }
        let count = open.per_address.entry(ip).or_insert(0);
        if *count >= self.per_address_max {
            return Err(Refusal::PerAddress);
        }
        *count += 1;
        open.total += 1;
        Ok(Slot {
            ip,
            open: self.open.clone(),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_in_total() {
        let admission = Admission::new(3, 2);
        let a: IpAddr = "127.0.0.1".parse().expect("ip");
        let b: IpAddr = "127.0.0.2".parse().expect("ip");
        let a1 = admission.admit(a).expect("first");
        let _a2 = admission.admit(a).expect("second");
        assert_eq!(admission.admit(a).err(), Some(Refusal::PerAddress));
        let _b1 = admission.admit(b).expect("other address");
        assert_eq!(admission.admit(b).err(), Some(Refusal::Total));
        drop(a1);
        let _b2 = admission.admit(b).expect("a place given back");
        assert_eq!(admission.open(), 3);
    }

    #[test]
    fn refusals_are_complete_json_answers() {
        for refusal in [Refusal::Total, Refusal::PerAddress] {
            let answer = String::from_utf8(refusal.answer()).expect("utf8");
            let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
            assert!(
                head.contains(&format!("Content-Length: {}", body.len())),
                "{head}"
            );
            let json: serde_json::Value = serde_json::from_str(body).expect("json");
            assert!(json["errors"][0]["message"].is_string());
        }
    }
}
