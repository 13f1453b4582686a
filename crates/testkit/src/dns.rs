//! An authoritative DNS server on loopback (hickory-server, UDP and TCP on one port) serving
//! the zone `test.` (or any, the root included): MX, A and AAAA records for test domains that
//! point at sinks on 127.0.0.x.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::proto::rr::rdata::{A, AAAA, MX, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};

/// One record to serve; names are relative to nothing (write them in full, e.g.
/// "mx1.example.test").
#[derive(Debug, Clone)]
pub enum Rr {
    Mx {
        name: String,
        preference: u16,
        exchange: String,
    },
    /// RFC 7505: "MX 0 ."
    NullMx {
        name: String,
    },
    A {
        name: String,
        ip: Ipv4Addr,
    },
    Aaaa {
        name: String,
        ip: Ipv6Addr,
    },
    /// One TXT record; long texts are split into 255-byte strings as DNS requires.
    Txt {
        name: String,
        text: String,
    },
}

impl Rr {
    pub fn mx(name: &str, preference: u16, exchange: &str) -> Rr {
        Rr::Mx {
            name: name.into(),
            preference,
            exchange: exchange.into(),
        }
    }
    pub fn txt(name: &str, text: &str) -> Rr {
        Rr::Txt {
            name: name.into(),
            text: text.into(),
        }
    }
    pub fn a(name: &str, ip: &str) -> Rr {
        Rr::A {
            name: name.into(),
            ip: ip.parse().expect("IPv4 address"),
        }
    }
}

fn name(text: &str) -> Name {
    let fqdn = if text.ends_with('.') {
        text.to_string()
    } else {
        format!("{text}.")
    };
    Name::from_str(&fqdn).expect("valid DNS name")
}

/// A running server; stops when dropped.
pub struct TestDns {
    pub addr: SocketAddr,
    zone: Arc<InMemoryZoneHandler>,
    server: Server<Catalog>,
    ttl: u32,
    serial: u32,
}

impl TestDns {
    /// Serves `records` (all under `test.`) with the given TTL, on 127.0.0.1, a free port.
    pub async fn start(records: &[Rr], ttl: u32) -> TestDns {
        TestDns::start_in("test", records, ttl).await
    }

    /// Serves `records` as the authority for `origin` ("." for every name: a test may then
    /// give gmail.com its own MX, and nothing leaves the machine).
    pub async fn start_in(origin: &str, records: &[Rr], ttl: u32) -> TestDns {
        let origin = name(origin);
        let mut zone =
            InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
        let soa = SOA::new(
            name("ns.test"),
            name("hostmaster.test"),
            1,
            3600,
            600,
            86400,
            ttl,
        );
        zone.upsert_mut(Record::from_rdata(origin.clone(), ttl, RData::SOA(soa)), 1);
        let zone = Arc::new(zone);
        let mut catalog = Catalog::new();
        catalog.upsert(
            LowerName::new(&origin),
            vec![zone.clone() as Arc<dyn ZoneHandler>],
        );
        // UDP and TCP on one port: pick the port with UDP, and pick again when another test
        // already holds that number for TCP.
        let mut attempt = 0;
        let (udp, tcp, addr) = loop {
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("bind DNS UDP");
            let addr = udp.local_addr().expect("addr");
            match tokio::net::TcpListener::bind(addr).await {
                Ok(tcp) => break (udp, tcp, addr),
                Err(err) if attempt < 50 => {
                    attempt += 1;
                    let _ = err;
                }
                Err(err) => panic!("no port free for both UDP and TCP: {err}"),
            }
        };
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 4096);
        let mut dns = TestDns {
            addr,
            zone,
            server,
            ttl,
            serial: 1,
        };
        for rr in records {
            dns.add(rr).await;
        }
        dns
    }

    /// Adds a record (or replaces the set for its name and type when it exists).
    pub async fn add(&mut self, rr: &Rr) {
        self.serial += 1;
        let ttl = self.ttl;
        let record = match rr {
            Rr::Mx {
                name: n,
                preference,
                exchange,
            } => Record::from_rdata(
                name(n),
                ttl,
                RData::MX(MX::new(*preference, name(exchange))),
            ),
            Rr::NullMx { name: n } => {
                Record::from_rdata(name(n), ttl, RData::MX(MX::new(0, Name::root())))
            }
            Rr::A { name: n, ip } => Record::from_rdata(name(n), ttl, RData::A(A(*ip))),
            Rr::Aaaa { name: n, ip } => Record::from_rdata(name(n), ttl, RData::AAAA(AAAA(*ip))),
            Rr::Txt { name: n, text } => {
                let parts: Vec<String> = text
                    .as_bytes()
                    .chunks(255)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect();
                Record::from_rdata(name(n), ttl, RData::TXT(TXT::new(parts)))
            }
        };
        assert!(
            self.zone.upsert(record, self.serial).await,
            "record {rr:?} not added"
        );
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.server.shutdown_token().cancel();
    }
}
