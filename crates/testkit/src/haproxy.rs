//! HAProxy (Debian's package, started by `scripts/test`'s install) balancing SMTP over TCP
//! to tsubame nodes, each checked on its HTTP `/health` every 200 ms, as docs/cluster.md
//! deploys it.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::sink::{KillOnDrop, free_port};

/// One backend: its SMTP address and its HTTP port (for `/health`).
#[derive(Debug, Clone, Copy)]
pub struct Backend {
    pub smtp: SocketAddr,
    pub http_port: u16,
}

pub struct Haproxy {
    pub addr: SocketAddr,
    _child: KillOnDrop,
    dir: PathBuf,
}

impl Haproxy {
    /// Starts HAProxy in the foreground on a free loopback port.
    pub fn start(backends: &[Backend]) -> Haproxy {
        Haproxy::start_with(backends, false)
    }

    /// Like [`Haproxy::start`]; `send_proxy`: every connection to a backend starts with a
    /// PROXY protocol v2 header naming the client.
    pub fn start_with(backends: &[Backend], send_proxy: bool) -> Haproxy {
        let dir = std::env::temp_dir().join(format!(
            "tsubame-haproxy-{}-{}",
            std::process::id(),
            free_port("127.0.0.1")
        ));
        std::fs::create_dir_all(&dir).expect("haproxy dir");
        let port = free_port("127.0.0.1");
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, b)| {
                format!(
                    "    server n{i} {} check port {} inter 200ms fall 2 rise 2{}\n",
                    b.smtp,
                    b.http_port,
                    if send_proxy { " send-proxy-v2" } else { "" }
                )
            })
            .collect();
        let config = format!(
            "global\n    maxconn 2000\n\
             defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n\
             frontend smtp\n    bind 127.0.0.1:{port}\n    default_backend nodes\n\
             backend nodes\n    balance roundrobin\n    option httpchk GET /health\n\
             \x20   default-server on-marked-down shutdown-sessions\n{servers}"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).expect("haproxy config");
        let child = Command::new(binary())
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("haproxy: {e} (Debian package haproxy; scripts/test installs it)")
            });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Haproxy {
            addr,
            _child: KillOnDrop(child),
            dir,
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `haproxy` from the PATH or Debian's /usr/sbin.
fn binary() -> String {
    if std::path::Path::new("/usr/sbin/haproxy").exists() {
        "/usr/sbin/haproxy".into()
    } else {
        "haproxy".into()
    }
}
