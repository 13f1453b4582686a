//! A minimal HTTP/1.1 client for the CLI's calls to the local admin API. The admin API is
//! plain HTTP on loopback by default; a full client library would add much for nothing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, bail};

/// GETs `path` from `base` (`http://host:port`) with the bearer token; returns the body.
pub fn get(base: &str, token: &str, path: &str) -> anyhow::Result<Vec<u8>> {
    request(base, token, "GET", path, None)
}

/// POSTs a JSON body to `path`; returns the response body.
pub fn post(
    base: &str,
    token: &str,
    path: &str,
    body: &serde_json::Value,
) -> anyhow::Result<Vec<u8>> {
    request(base, token, "POST", path, Some(body))
}

fn request(
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    json: Option<&serde_json::Value>,
) -> anyhow::Result<Vec<u8>> {
    let authority = base
        .strip_prefix("http://")
        .context("admin URL must start with http://")?
        .trim_end_matches('/');
    let mut stream =
        TcpStream::connect(authority).with_context(|| format!("connecting to {authority}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let payload = json.map(|v| v.to_string()).unwrap_or_default();
    let content = if json.is_some() {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            payload.len()
        )
    } else {
        String::new()
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\n{content}Connection: close\r\n\r\n{payload}"
    );
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("malformed HTTP response")?;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let mut body = response[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")?;
    if head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    }) {
        body = dechunk(&body)?;
    }
    if !(200..300).contains(&status) {
        let detail: Option<String> = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string));
        bail!(
            "admin API answered {status}: {}",
            detail.unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned())
        );
    }
    Ok(body)
}

fn dechunk(mut body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunk")?;
        let size_text = std::str::from_utf8(&body[..line_end])?
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        let size = usize::from_str_radix(size_text, 16).context("bad chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(body.get(..size).context("short chunk")?);
        body = body.get(size + 2..).context("short chunk")?;
    }
}
