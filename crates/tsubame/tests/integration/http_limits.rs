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
