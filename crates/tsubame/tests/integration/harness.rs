//! Runs the real `tsubame` binary for a test: its own data directory, free ports, a config
//! file, and helpers to stop it politely (SIGTERM) or not (SIGKILL).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_tsubame");

/// Runs `tests/py/SCRIPT` with `args` and parses the one JSON object it prints.
pub fn python_json(script: &str, args: &[&str]) -> serde_json::Value {
    python_json_with(Path::new("python3"), script, args)
}

/// [`python_json`] with another interpreter (a virtual environment's).
pub fn python_json_with(python: &Path, script: &str, args: &[&str]) -> serde_json::Value {
    let path = format!("{}/tests/py/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(python)
        .arg(path)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("json from python")
}

/// A free loopback port (bound and released; good enough for tests that start at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub struct TestServer {
    pub smtp: SocketAddr,
    pub smtps: SocketAddr,
    pub http: SocketAddr,
    pub data_dir: PathBuf,
    pub config_path: PathBuf,
    /// The test's own TOML, kept to rewrite the config when ports change.
    extra: String,
    child: Option<Child>,
    /// Where the server's stderr (its log) goes, appended across restarts: a file, so that
    /// nothing the server writes can be lost or block it.
    pub log_path: PathBuf,
    /// Environment variables for the server process.
    env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Runs the CLI against this server's data directory; panics unless it succeeds.
    pub fn cli(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.try_cli(args);
        assert!(ok, "tsubame {args:?}: {err}");
        out
    }

    /// Runs the CLI against this server's data directory: (succeeded, stdout, stderr).
    pub fn try_cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .output()
            .expect("cli");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs the CLI with `input` on stdin; panics unless it succeeds.
    pub fn cli_with_input(&self, args: &[&str], input: &str) -> String {
        use std::io::Write;
        let mut child = Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("cli");
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).expect("stdin");
        }
        let out = child.wait_with_output().expect("cli");
        assert!(
            out.status.success(),
            "tsubame {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    }

    /// Starts a server with default settings plus `extra` TOML (merged into [smtp] etc. by the
    /// caller writing whole sections).
    pub fn start(extra: &str) -> TestServer {
        TestServer::start_with_env(extra, &[])
    }

    /// Like [`TestServer::start`] with environment variables for the server process.
    pub fn start_with_env(extra: &str, env: &[(&str, &str)]) -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let mut server = TestServer::configure(tmp.path(), &data_dir, extra);
        server._tmp = Some(tmp);
        server.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        server.spawn(&[]);
        server
    }

    /// Like [`TestServer::start`] but with the data directory at `data_dir` (e.g. on a tmpfs).
    pub fn configure(dir: &Path, data_dir: &Path, extra: &str) -> TestServer {
        let mut server = TestServer {
            smtp: "127.0.0.1:1".parse().expect("addr"),
            smtps: "127.0.0.1:1".parse().expect("addr"),
            http: "127.0.0.1:1".parse().expect("addr"),
            data_dir: data_dir.to_path_buf(),
            config_path: dir.join("tsubame.toml"),
            extra: extra.to_string(),
            child: None,
            log_path: dir.join("server.log"),
            env: Vec::new(),
            _tmp: None,
        };
        server.pick_ports();
        server
    }

    /// Chooses free ports and writes the config file with them.
    fn pick_ports(&mut self) {
        let port = || -> SocketAddr { format!("127.0.0.1:{}", free_port()).parse().expect("addr") };
        (self.smtp, self.smtps, self.http) = (port(), port(), port());
        let (smtp_extra, mut rest) = split_smtp_section(&self.extra);
        // Keys of an [http] section go under the [http] table written below.
        let mut http_extra = String::new();
        if let Some(start) = rest.find("[http]\n") {
            let body = start + "[http]\n".len();
            let end = rest[body..]
                .find("\n[")
                .map_or(rest.len(), |e| body + e + 1);
            http_extra = rest[body..end].to_string();
            rest.replace_range(start..end, "");
        }
        // Tests about ingress keep what they send; delivery tests configure [delivery].
        if !rest.contains("[delivery]") {
            rest.push_str("\n[delivery]\nenabled = false\n");
        }
        let config = format!(
            "data_dir = {:?}\n[smtp]\nlisten = [\"{}\"]\nlisten_tls = [\"{}\"]\nhostname = \"mx.test\"\n\
             shutdown_grace = \"5s\"\n{smtp_extra}\n[http]\nlisten = \"{}\"\n{http_extra}\n{rest}\n",
            self.data_dir.display().to_string(),
            self.smtp,
            self.smtps,
            self.http
        );
        std::fs::write(&self.config_path, config).expect("write config");
    }

    /// Starts (or restarts) the process and waits until /health answers. Free ports are
    /// picked by binding and releasing them, so another test can take one in between: then
    /// new ports are picked and the start repeated.
    pub fn spawn(&mut self, wrapper: &[&str]) {
        for _ in 0..5 {
            match self.spawn_once(wrapper) {
                Ok(()) => return,
                Err(log) if log.contains("Address already in use") => {
                    let _ = std::fs::write(&self.log_path, "");
                    self.pick_ports();
                }
                Err(log) => panic!("tsubame did not start; log:\n{log}"),
            }
        }
        panic!("tsubame found no free ports in 5 tries");
    }

    fn spawn_once(&mut self, wrapper: &[&str]) -> Result<(), String> {
        let mut command = if wrapper.is_empty() {
            Command::new(BIN)
        } else {
            let mut c = Command::new(wrapper[0]);
            c.args(&wrapper[1..]).arg(BIN);
            c
        };
        // Its own process group, so that SIGKILL reaches the server even under a wrapper
        // (strace): killing only the tracer would leave the traced server running.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command
            .args(["serve", "--config"])
            .arg(&self.config_path)
            .env("TSUBAME_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log_path)
                    .expect("server log"),
            );
        let child = command.spawn().expect("spawn tsubame");
        self.child = Some(child);
        self.wait_healthy()
    }

    fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                // The log reader thread may still be copying the last lines.
                std::thread::sleep(Duration::from_millis(100));
                self.child = None;
                return Err(format!("exited early with {status}: {}", self.log_text()));
            }
            if TcpStream::connect(self.smtp).is_ok() && http_get(self.http, "/health", None).is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Where it is stuck, when gdb is at hand.
        let stacks = self
            .child
            .as_ref()
            .and_then(|c| {
                Command::new("gdb")
                    .args([
                        "-batch",
                        "-p",
                        &c.id().to_string(),
                        "-ex",
                        "thread apply all bt 12",
                    ])
                    .output()
                    .ok()
            })
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let fds = self
            .child
            .as_ref()
            .and_then(|c| {
                Command::new("sh")
                    .arg("-c")
                    .arg(format!(
                        "ls -l /proc/{0}/fd; cat /proc/{0}/status | head -12; timeout 3 strace -f -tt -p {0} 2>&1 | head -40",
                        c.id()
                    ))
                    .output()
                    .ok()
            })
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let stacks = format!("{stacks}\n{fds}");
        panic!(
            "tsubame did not become healthy; log:\n{}\nstacks:\n{stacks}",
            self.log_text()
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL to the whole process group, then reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling the process group we created for our child.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
            // A traced server may outlive the tracer by a moment; wait for its lock to go.
            let lock = self.data_dir.join("lock");
            for _ in 0..100 {
                if !locked(&lock) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Sends `signal` to the server process (SIGSTOP freezes it, SIGCONT thaws it).
    pub fn signal(&self, signal: i32) {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.pid() as i32, signal) };
    }

    /// Waits up to `limit` for the server to exit by itself; its status, or None.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait up to `limit` for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("tsubame did not exit within {limit:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.token"))
            .expect("token")
            .trim()
            .to_string()
    }

    /// GET an admin path with the token; returns (status, body).
    pub fn admin(&self, path: &str) -> (u16, Vec<u8>) {
        http_get(self.http, path, Some(&self.token())).expect("admin request")
    }

    pub fn admin_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.admin(path);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).expect("json")
    }

    /// Stored content of a queued message.
    pub fn stored_content(&self, id: &str) -> Option<Vec<u8>> {
        let (status, body) = self.admin(&format!("/admin/v1/queue/messages/{id}/content"));
        (status == 200).then_some(body)
    }

    /// Every queued message id, paging through the admin API.
    pub fn queued_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut path = "/admin/v1/queue/messages?limit=1000".to_string();
            if let Some(a) = &after {
                path.push_str(&format!("&after={a}"));
            }
            let page = self.admin_json(&path);
            for m in page["messages"].as_array().expect("messages") {
                ids.push(m["id"].as_str().expect("id").to_string());
            }
            match page["next"].as_str() {
                Some(next) => after = Some(next.to_string()),
                None => return ids,
            }
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// True while some process holds the data directory's flock.
fn locked(path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    // SAFETY: flock on a descriptor we own.
    let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    !taken
}

