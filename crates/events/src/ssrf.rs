//! Which addresses a webhook may reach. A tenant chooses the URL, so without a guard it
//! could make this server call into the operator's own network (metadata services, admin
//! ports). Loopback, private, link-local, shared (CGNAT), unique-local, multicast and
//! unspecified addresses are refused unless the operator allow-lists them; the name is
//! resolved here and the connection goes to the address that was checked (no second
//! lookup that DNS could answer differently), and redirects are not followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use smtp_server::cidr::Cidr;

/// Why a webhook URL cannot be called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the URL must be http:// or https:// with a host")]
    BadUrl,
    #[error("{0} does not resolve")]
    NoAddress(String),
    #[error("{host} resolves to {ip}, a private, loopback or link-local address")]
    Private { host: String, ip: IpAddr },
}

fn v4_internal(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || (a == 100 && (64..128).contains(&b))
        || a == 0
}

fn v6_internal(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_internal(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
}

/// True for addresses of the operator's own networks.
pub fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_internal(v4),
        IpAddr::V6(v6) => v6_internal(v6),
    }
}

/// The guard, with the operator's allow-list.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    pub allowed: Vec<Cidr>,
}

impl Guard {
    pub fn permits(&self, ip: IpAddr) -> bool {
        !internal(ip) || self.allowed.iter().any(|n| n.contains(ip))
    }

    /// The address to connect to for `url`: its host resolved, the first permitted address.
    pub async fn resolve(&self, url: &reqwest::Url) -> Result<(String, SocketAddr), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::BadUrl);
        }
        let host = url.host_str().ok_or(Refused::BadUrl)?.to_string();
        let port = url.port_or_known_default().ok_or(Refused::BadUrl)?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            // Bounded: a resolver that does not answer must not hold a request or a webhook
            // task for long.
            Err(_) => tokio::time::timeout(
                std::time::Duration::from_secs(5),
                tokio::net::lookup_host((bare, port)),
            )
            .await
            .map_err(|_| Refused::NoAddress(host.clone()))?
            .map_err(|_| Refused::NoAddress(host.clone()))?
            .collect(),
        };
        let first = *addrs
            .first()
            .ok_or_else(|| Refused::NoAddress(host.clone()))?;
        match addrs.into_iter().find(|a| self.permits(a.ip())) {
            Some(addr) => Ok((host, addr)),
            None => Err(Refused::Private {
                host,
                ip: first.ip(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!Guard::default().permits(ip), "{ip} permitted");
        }
        for ip in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "172.32.0.1",
        ] {
            assert!(
                Guard::default().permits(ip.parse().unwrap()),
                "{ip} refused"
            );
        }
        let guard = Guard {
            allowed: vec!["127.0.0.0/8".parse().unwrap()],
        };
        assert!(guard.permits("127.0.0.2".parse().unwrap()));
        assert!(!guard.permits("10.0.0.1".parse().unwrap()));
    }

    #[tokio::test]
    async fn urls_resolve_to_a_checked_address() {
        let guard = Guard::default();
        let url = reqwest::Url::parse("http://127.0.0.1:9/hook").unwrap();
        assert!(matches!(
            guard.resolve(&url).await,
            Err(Refused::Private { .. })
        ));
        let url = reqwest::Url::parse("http://localhost:9/hook").unwrap();
        assert!(matches!(
            guard.resolve(&url).await,
            Err(Refused::Private { .. })
        ));
        let url = reqwest::Url::parse("ftp://example.com/").unwrap();
        assert_eq!(guard.resolve(&url).await, Err(Refused::BadUrl));
        let open = Guard {
            allowed: vec!["127.0.0.1".parse().unwrap()],
        };
        let url = reqwest::Url::parse("http://127.0.0.1:9/hook").unwrap();
        assert_eq!(
            open.resolve(&url).await.map(|(_, a)| a),
            Ok("127.0.0.1:9".parse().unwrap())
        );
    }
}
