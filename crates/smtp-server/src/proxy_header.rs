//! The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that a load
//! balancer sends before the client's bytes, naming the client's address. Sans-IO: the
//! connection driver reads what [`parse`] asks for and hands the bytes back.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Version 2's signature.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Version 1's longest line, CRLF included.
const V1_MAX: usize = 107;

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Read until the buffer holds this many bytes, then parse again.
    Incomplete {
        at_least: usize,
    },
    /// The header is `consumed` bytes long. `source`: the client's address; `None` when the
    /// balancer speaks for itself (v2 LOCAL, health checks) or does not know (v1 UNKNOWN).
    Done {
        source: Option<SocketAddr>,
        consumed: usize,
    },
    Invalid(&'static str),
}

/// Parses the start of a connection's bytes.
pub fn parse(buf: &[u8]) -> Parsed {
    if buf.len() < 8 {
        return Parsed::Incomplete { at_least: 8 };
    }
    if buf[..8] == V2_SIGNATURE[..8] {
        parse_v2(buf)
    } else if buf.starts_with(b"PROXY ") {
        parse_v1(buf)
    } else {
        Parsed::Invalid("no PROXY protocol header")
    }
}

fn parse_v1(buf: &[u8]) -> Parsed {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() >= V1_MAX {
            return Parsed::Invalid("PROXY v1 line too long");
        }
        return Parsed::Incomplete {
            at_least: buf.len() + 1,
        };
    };
    let consumed = end + 2;
    if consumed > V1_MAX {
        return Parsed::Invalid("PROXY v1 line too long");
    }
    let Ok(line) = std::str::from_utf8(&buf[..end]) else {
        return Parsed::Invalid("PROXY v1 line is not text");
    };
    let fields: Vec<&str> = line.split(' ').collect();
    match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Parsed::Done {
            source: None,
            consumed,
        },
        [
            "PROXY",
            family @ ("TCP4" | "TCP6"),
            src,
            _dst,
            sport,
            _dport,
        ] => {
            let ip: Option<IpAddr> = match *family {
                "TCP4" => src.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
                _ => src.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            };
            match (ip, sport.parse::<u16>()) {
                (Some(ip), Ok(port)) => Parsed::Done {
                    source: Some(SocketAddr::new(ip, port)),
                    consumed,
                },
                _ => Parsed::Invalid("PROXY v1 address or port unreadable"),
            }
        }
        _ => Parsed::Invalid("PROXY v1 line malformed"),
    }
}

