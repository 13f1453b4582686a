//! The HTTP listener from raw sockets: every error is the API's JSON naming the field, and
//! connections are bounded (header, body and idle timeouts; caps per address and in total).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use crate::harness::TestServer;

/// A parsed HTTP response.
struct Answer {
    status: u16,
    head: String,
    body: Value,
}

/// Reads one response from `stream`: the head, then `Content-Length` bytes of JSON.
fn read_answer(stream: &mut TcpStream) -> Answer {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("response head");
        assert_eq!(
            n,
            1,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).expect("utf8 head");
    let status = head[9..12].parse().expect("status");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("body");
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Answer { status, head, body }
}

fn send(addr: SocketAddr, bytes: &[u8]) -> (TcpStream, Answer) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(bytes).expect("write");
    let answer = read_answer(&mut stream);
    (stream, answer)
}

fn json_content_type(answer: &Answer) -> bool {
    answer
        .head
        .to_ascii_lowercase()
        .contains("content-type: application/json")
}

/// A tenant with a key that may send and manage.
fn key(server: &TestServer) -> String {
    server.cli(&["tenant", "add", "acme"]);
    server
        .cli(&["key", "add", "--tenant", "acme", "--scopes", "all"])
        .trim()
        .to_string()
}

/// Errors the framework used to answer in text/plain are the documented JSON, naming the
/// field: a body over the size limit, a malformed chunked body, an unknown path or method;
/// Mailjet's endpoint answers in Mailjet's shape and names a top-level property of the
/// wrong type.
#[test]
fn every_http_error_is_json_naming_the_field() {
    let server = TestServer::start("");
    let key = key(&server);
    let auth = format!("Authorization: Bearer {key}\r\n");

    let request = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: t\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: 30000000\r\n\r\n{{"
    );
    let (_, answer) = send(server.http, request.as_bytes());
    assert_eq!(answer.status, 413, "{}", answer.head);
    assert!(json_content_type(&answer), "{}", answer.head);
    assert_eq!(answer.body["errors"][0]["field"], "body", "{}", answer.body);

    let request = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: t\r\n{auth}Content-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\nZZ\r\n{{}}\r\n0\r\n\r\n"
    );
    let (_, answer) = send(server.http, request.as_bytes());
    assert_eq!(answer.status, 400, "{}", answer.head);
    assert!(json_content_type(&answer), "{}", answer.head);
    assert_eq!(answer.body["errors"][0]["field"], "body", "{}", answer.body);

    let (_, answer) = send(
        server.http,
        b"GET /no/such/thing HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(answer.status, 404);
    assert!(json_content_type(&answer), "{}", answer.head);
    assert!(
        answer.body["errors"][0]["message"].is_string(),
        "{}",
        answer.body
    );

    let (_, answer) = send(
        server.http,
        b"PUT /v1/messages HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(answer.status, 405);
    assert!(json_content_type(&answer), "{}", answer.head);

    // Mailjet: the key is the Basic pair tsb_<id> / secret.
    let (user, secret) = key[4..].split_once('_').expect("key shape");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("tsb_{user}:{secret}"));
    let body = r#"{"Messages":{"To":[]}}"#;
    let request = format!(
        "POST /v3.1/send HTTP/1.1\r\nHost: t\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (_, answer) = send(server.http, request.as_bytes());
    assert_eq!(answer.status, 400, "{}", answer.head);
    assert_eq!(answer.body["ErrorCode"], "mj-0004", "{}", answer.body);
    assert_eq!(
        answer.body["ErrorRelatedTo"][0], "Messages",
        "{}",
        answer.body
    );
    assert!(
        answer.body["ErrorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("\"Messages\" must be an array")),
        "{}",
        answer.body
    );
    let request = format!(
        "POST /v3.1/send HTTP/1.1\r\nHost: t\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/json\r\nContent-Length: 30000000\r\n\r\n{{"
    );
    let (_, answer) = send(server.http, request.as_bytes());
    assert_eq!(answer.status, 413, "{}", answer.head);
    assert_eq!(answer.body["ErrorRelatedTo"][0], "body", "{}", answer.body);
}

/// A TCP connection from a chosen loopback source address.
fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    crate::harness::tcp_from(source.parse().expect("ip"), addr)
}

/// How long until the server closes `stream` (reads return 0 or fail), reading and
/// dropping whatever it sends; panics after `limit`.
fn time_to_close(stream: &mut TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    stream.set_read_timeout(Some(limit)).expect("read timeout");
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return start.elapsed(),
            Err(e) => panic!("still open after {:?}: {e}", start.elapsed()),
        }
    }
}

const SHORT: &str =
    "[http]\nheader_timeout = \"1s\"\nbody_timeout = \"1s\"\nidle_timeout = \"1500ms\"\n";

