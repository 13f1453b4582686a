//! Behind HAProxy with `send-proxy-v2`: the client's own address (from the PROXY header)
//! decides relaying and shows in the Received header, not the balancer's; a connection from
//! the balancer's address without a header is closed.

use std::net::IpAddr;

use testkit::haproxy::{Backend, Haproxy};

use crate::harness::{RawClient, TestServer};

#[test]
fn the_proxy_header_names_the_client_for_relaying_and_trace_headers() {
    // Only 127.0.0.77 may relay; the balancer (HAProxy, connecting from 127.0.0.1) may not.
    let server = TestServer::start(
        "relay_networks = [\"127.0.0.77/32\"]\nproxy_protocol_from = [\"127.0.0.1/32\"]\n",
    );
    let haproxy = Haproxy::start_with(
        &[Backend {
            smtp: server.smtp,
            http_port: server.http.port(),
        }],
        true,
    );
    let trusted: IpAddr = "127.0.0.77".parse().unwrap();
    let stranger: IpAddr = "127.0.0.88".parse().unwrap();

    let mut client = RawClient::connect_from(trusted, haproxy.addr);
    client.start_data("app@example.com", "someone@example.net");
    client.send(b"Subject: proxied\r\n\r\nhello\r\n.\r\n");
    let reply = client.reply();
    assert!(reply.starts_with("250 "), "{reply}");
    let id = reply.trim().rsplit(' ').next().unwrap().to_string();
    let stored = String::from_utf8(server.stored_content(&id).expect("stored")).unwrap();
    assert!(stored.contains("[127.0.0.77]"), "{stored}");

    let mut other = RawClient::connect_from(stranger, haproxy.addr);
    assert!(other.reply().starts_with("220 "));
    assert!(other.cmd("EHLO stranger.example").starts_with("250"));
    assert!(other.cmd("MAIL FROM:<x@example.com>").starts_with("250"));
    let refused = other.cmd("RCPT TO:<someone@example.net>");
    assert!(
        refused.starts_with("554") || refused.starts_with("550"),
        "{refused}"
    );

    // The balancer's own address without a header: closed without a greeting.
    let mut bare = RawClient::connect(server.smtp);
    bare.send(b"EHLO sneaky\r\n");
    assert_eq!(bare.reply(), "", "no header, no session");
}
