//! What the load generator sends: message sizes and recipient domains drawn by weight, and
//! the source addresses connections are spread over (parsed once from the command line),
//! and connecting from one of them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context, bail};
use rand::Rng;
use tokio::net::{TcpSocket, TcpStream};

/// Values drawn with probability proportional to their weights.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Weighted<T> {
    /// Each value with the running total of weights up to and including it.
    entries: Vec<(T, u64)>,
}

impl<T> Weighted<T> {
    /// Parses `value` or `value:weight,value:weight,...` (weights are whole numbers).
    fn parse(spec: &str, value: impl Fn(&str) -> anyhow::Result<T>) -> anyhow::Result<Self> {
        let mut entries = Vec::new();
        let mut total = 0u64;
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (text, weight) = match item.rsplit_once(':') {
                Some((text, weight)) => (
                    text,
                    weight
                        .parse::<u64>()
                        .with_context(|| format!("weight in {item:?}"))?,
                ),
                None => (item, 1),
            };
            if weight == 0 {
                continue;
            }
            total += weight;
            entries.push((value(text)?, total));
        }
        if entries.is_empty() {
            bail!("{spec:?} names nothing with a positive weight");
        }
        Ok(Weighted { entries })
    }

    pub fn pick(&self, rng: &mut impl Rng) -> &T {
        let total = self.entries.last().map_or(1, |e| e.1);
        let roll = rng.random_range(0..total);
        let at = self.entries.partition_point(|e| e.1 <= roll);
        &self.entries[at.min(self.entries.len() - 1)].0
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|e| &e.0)
    }
}

/// Message sizes in bytes: `5120`, `5k`, or `1k:50,5k:40,100k:10`.
pub(crate) fn sizes(spec: &str) -> anyhow::Result<Weighted<usize>> {
    Weighted::parse(spec, |text| {
        let lower = text.to_ascii_lowercase();
        let (digits, scale) = match lower.strip_suffix('k') {
            Some(d) => (d, 1024),
            None => match lower.strip_suffix('m') {
                Some(d) => (d, 1024 * 1024),
                None => (lower.as_str(), 1),
            },
        };
        let size = digits
            .parse::<usize>()
            .with_context(|| format!("size {text:?}"))?
            * scale;
        if size < 64 {
            bail!("size {text:?}: at least 64 bytes");
        }
        Ok(size)
    })
}

/// Recipient domains: `example.com` or `gmail.test:5,yahoo.test:3`.
pub(crate) fn domains(spec: &str) -> anyhow::Result<Weighted<String>> {
    Weighted::parse(spec, |text| {
        if text.is_empty() || text.contains(['@', ' ', '<', '>']) {
            bail!("domain {text:?} is not a domain name");
        }
        Ok(text.to_string())
    })
}

/// Most source addresses one run may spread over.
const SOURCES_MAX: usize = 1 << 16;

/// Source addresses: a comma-separated list of addresses and IPv4 prefixes
/// (`127.1.0.0/24,127.2.0.1`). Prefixes expand to every address in them.
pub(crate) fn sources(spec: &str) -> anyhow::Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once('/') {
            None => out.push(item.parse().with_context(|| format!("address {item:?}"))?),
            Some((base, bits)) => {
                let base: Ipv4Addr = base.parse().with_context(|| format!("prefix {item:?}"))?;
                let bits: u32 = bits.parse().with_context(|| format!("prefix {item:?}"))?;
                if !(16..=32).contains(&bits) {
                    bail!("prefix {item:?}: use /16 to /32");
                }
                let first = u32::from(base) & (u32::MAX << (32 - bits));
                let count = 1u64 << (32 - bits);
                for i in 0..count {
                    out.push(IpAddr::V4(Ipv4Addr::from(first + i as u32)));
                }
            }
        }
        if out.len() > SOURCES_MAX {
            bail!("more than {SOURCES_MAX} source addresses");
        }
    }
    Ok(out)
}

/// Connects to `server`, from `source` when given (binding it first).
pub(crate) async fn connect_from(
    server: SocketAddr,
    source: Option<IpAddr>,
) -> anyhow::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(server).await.context("connect");
    };
    let socket = if source.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket
        .bind(SocketAddr::new(source, 0))
        .with_context(|| format!("bind {source}"))?;
    socket.connect(server).await.context("connect")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn weights_are_honoured() {
        let mix = domains("a.test:3,b.test:1").expect("mix");
        let mut rng = SmallRng::seed_from_u64(1);
        let a = (0..10_000)
            .filter(|_| mix.pick(&mut rng) == "a.test")
            .count();
        assert!((7_200..=7_800).contains(&a), "{a}");
    }

    #[test]
    fn sizes_take_suffixes_and_refuse_nonsense() {
        let s = sizes("1k:50, 5K:40,2m:10").expect("sizes");
        assert_eq!(
            s.values().copied().collect::<Vec<_>>(),
            [1024, 5120, 2 << 20]
        );
        assert_eq!(sizes("5120").expect("one").values().count(), 1);
        assert!(sizes("10").is_err());
        assert!(sizes("5k:x").is_err());
        assert!(sizes("5k:0").is_err());
    }

    #[test]
    fn sources_expand_prefixes() {
        let s = sources("127.1.0.0/30,127.0.0.9").expect("sources");
        let text: Vec<String> = s.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            text,
            [
                "127.1.0.0",
                "127.1.0.1",
                "127.1.0.2",
                "127.1.0.3",
                "127.0.0.9"
            ]
        );
        assert!(sources("127.0.0.0/8").is_err());
        assert!(sources("nonsense").is_err());
    }
}