/// A connection that sends nothing, half a head (even a byte now and then), or half a
/// body is closed: idle after `idle_timeout`, the head within `header_timeout` of its first
/// byte, the body within `body_timeout` with a 408 naming it. Keep-alive still works, and a
/// kept-alive connection is closed once idle.
#[test]
fn slow_and_silent_connections_are_closed() {
    let server = TestServer::start(SHORT);
    let limit = Duration::from_secs(5);

    let mut silent = TcpStream::connect(server.http).expect("connect");
    let waited = time_to_close(&mut silent, limit);
    assert!(
        waited >= Duration::from_millis(1000),
        "idle closed too early: {waited:?}"
    );

    let mut half_head = TcpStream::connect(server.http).expect("connect");
    half_head
        .write_all(b"POST /v1/messages HTTP/1.1\r\nHost: t\r\n")
        .expect("write");
    let waited = time_to_close(&mut half_head, limit);
    assert!(
        waited <= Duration::from_millis(1500),
        "header timeout: {waited:?}"
    );

    // A byte every 200 ms keeps no deadline from running out.
    let mut drip = TcpStream::connect(server.http).expect("connect");
    let start = Instant::now();
    let mut closed_after = None;
    for byte in b"GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
        if drip.write_all(&[*byte]).is_err() {
            closed_after = Some(start.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let closed_after = closed_after.unwrap_or_else(|| time_to_close(&mut drip, limit));
    assert!(
        closed_after <= Duration::from_secs(3),
        "slow head: {closed_after:?}"
    );

    let mut half_body = TcpStream::connect(server.http).expect("connect");
    half_body
        .write_all(
            b"POST /v1/messages HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer tsb_000000000000_x\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"messages\":",
        )
        .expect("write");
    let started = Instant::now();
    let answer = read_answer(&mut half_body);
    // The key is checked first; an unknown key is refused without waiting for the body.
    assert!(matches!(answer.status, 401 | 408), "{}", answer.head);
    let _ = time_to_close(&mut half_body, limit);
    assert!(started.elapsed() <= Duration::from_secs(3));

    server.cli(&["tenant", "add", "acme"]);
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let mut half_body = TcpStream::connect(server.http).expect("connect");
    half_body
        .write_all(
            format!(
                "POST /v1/messages HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"messages\":",
                key.trim()
            )
            .as_bytes(),
        )
        .expect("write");
    let started = Instant::now();
    let answer = read_answer(&mut half_body);
    assert_eq!(answer.status, 408, "{}", answer.head);
    assert!(json_content_type(&answer), "{}", answer.head);
    assert_eq!(answer.body["errors"][0]["field"], "body", "{}", answer.body);
    let waited = started.elapsed();
    assert!(
        (Duration::from_millis(900)..=Duration::from_secs(3)).contains(&waited),
        "body timeout: {waited:?}"
    );
    let _ = time_to_close(&mut half_body, limit);

    let mut kept = TcpStream::connect(server.http).expect("connect");
    for _ in 0..3 {
        kept.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("write");
        let answer = read_answer(&mut kept);
        assert_eq!(answer.status, 200, "{}", answer.head);
        std::thread::sleep(Duration::from_millis(500));
    }
    let waited = time_to_close(&mut kept, limit);
    assert!(
        waited <= Duration::from_millis(1500),
        "idle keep-alive: {waited:?}"
    );

    let metrics = String::from_utf8(
        crate::harness::http_get(server.http, "/metrics", None)
            .expect("metrics")
            .1,
    )
    .expect("utf8");
    for stage in ["idle", "header", "body"] {
        assert!(
            metrics.contains(&format!("tsubame_http_timeouts_total{{stage=\"{stage}\"}}")),
            "{stage}: {metrics}"
        );
    }
}

/// Connections beyond the cap for one address get a 429 in JSON and are closed; beyond the
/// cap in total, a 503; a place given back is taken again. Meanwhile SMTP accepts mail.
#[test]
fn connection_caps_per_address_and_in_total() {
    let server = TestServer::start("[http]\nconnections_per_ip_max = 5\nconnections_max = 8\n");
    let held: Vec<TcpStream> = (0..5)
        .map(|_| connect_from("127.0.0.77", server.http))
        .collect();
    // Accepted connections are counted once the listener has taken them.
    std::thread::sleep(Duration::from_millis(200));
    let mut refused = connect_from("127.0.0.77", server.http);
    let answer = read_answer(&mut refused);
    assert_eq!(answer.status, 429, "{}", answer.head);
    assert!(json_content_type(&answer), "{}", answer.head);
    assert!(answer.head.contains("Retry-After: 1"), "{}", answer.head);
    assert!(answer.body["errors"][0]["message"].is_string());

    let others: Vec<TcpStream> = (0..3)
        .map(|_| connect_from("127.0.0.78", server.http))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut full = connect_from("127.0.0.79", server.http);
    let answer = read_answer(&mut full);
    assert_eq!(answer.status, 503, "{}", answer.head);
    assert!(json_content_type(&answer), "{}", answer.head);

    let mut smtp = crate::harness::RawClient::connect(server.smtp);
    assert!(smtp.reply().starts_with("220 "), "SMTP is not starved");
    smtp.cmd("QUIT");

    drop(held);
    drop(others);
    std::thread::sleep(Duration::from_millis(300));
    let mut again = connect_from("127.0.0.77", server.http);
    again
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("write");
    assert_eq!(read_answer(&mut again).status, 200);
}
