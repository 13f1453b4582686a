//! Receiving servers as child processes: Python aiosmtpd behind `py/mx_sink.py` (behaviour by
//! recipient local part, JSON-lines record of connections and messages, optional STARTTLS)
//! and Postfix's smtp-sink. Both are killed when their handle drops.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child when dropped, so no sink outlives its test.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on `ip` (bind to port 0, read it, release it).
pub fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Options for [`MxSink::start`].
#[derive(Default, Clone)]
pub struct SinkOptions {
    /// Offer STARTTLS with a fresh self-signed certificate.
    pub tls: bool,
    /// Seconds before answering the final dot.
    pub data_delay: f64,
    /// Refuse every connection with this greeting line instead of speaking SMTP.
    pub greeting: Option<String>,
}

/// A running aiosmtpd sink.
pub struct MxSink {
    pub addrs: Vec<SocketAddr>,
    record: PathBuf,
    _dir: PathBuf,
    _child: KillOnDrop,
}

impl MxSink {
    /// Starts on a port that is free on every one of `ips` (picked here, and picked again when
    /// another test takes it first); returns the sink and the port.
    pub fn start_free(ips: &[&str], dir: &Path, options: SinkOptions) -> (MxSink, u16) {
        for _ in 0..20 {
            let port = free_port(ips[0]);
            if !ips
                .iter()
                .all(|ip| std::net::TcpListener::bind((*ip, port)).is_ok())
            {
                continue;
            }
            let addrs: Vec<SocketAddr> = ips
                .iter()
                .map(|ip| SocketAddr::new(ip.parse().expect("IP address"), port))
                .collect();
            if let Some(sink) = MxSink::try_start(&addrs, dir, options.clone()) {
                return (sink, port);
            }
        }
        panic!("no free port for the sink after 20 tries");
    }

    /// Starts on the given addresses (all served by one process); `dir` holds its files.
    pub fn start(addrs: &[SocketAddr], dir: &Path, options: SinkOptions) -> MxSink {
        MxSink::try_start(addrs, dir, options).expect("mx_sink.py did not start")
    }

    fn try_start(addrs: &[SocketAddr], dir: &Path, options: SinkOptions) -> Option<MxSink> {
        std::fs::create_dir_all(dir).expect("sink dir");
        let record = dir.join(format!("sink-{}.jsonl", addrs[0].port()));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/py/mx_sink.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).arg("--record").arg(&record);
        for addr in addrs {
            cmd.arg("--listen").arg(addr.to_string());
        }
        if options.tls {
            let cert = rcgen::generate_simple_self_signed(vec!["sink.test".to_string()])
                .expect("certificate");
            let cert_path = dir.join("sink-cert.pem");
            let key_path = dir.join("sink-key.pem");
            std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
            std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
            cmd.arg("--tls").arg(&cert_path).arg(&key_path);
        }
        if options.data_delay > 0.0 {
            cmd.arg("--data-delay").arg(options.data_delay.to_string());
        }
        if let Some(greeting) = &options.greeting {
            cmd.arg("--greeting").arg(greeting);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd (scripts/test installs it)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let child = KillOnDrop(child);
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("sink start-up line");
        // Anything but "ready" means it could not listen (the port was taken meanwhile).
        (line.trim() == "ready").then(|| MxSink {
            addrs: addrs.to_vec(),
            record,
            _dir: dir.to_path_buf(),
            _child: child,
        })
    }

    /// Every recorded event so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The recorded messages.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == "message")
            .collect()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.events()
            .iter()
            .filter(|e| e["event"] == "connect")
            .count()
    }

    /// The most connections open at once.
    pub fn max_concurrent(&self) -> u64 {
        self.events()
            .iter()
            .filter_map(|e| e["concurrent"].as_u64())
            .max()
            .unwrap_or(0)
    }

    /// Waits until `count` messages are recorded or the timeout passes; returns them.
    pub fn wait_messages(&self, count: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count || Instant::now() > deadline {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Postfix's smtp-sink on `addr` (Debian package postfix), accepting everything.
pub fn postfix_sink(addr: SocketAddr, extra: &[&str]) -> KillOnDrop {
    let mut args: Vec<String> = Vec::new();
    // SAFETY: geteuid has no preconditions. smtp-sink refuses to run as root without -u.
    if unsafe { libc::geteuid() } == 0 {
        args.extend(["-u".into(), "nobody".into()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend([addr.to_string(), "256".into()]);
    let child = Command::new("/usr/sbin/smtp-sink")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("smtp-sink from Debian's postfix package (scripts/test installs it)");
    let guard = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "smtp-sink did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    guard
}
