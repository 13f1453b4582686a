//! Which addresses a webhook may reach. A tenant chooses the URL, so without a guard it
//! could make this server call into the operator's own network (metadata services, admin
//! ports). Loopback, private, link-local, shared (CGNAT), reserved, documentation,
//! benchmarking, multicast and unspecified IPv4 addresses are refused unless the operator
//! allow-lists them. IPv6 is judged the same way, and an IPv6 address that carries an IPv4
//! address (mapped, compatible, NAT64, 6to4, Teredo, ISATAP) is judged by that IPv4
//! address, since a translator or tunnel on the path delivers it there. The name is
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
    #[error("{host} resolves to {ip}, a private, loopback, link-local or reserved address")]
    Private { host: String, ip: IpAddr },
}

fn v4_internal(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        // Shared address space (carrier-grade NAT), RFC 6598.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments (192.0.0.0/24) and TEST-NET-1 (192.0.2.0/24).
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        // The 6to4 relay anycast prefix, RFC 7526.
        || (a == 192 && b == 88 && c == 99)
        // Benchmarking, RFC 2544.
        || (a == 198 && (b == 18 || b == 19))
        // TEST-NET-2 and TEST-NET-3.
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        // Reserved for future use (240.0.0.0/4).
        || a >= 240
}

fn v4_at(segments: [u16; 8], at: usize) -> Ipv4Addr {
    let high = segments[at].to_be_bytes();
    let low = segments[at + 1].to_be_bytes();
    Ipv4Addr::new(high[0], high[1], low[0], low[1])
}

/// The IPv4 addresses an IPv6 address leads to, for the forms that embed one. Teredo
/// carries two (the server, and the client obscured by inverting its bits): both count.
fn embedded_v4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = ip.segments();
    let upper_zero = s[..5].iter().all(|&x| x == 0);
    if upper_zero && (s[5] == 0xffff || s[5] == 0) && !(s[5] == 0 && s[6] == 0) {
        // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d, deprecated);
        // :: and ::1 themselves are left to the IPv6 checks.
        return vec![v4_at(s, 6)];
    }
    if s[..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0 {
        // IPv4-translated (::ffff:0:a.b.c.d), RFC 2765.
        return vec![v4_at(s, 6)];
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 well-known prefix 64:ff9b::/96, RFC 6052.
        return vec![v4_at(s, 6)];
    }
    if s[0] == 0x2002 {
        // 6to4, 2002:a.b.c.d::/48.
        return vec![v4_at(s, 1)];
    }
    if s[0] == 0x2001 && s[1] == 0 {
        // Teredo 2001::/32: server at bits 32-63, client inverted in the last 32 bits.
        let client = !u32::from(v4_at(s, 6));
        return vec![v4_at(s, 2), Ipv4Addr::from(client)];
    }
    if (s[4] & 0xfdff) == 0 && s[5] == 0x5efe {
        // ISATAP interface identifiers (::0:5efe:a.b.c.d, ::200:5efe:a.b.c.d), RFC 5214.
        return vec![v4_at(s, 6)];
    }
    Vec::new()
}

/// IPv6 ranges that never lead to the public Internet (or lead somewhere else than they
/// appear to). Only global unicast (2000::/3) can be public at all; within it, these are
/// special-purpose or documentation blocks.
fn v6_reserved_global(s: [u16; 8]) -> bool {
    // 2001::/23 holds IETF protocol assignments (Teredo, benchmarking, ORCHID, ...);
    // 2001:db8::/32 and 3fff::/20 are documentation; 2002::/16 is 6to4, judged by its
    // IPv4 address instead.
    let ietf = s[0] == 0x2001 && s[1] < 0x0200 && s[1] != 0;
    let documentation = (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] & 0xfff0) == 0x3ff0;
    ietf || documentation
}

fn v6_internal(ip: Ipv6Addr) -> bool {
    let embedded = embedded_v4(ip);
    if !embedded.is_empty() {
        return embedded.into_iter().any(v4_internal);
    }
    let s = ip.segments();
    // Anything outside global unicast: loopback, unspecified, multicast, unique-local
    // (fc00::/7), link-local (fe80::/10), site-local (fec0::/10), discard-only (100::/64),
    // local-use NAT64 (64:ff9b:1::/48, which translates into the operator's own network).
    let global_unicast = (s[0] & 0xe000) == 0x2000;
    !global_unicast || v6_reserved_global(s)
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

    /// Whether a webhook URL may be added: http or https with a host, at most 2048
    /// characters, resolving to addresses webhooks may reach. The error says why not.
    pub async fn check(&self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url)
            .ok()
            .filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && url.len() <= 2048
            })
            .ok_or_else(|| "must be an http:// or https:// URL".to_string())?;
        self.resolve(&parsed)
            .await
            .map(|_| ())
            .map_err(|refused| refused.to_string())
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

    /// Every IPv6 form that carries an IPv4 address leads where that address leads, and
    /// reserved IPv6 ranges lead nowhere public: each internal target below was accepted
    /// (and called) before the guard judged embedded addresses.
    #[test]
    fn ipv6_forms_are_judged_by_the_ipv4_they_carry() {
        let refused = [
            // NAT64, well-known prefix, with loopback, private and metadata addresses.
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::10.0.0.1",
            // Local-use NAT64 translates into the operator's network whatever it carries.
            "64:ff9b:1::8.8.8.8",
            "64:ff9b:1:ffff::c0a8:101",
            // 6to4 with internal addresses.
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:0101::",
            // Teredo: internal server, or internal client (inverted bits).
            "2001:0:7f00:1::",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            // IPv4-compatible, IPv4-mapped and IPv4-translated.
            "::127.0.0.1",
            "::10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0:127.0.0.1",
            "::ffff:0:192.168.0.1",
            // ISATAP interface identifiers under a public prefix.
            "2606:4700::5efe:7f00:1",
            "2606:4700::200:5efe:a00:1",
            // Site-local, unique-local, link-local, discard, documentation, benchmarking.
            "fec0::1",
            "feff::1",
            "fc00::1",
            "fe80::1",
            "100::1",
            "2001:db8::1",
            "3fff::1",
            "2001:2::1",
            "2001:10::1",
            "::",
            "::1",
            "ff02::1",
            // Reserved and special IPv4, directly and embedded.
            "240.0.0.1",
            "255.255.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.1",
            "192.88.99.1",
            "64:ff9b::f000:1",
        ];
        for ip in refused {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!Guard::default().permits(ip), "{ip} permitted");
        }
        // The same forms carrying a public address are ordinary public destinations.
        let permitted = [
            "64:ff9b::8.8.8.8",
            "2002:0808:0808::1",
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
            "::ffff:8.8.8.8",
            "2606:4700::5efe:808:808",
            "2a00:1450:4001:81b::200e",
        ];
        for ip in permitted {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(Guard::default().permits(ip), "{ip} refused");
        }
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