fn parse_v2(buf: &[u8]) -> Parsed {
    if buf.len() < 16 {
        return Parsed::Incomplete { at_least: 16 };
    }
    if buf[..12] != V2_SIGNATURE {
        return Parsed::Invalid("PROXY v2 signature wrong");
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 {
        return Parsed::Invalid("PROXY v2 version unknown");
    }
    let len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    let consumed = 16 + len;
    if buf.len() < consumed {
        return Parsed::Incomplete { at_least: consumed };
    }
    let body = &buf[16..consumed];
    match command {
        // LOCAL: the balancer's own connection (health checks).
        0 => Parsed::Done {
            source: None,
            consumed,
        },
        1 => {
            let source = match buf[13] {
                // TCP (or UDP) over IPv4: src, dst, src port, dst port.
                0x11 | 0x12 if body.len() >= 12 => Some(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::new(body[0], body[1], body[2], body[3])),
                    u16::from_be_bytes([body[8], body[9]]),
                )),
                0x21 | 0x22 if body.len() >= 36 => {
                    let mut octets = [0u8; 16];
                    octets.copy_from_slice(&body[..16]);
                    Some(SocketAddr::new(
                        IpAddr::V6(Ipv6Addr::from(octets)),
                        u16::from_be_bytes([body[32], body[33]]),
                    ))
                }
                // AF_UNSPEC or AF_UNIX: nothing to tell.
                0x00 | 0x31 | 0x32 => None,
                _ => return Parsed::Invalid("PROXY v2 address block malformed"),
            };
            Parsed::Done { source, consumed }
        }
        _ => Parsed::Invalid("PROXY v2 command unknown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` the way the driver does: only as many as asked for.
    fn drive(bytes: &[u8]) -> Parsed {
        let mut have = 0;
        loop {
            match parse(&bytes[..have]) {
                Parsed::Incomplete { at_least } => {
                    assert!(at_least > have, "asks for more each time");
                    if at_least > bytes.len() {
                        return Parsed::Incomplete { at_least };
                    }
                    have = at_least;
                }
                done => return done,
            }
        }
    }

    #[test]
    fn version_1_lines() {
        let line = b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 25\r\nEHLO x\r\n";
        assert_eq!(
            drive(line),
            Parsed::Done {
                source: Some("192.0.2.7:51234".parse().unwrap()),
                consumed: 40
            }
        );
        let six = b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 587\r\n";
        assert_eq!(
            drive(six),
            Parsed::Done {
                source: Some("[2001:db8::7]:40000".parse().unwrap()),
                consumed: six.len()
            }
        );
        assert_eq!(
            drive(b"PROXY UNKNOWN\r\n"),
            Parsed::Done {
                source: None,
                consumed: 15
            }
        );
        for bad in [
            &b"PROXY TCP4 192.0.2.7 10.0.0.1 99999 25\r\n"[..],
            b"PROXY TCP4 2001:db8::7 10.0.0.1 1 25\r\n",
            b"PROXY TCP5 a b 1 2\r\n",
            b"EHLO client.example\r\n",
        ] {
            assert!(matches!(drive(bad), Parsed::Invalid(_)), "{bad:?}");
        }
        let long = [b"PROXY ".as_slice(), &[b'x'; 200]].concat();
        assert!(matches!(drive(&long), Parsed::Invalid(_)));
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn version_2_headers() {
        let mut body = vec![198, 51, 100, 9, 10, 0, 0, 1];
        body.extend_from_slice(&4321u16.to_be_bytes());
        body.extend_from_slice(&25u16.to_be_bytes());
        body.extend_from_slice(&[0x04, 0x00, 0x01, 0xAA]); // a TLV, skipped
        let header = v2(1, 0x11, &body);
        assert_eq!(
            drive(&header),
            Parsed::Done {
                source: Some("198.51.100.9:4321".parse().unwrap()),
                consumed: header.len()
            }
        );
        let mut six = "2001:db8::9".parse::<Ipv6Addr>().unwrap().octets().to_vec();
        six.extend_from_slice(&[0u8; 16]);
        six.extend_from_slice(&5000u16.to_be_bytes());
        six.extend_from_slice(&25u16.to_be_bytes());
        assert_eq!(
            drive(&v2(1, 0x21, &six)),
            Parsed::Done {
                source: Some("[2001:db8::9]:5000".parse().unwrap()),
                consumed: 16 + 36
            }
        );
        assert_eq!(
            drive(&v2(0, 0x00, &[])),
            Parsed::Done {
                source: None,
                consumed: 16
            }
        );
        assert!(matches!(
            drive(&v2(1, 0x11, &[1, 2, 3])),
            Parsed::Invalid(_)
        ));
        assert!(matches!(drive(&v2(7, 0x11, &body)), Parsed::Invalid(_)));
        let mut wrong = v2(1, 0x11, &body);
        wrong[9] = b'X';
        assert!(matches!(drive(&wrong), Parsed::Invalid(_)));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 64) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|i| (seed >> (i % 56)) as u8).collect();
            if seed % 3 == 0 {
                bytes.splice(0..0, V2_SIGNATURE);
            } else if seed % 3 == 1 {
                bytes.splice(0..0, *b"PROXY ");
            }
            let _ = drive(&bytes);
        }
    }
}