/// True if the peer has sent something (or closed) that we have not read yet.
pub fn readable(stream: &TcpStream) -> bool {
    let mut peek = [0u8; 1];
    stream.set_nonblocking(true).expect("nonblocking");
    let ready =
        !matches!(stream.peek(&mut peek), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock);
    stream.set_nonblocking(false).expect("blocking");
    ready
}

fn split_smtp_section(extra: &str) -> (String, String) {
    // Lines before the first [section] header belong to [smtp].
    let first_section = if extra.starts_with('[') {
        Some(0)
    } else {
        extra.find("\n[")
    };
    match first_section {
        Some(pos) => (extra[..pos].to_string(), extra[pos..].to_string()),
        None => (extra.to_string(), String::new()),
    }
}

/// A tiny HTTP GET over loopback; returns (status, body).
pub fn http_get(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let mut body = response[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok((status, body))
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..end]).unwrap_or("0").trim(), 16)
                .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 2 + size + 2..];
    }
    out
}

/// A raw SMTP line client for tests that need exact bytes on the wire.
pub struct RawClient {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        RawClient { stream, reader }
    }

    /// Connects from a chosen loopback source address (127.x), so that per-IP limits can be
    /// tested with several "clients" on one machine.
    pub fn connect_from(source: std::net::IpAddr, addr: SocketAddr) -> RawClient {
        let stream = tcp_from(source, addr);
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        RawClient { stream, reader }
    }

    /// Reads one complete (possibly multi-line) reply; "" on EOF.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return all,
                Ok(_) => {}
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads the greeting, says EHLO, and pipelines MAIL, RCPT and DATA up to the 354, so the
    /// caller can send content. Panics if any step is refused.
    pub fn start_data(&mut self, sender: &str, recipient: &str) {
        assert!(self.reply().starts_with("220 "));
        assert!(self.cmd("EHLO test.client").starts_with("250"));
        self.send(format!("MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n").as_bytes());
        for expected in ["250", "250", "354"] {
            let reply = self.reply();
            assert!(
                reply.starts_with(expected),
                "expected {expected}, got {reply}"
            );
        }
    }

    /// Sends a command and returns its reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }
}

/// A blocking TCP connection from a chosen loopback source address (127.x), so that
/// per-address limits can be tested with several "clients" on one machine.
pub fn tcp_from(source: std::net::IpAddr, addr: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(source, 0))
            .expect("bind source");
        socket.connect(addr).await.expect("connect")
    });
    let stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream
}
