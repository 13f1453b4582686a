//! Routing against a real authoritative DNS server on loopback (hickory-server, in-process).

use std::time::Duration;

use delivery::TlsPolicy;
use delivery::route::dns::{Dns, DnsConfig, MxAnswer, NameServers};
use delivery::route::{DomainPattern, HostPort, RouteError, Router, RoutingConfig, StaticRoute};
use testkit::dns::{Rr, TestDns};

fn dns_for(server: &TestDns, ttl_min: Duration) -> Dns {
    Dns::new(DnsConfig {
        servers: NameServers::Listed(vec![server.addr]),
        timeout: Duration::from_secs(2),
        ttl_min,
        ttl_max: Duration::from_secs(3600),
        negative_ttl: Duration::from_secs(60),
    })
    .expect("resolver")
}

fn router(dns: Dns, statics: Vec<StaticRoute>) -> Router {
    Router::new(
        dns,
        RoutingConfig {
            statics,
            default_tls: TlsPolicy::Opportunistic,
            mx_port: 2525,
        },
    )
}

#[tokio::test]
async fn mx_preference_order_null_mx_implicit_mx_and_missing_domains() {
    let server = TestDns::start(
        &[
            Rr::mx("multi.test", 20, "mx-b.multi.test"),
            Rr::mx("multi.test", 10, "mx-a.multi.test"),
            Rr::mx("multi.test", 20, "mx-c.multi.test"),
            Rr::a("mx-a.multi.test", "127.0.0.2"),
            Rr::a("mx-b.multi.test", "127.0.0.3"),
            Rr::mx("shared.test", 20, "mx-b.multi.test"),
            Rr::mx("shared.test", 10, "mx-a.multi.test"),
            Rr::mx("shared.test", 20, "mx-c.multi.test"),
            Rr::NullMx {
                name: "nomail.test".into(),
            },
            Rr::a("bare.test", "127.0.0.4"),
            Rr::Aaaa {
                name: "bare.test".into(),
                ip: "::1".parse().unwrap(),
            },
        ],
        300,
    )
    .await;
    let dns = dns_for(&server, Duration::from_secs(1));
    let r = router(dns.clone(), vec![]);

    let multi = r.route("multi.test").await.expect("route");
    let order: Vec<&str> = multi.hosts.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(
        order,
        ["mx-a.multi.test", "mx-b.multi.test", "mx-c.multi.test"]
    );
    assert!(multi.hosts.iter().all(|h| h.port == 2525));
    let shared = r.route("shared.test").await.expect("route");
    assert_eq!(shared.site, multi.site, "same MX set, same site");

    assert_eq!(
        r.route("nomail.test").await,
        Err(RouteError::NullMx("nomail.test".into()))
    );
    assert_eq!(
        r.route("absent.test").await,
        Err(RouteError::NoDomain("absent.test".into())),
        "NXDOMAIN"
    );

    let bare = dns.mx("bare.test").await.expect("lookup").0;
    assert_eq!(
        bare,
        MxAnswer::Hosts {
            hosts: vec![delivery::route::dns::MxHost {
                name: "bare.test".into(),
                preference: 0
            }],
            implicit: true
        }
    );
    assert_eq!(
        dns.addresses("bare.test").await.expect("addresses"),
        vec![
            "127.0.0.4".parse::<std::net::IpAddr>().unwrap(),
            "::1".parse().unwrap()
        ],
        "IPv4 first, then IPv6"
    );
    assert_eq!(
        dns.addresses("mx-c.multi.test").await.expect("lookup"),
        Vec::<std::net::IpAddr>::new(),
        "an exchanger without addresses is empty, not an error"
    );
}

#[tokio::test]
async fn answers_are_cached_for_their_ttl_then_refreshed() {
    let mut server = TestDns::start(&[Rr::mx("ttl.test", 10, "old.ttl.test")], 1).await;
    let r = router(dns_for(&server, Duration::ZERO), vec![]);
    let first = r.route("ttl.test").await.expect("route");
    assert_eq!(first.hosts[0].host, "old.ttl.test");

    server.add(&Rr::mx("ttl.test", 5, "new.ttl.test")).await;
    let cached = r.route("ttl.test").await.expect("route");
    assert_eq!(
        cached.hosts[0].host, "old.ttl.test",
        "served from our cache"
    );

    tokio::time::sleep(Duration::from_millis(1300)).await;
    let fresh = r.route("ttl.test").await.expect("route");
    assert_eq!(
        fresh.hosts[0].host, "new.ttl.test",
        "looked up again after the TTL"
    );
}

#[tokio::test]
async fn unreachable_resolver_is_a_temporary_failure_and_static_routes_need_no_dns() {
    // A UDP port with nothing behind it.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns = Dns::new(DnsConfig {
        servers: NameServers::Listed(vec![silent.local_addr().unwrap()]),
        timeout: Duration::from_millis(200),
        ..DnsConfig::default()
    })
    .unwrap();
    let statics = vec![StaticRoute {
        pattern: DomainPattern::parse("*.smarthost.test").unwrap(),
        hosts: vec![HostPort {
            host: "127.0.0.9".into(),
            port: 2600,
        }],
        tls: Some(TlsPolicy::Required),
        auth: None,
    }];
    let r = router(dns, statics);
    match r.route("example.test").await {
        Err(RouteError::Temporary(_)) => {}
        other => panic!("expected a temporary failure, got {other:?}"),
    }
    let route = r.route("a.smarthost.test").await.expect("static route");
    assert_eq!(route.hosts[0].to_string(), "127.0.0.9:2600");
    assert_eq!(route.tls, TlsPolicy::Required);
}

/// 40 MX records do not fit a 512-byte UDP answer without EDNS: the answer comes truncated
/// (TC=1) or via EDNS, and either way the route must hold every exchanger, not a cut list.
#[tokio::test]
async fn a_large_mx_set_arrives_whole() {
    let records: Vec<Rr> = (0..40)
        .map(|n| {
            Rr::mx(
                "big.test",
                10 + n,
                &format!("exchanger-number-{n:02}.mail.big.test"),
            )
        })
        .collect();
    let server = TestDns::start(&records, 300).await;
    let r = router(dns_for(&server, Duration::from_secs(1)), vec![]);
    let route = r.route("big.test").await.expect("route");
    assert_eq!(route.hosts.len(), 40, "{:?}", route.hosts);
    assert_eq!(route.hosts[0].host, "exchanger-number-00.mail.big.test");
    assert_eq!(route.hosts[39].host, "exchanger-number-39.mail.big.test");
}
