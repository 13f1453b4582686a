//! Crash test: concurrent clients send numbered messages while the server is killed with
//! SIGKILL at random moments and restarted. Afterwards every message that got a 250 must be
//! in the spool byte for byte.
//!
//! Counted: acknowledged, lost (acknowledged but missing or changed: must be 0), duplicated
//! (one body under two ids: must be 0, since clients never resend), and unexpected (in the
//! spool without an acknowledgement: the server was killed between fsync and reply, which
//! is allowed; the sender would retry).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::TestServer;

const CLIENTS: usize = 8;
const KILLS: usize = 5;

pub(crate) fn body(client: usize, n: usize) -> Vec<u8> {
    // Lines of 64 characters: RFC 5321 §4.5.3.1.6 limits them to 998, and real receivers
    // (aiosmtpd in the delivery crash test) refuse longer ones.
    let filler = "0123456789abcdef"
        .repeat(40 + (client * 7 + n) % 60)
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n");
    format!("Subject: crash {client}/{n}\r\nMessage-ID: <c{client}n{n}@crash.test>\r\n\r\n{filler}\r\nend {client}/{n}\r\n")
        .into_bytes()
}

/// Sends messages until `stop`; returns (queue id, body) for every 250 received.
pub(crate) fn client_loop(
    addr: SocketAddr,
    client: usize,
    stop: Arc<AtomicBool>,
    rcpt: &str,
) -> Vec<(String, Vec<u8>)> {
    client_loop_timed(addr, client, stop, rcpt)
        .into_iter()
        .map(|(id, body, _)| (id, body))
        .collect()
}

/// [`client_loop`] with the moment each 250 arrived.
pub(crate) fn client_loop_timed(
    addr: SocketAddr,
    client: usize,
    stop: Arc<AtomicBool>,
    rcpt: &str,
) -> Vec<(String, Vec<u8>, std::time::Instant)> {
    let mut acked = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok(stream) = TcpStream::connect(addr) else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let Ok(clone) = stream.try_clone() else {
            continue;
        };
        let mut reader = BufReader::new(clone);
        let mut writer = stream;
        let mut line = String::new();
        let mut reply = |reader: &mut BufReader<TcpStream>| -> Option<String> {
            loop {
                line.clear();
                if reader.read_line(&mut line).ok()? == 0 {
                    return None;
                }
                if line.as_bytes().get(3) != Some(&b'-') {
                    return Some(line.clone());
                }
            }
        };
        if reply(&mut reader).is_none()
            || writer.write_all(b"EHLO crash\r\n").is_err()
            || reply(&mut reader).is_none()
        {
            continue;
        }
        while !stop.load(Ordering::Relaxed) {
            let content = body(client, n);
            n += 1;
            let mut wire =
                format!("MAIL FROM:<c{client}@crash.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n")
                    .into_bytes();
            if writer.write_all(&wire).is_err() {
                break;
            }
            let ok = (0..3).all(|_| reply(&mut reader).is_some());
            if !ok {
                break;
            }
            wire = content.clone();
            wire.extend_from_slice(b".\r\n");
            if writer.write_all(&wire).is_err() {
                break;
            }
            match reply(&mut reader) {
                Some(r) if r.starts_with("250 ") => {
                    let id = r.trim().rsplit(' ').next().unwrap_or("").to_string();
                    acked.push((id, content, std::time::Instant::now()));
                }
                _ => break,
            }
        }
    }
    acked
}

/// How [`send_while_killing`] runs.
pub(crate) struct Kills {
    pub clients: usize,
    pub kills: usize,
    pub rcpt: &'static str,
    /// Each kill comes `base + random % spread` ms after the previous restart.
    pub gap_ms: (u64, u64),
    /// Traffic continues this long after the last restart.
    pub settle_ms: u64,
    pub seed: u64,
}

/// Runs `clients` senders against the server while it is SIGKILLed and restarted `kills`
/// times at random moments; returns every (queue id, body) that got a 250.
pub(crate) fn send_while_killing(server: &mut TestServer, plan: Kills) -> Vec<(String, Vec<u8>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..plan.clients)
        .map(|c| {
            let (addr, stop, acked) = (server.smtp, stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let mine = client_loop(addr, c, stop, plan.rcpt);
                acked.lock().expect("acked").extend(mine);
            })
        })
        .collect();
    let mut seed = std::process::id() as u64 ^ plan.seed;
    for _ in 0..plan.kills {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(plan.gap_ms.0 + seed % plan.gap_ms.1));
        server.kill9();
        std::thread::sleep(Duration::from_millis(50));
        server.spawn(&[]);
    }
    std::thread::sleep(Duration::from_millis(plan.settle_ms));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("client thread");
    }
    acked.lock().expect("acked").clone()
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_message() {
    let mut server =
        TestServer::start("connections_per_ip_max = 1000\nconnection_rate_per_ip_max = 100000");
    let acked = send_while_killing(
        &mut server,
        Kills {
            clients: CLIENTS,
            kills: KILLS,
            rcpt: "r@example.com",
            gap_ms: (300, 900),
            settle_ms: 500,
            seed: 0x9e37_79b9_7f4a_7c15,
        },
    );
    server.kill9();
    server.spawn(&[]);

    let queued = server.queued_ids();
    let mut by_body: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut lost = 0;
    for (id, content) in &acked {
        match server.stored_content(id) {
            Some(stored) if stored.ends_with(content) => {}
            _ => lost += 1,
        }
    }
    for id in &queued {
        let stored = server.stored_content(id).expect("listed message readable");
        // Strip our Received header (4 folded lines) to recover what the client sent.
        let start = stored
            .windows(9)
            .position(|w| w == b"Subject: ")
            .expect("subject");
        *by_body.entry(stored[start..].to_vec()).or_default() += 1;
    }
    let duplicated = by_body.values().filter(|&&c| c > 1).count();
    let unexpected = queued.len().saturating_sub(acked.len() + duplicated);
    println!(
        "crash test: kills={KILLS} clients={CLIENTS} acknowledged={} queued={} lost={lost} duplicated={duplicated} unexpected={unexpected}",
        acked.len(),
        queued.len()
    );
    assert!(
        acked.len() > 100,
        "too little traffic to mean anything: {}",
        acked.len()
    );
    assert_eq!(lost, 0, "acknowledged messages lost");
    assert_eq!(duplicated, 0, "a message was stored twice");
}
