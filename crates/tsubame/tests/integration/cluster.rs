//! Cluster mode end to end: tsubame nodes on a three-server JetStream cluster deliver to an
//! aiosmtpd MX. A node holding acknowledged mail it has not delivered (its destination
//! paused) is killed with SIGKILL: a survivor delivers all of it; the killed node comes back
//! and drops what went elsewhere. A drained node hands its queue over and exits.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use testkit::dns::{Rr, TestDns};
use testkit::nats::NatsCluster;
use testkit::sink::{MxSink, SinkOptions};

use crate::crash::client_loop;
use crate::harness::TestServer;

pub(crate) struct Rig {
    _dns: TestDns,
    _rt: tokio::runtime::Runtime,
    pub nats: NatsCluster,
    pub sink: MxSink,
    port: u16,
    dns_addr: std::net::SocketAddr,
}

/// Test timing: a node is dead after 1.5 s of silence.
const QUICK: &str = "heartbeat = \"200ms\"\nfence_after = \"1s\"\ndead_after = \"1500ms\"\n";

fn rig() -> Rig {
    rig_with(SinkOptions::default())
}

pub(crate) fn rig_with(sink_options: SinkOptions) -> Rig {
    let sink_dir = tempfile::tempdir().unwrap().keep();
    let (sink, port) = MxSink::start_free(&["127.0.0.1"], &sink_dir, sink_options);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dns = rt.block_on(TestDns::start(
        &[
            Rr::mx("dest.test", 10, "mx.dest.test"),
            Rr::a("mx.dest.test", "127.0.0.1"),
        ],
        60,
    ));
    Rig {
        dns_addr: dns.addr,
        _dns: dns,
        _rt: rt,
        nats: NatsCluster::start(3),
        sink,
        port,
    }
}

impl Rig {
    fn node(&self, name: &str) -> TestServer {
        self.node_with(name, QUICK)
    }

    /// A node with `extra` keys in its `[cluster]` section.
    pub(crate) fn node_with(&self, name: &str, extra: &str) -> TestServer {
        TestServer::start(&self.node_config(name, extra))
    }

    /// The configuration of node `name` (see [`Rig::node_with`]).
    fn node_config(&self, name: &str, extra: &str) -> String {
        let servers: Vec<String> = self
            .nats
            .urls()
            .split(',')
            .map(|u| format!("\"{u}\""))
            .collect();
        let monitors: Vec<String> = (0..self.nats.len())
            .map(|i| format!("\"http://127.0.0.1:{}\"", self.nats.http_port(i)))
            .collect();
        format!(
            "connections_per_ip_max = 1000\nconnection_rate_per_ip_max = 100000\n\
             [delivery]\ndns_servers = [\"{}\"]\nmx_port = {}\nretry_initial = \"1s\"\n\
             [cluster]\nnode = \"{name}\"\nservers = [{}]\nmonitor = [{}]\nshards = 3\n{extra}",
            self.dns_addr,
            self.port,
            servers.join(", "),
            monitors.join(", ")
        )
    }

    /// Subject → times delivered.
    pub(crate) fn delivered(&self) -> HashMap<String, usize> {
        let mut delivered = HashMap::new();
        for message in self.sink.messages() {
            if let Some(subject) = message["content"].as_str().and_then(subject_of) {
                *delivered.entry(subject).or_default() += 1;
            }
        }
        delivered
    }

    /// Waits until every acknowledged subject reached the MX; returns how long it took.
    pub(crate) fn wait_delivered(&self, acked: &[String], limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let delivered = self.delivered();
            let missing = acked.iter().filter(|s| !delivered.contains_key(*s)).count();
            if missing == 0 {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "{missing} of {} acknowledged messages not delivered after {limit:?}",
                acked.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

pub(crate) fn subject_of(content: &str) -> Option<String> {
    let start = content.find("Subject: crash ")? + "Subject: crash ".len();
    let end = content[start..].find("\r\n")? + start;
    Some(content[start..end].to_string())
}

/// Sends for `how_long` from two clients; returns the acknowledged subjects.
fn send_for(server: &TestServer, how_long: Duration, first_client: usize) -> Vec<String> {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (first_client..first_client + 2)
        .map(|c| {
            let (addr, stop) = (server.smtp, stop.clone());
            std::thread::spawn(move || client_loop(addr, c, stop, "r@dest.test"))
        })
        .collect();
    std::thread::sleep(how_long);
    stop.store(true, Ordering::Relaxed);
    threads
        .into_iter()
        .flat_map(|t| t.join().expect("client"))
        .filter_map(|(_, body)| subject_of(&String::from_utf8_lossy(&body)))
        .collect()
}

fn queued(server: &TestServer) -> u64 {
    server.admin_json("/admin/v1/queue/summary")["messages"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

#[test]
fn a_killed_nodes_acknowledged_mail_is_delivered_by_a_survivor() {
    let rig = rig();
    let mut a = rig.node("a");
    let b = rig.node("b");
    // a keeps what it accepts: its destination is paused.
    a.cli(&["queue", "pause", "--domain", "dest.test"]);
    let acked = send_for(&a, Duration::from_millis(1500), 0);
    assert!(acked.len() > 20, "too little traffic: {}", acked.len());
    assert!(queued(&a) >= acked.len() as u64);
    assert!(rig.delivered().is_empty(), "nothing delivered while paused");
    let nodes = b.cli(&["node", "ls", "--json"]);
    let nodes: serde_json::Value = serde_json::from_str(&nodes).expect("json");
    let names: Vec<&str> = nodes["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["alive"] == true)
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(names, ["a", "b"], "{nodes}");
    assert_eq!(nodes["nodes"][1]["share"], 0.5);

    a.kill9();
    let took = rig.wait_delivered(&acked, Duration::from_secs(30));
    println!(
        "cluster failover: {} acknowledged by a, all delivered by b {:.2}s after a's SIGKILL",
        acked.len(),
        took.as_secs_f64()
    );
    // The takeover's report comes once a's records are deleted too.
    let deadline = Instant::now() + Duration::from_secs(20);
    let nodes = loop {
        let nodes: serde_json::Value =
            serde_json::from_str(&b.cli(&["node", "ls", "--json"])).expect("json");
        if nodes["takeovers"][0].is_object() || Instant::now() > deadline {
            break nodes;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    println!("takeover: {}", nodes["takeovers"][0]);
    assert_eq!(nodes["takeovers"][0]["node"], "a", "{nodes}");
    assert_eq!(
        nodes["takeovers"][0]["imported"].as_u64(),
        Some(acked.len() as u64),
        "{nodes}"
    );
    let duplicated: usize = rig.delivered().values().map(|n| n - 1).sum();
    assert_eq!(duplicated, 0, "a never delivered: no duplicates");

    // a comes back on its disk: everything went to b, so its queue is empty.
    a.spawn(&[]);
    assert_eq!(queued(&a), 0);
    let joined = plain(&a.log_text())
        .lines()
        .filter(|l| l.contains("joined the cluster"))
        .last()
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        joined.contains(&format!("dropped={}", acked.len())),
        "{joined}"
    );

    // b is drained while holding paused mail: a takes it over and delivers; b exits cleanly.
    let mut b = b;
    b.cli(&["queue", "pause", "--domain", "dest.test"]);
    let more = send_for(&b, Duration::from_millis(1000), 10);
    assert!(!more.is_empty());
    let drained = Instant::now();
    b.cli(&["node", "drain"]);
    let status = b.terminate(Duration::from_secs(60));
    assert!(status.success(), "{status}: {}", b.log_text());
    rig.wait_delivered(&more, Duration::from_secs(30));
    println!(
        "cluster drain: {} handed over by b and delivered by a {:.2}s after the drain request",
        more.len(),
        drained.elapsed().as_secs_f64()
    );
    assert!(
        b.log_text().contains("taken over by another node"),
        "{}",
        b.log_text()
    );
}

/// The log without its terminal colours.
pub(crate) fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Two nodes on one PostgreSQL control plane: what one node's command line creates, the
/// other node's API knows; contacts written through one are read through the other; mail
/// sent through the second node with the key made on the first is delivered.
#[test]
fn nodes_share_one_postgresql_control_plane() {
    let rig = rig();
    let pg = testkit::postgres::PgServer::start();
    let shared = format!("{QUICK}[control]\npostgres = \"{}\"\n", pg.url());
    let a = rig.node_with("a", &shared);
    let b = rig.node_with("b", &shared);
    a.cli(&["tenant", "add", "acme"]);
    crate::api::add_domain(&a, "acme", "acme.test");
    let key = a.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    let tenants: serde_json::Value =
        serde_json::from_str(&b.cli(&["tenant", "ls", "--json"])).expect("json");
    assert_eq!(tenants[0]["name"], "acme", "{tenants}");
    assert!(b.log_text().contains("postgresql"), "b runs on PostgreSQL");

    let sent = crate::api::post(
        &b,
        key,
        r#"{"messages":[{"from":"news@acme.test","to":["ann@dest.test"],
            "subject":"crash 1","text":"Sent through b with a key made on a."}]}"#,
    );
    assert_eq!(sent["status"], 200, "{sent}");
    rig.wait_delivered(&["1".to_string()], Duration::from_secs(30));

    let call = |server: &TestServer, method: &str, path: &str, body: serde_json::Value| {
        let url = format!("http://{}{path}", server.http);
        let body = if body.is_null() {
            "-".to_string()
        } else {
            body.to_string()
        };
        crate::harness::python_json("api_client.py", &[&url, key, &body, "{}", method])
    };
    let added = call(
        &b,
        "POST",
        "/v1/contacts",
        serde_json::json!({"contacts": [{"email": "bob@dest.test", "country": "JP"}]}),
    );
    assert_eq!(added["status"], 200, "{added}");
    let read = call(
        &a,
        "GET",
        "/v1/contacts/bob@dest.test",
        serde_json::Value::Null,
    );
    assert_eq!(read["status"], 200, "{read}");
    assert_eq!(read["body"]["country"], "JP", "{read}");
}

/// Webhooks are dispatched by one node of the cluster (every event once, whichever node
/// recorded it), and by another once that node dies.
#[test]
fn webhooks_are_dispatched_once_per_cluster_and_move_when_their_node_dies() {
    use crate::events::{Receiver, call, events};
    let rig = rig();
    let pg = testkit::postgres::PgServer::start();
    let shared = format!(
        "{QUICK}[webhooks]\nallow_networks = [\"127.0.0.0/8\"]\nbackoff_max = \"1s\"\n\
         [control]\npostgres = \"{}\"\n",
        pg.url()
    );
    let mut a = rig.node_with("a", &shared);
    let b = rig.node_with("b", &shared);
    a.cli(&["tenant", "add", "acme"]);
    crate::api::add_domain(&a, "acme", "acme.test");
    let key = a.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    let receiver = Receiver::start(false);
    let hook = call(
        &b,
        "POST",
        "/v1/webhooks",
        key,
        &serde_json::json!({"url": format!("http://127.0.0.1:{}/hook", receiver.port)}).to_string(),
    );
    assert_eq!(hook["status"], 201, "{hook}");
    let secret = hook["body"]["secret"].as_str().expect("secret").to_string();
    let send = |server: &TestServer, first: usize| {
        let messages: Vec<serde_json::Value> = (first..first + 5)
            .map(|n| {
                serde_json::json!({"from": "news@acme.test", "to": ["r@dest.test"],
                    "subject": format!("crash {n}"), "text": "t"})
            })
            .collect();
        let sent = crate::api::post(
            server,
            key,
            &serde_json::json!({ "messages": messages }).to_string(),
        );
        assert_eq!(sent["status"], 200, "{sent}");
    };
    // Every event once, in order, whichever node recorded it and whichever node dispatches.
    let once = |what: &str, count: usize| {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let all = events(&b, key, "type=delivered&limit=1000");
            let got = receiver.verified(&secret);
            let ids: Vec<i64> = got["events"]
                .as_array()
                .expect("events")
                .iter()
                .filter(|e| e["type"] == "delivered")
                .filter_map(|e| e["id"].as_i64())
                .collect();
            if all.len() >= count && ids.len() >= count {
                let mut unique = ids.clone();
                unique.sort_unstable();
                unique.dedup();
                assert_eq!(
                    unique.len(),
                    ids.len(),
                    "{what}: an event posted twice: {ids:?}"
                );
                assert_eq!(got["bad_signatures"], 0, "{got}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {} of {count} delivered events posted ({} recorded)",
                ids.len(),
                all.len()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // a started first: it holds the webhook duty, b waits.
    let on_duty = |server: &TestServer| {
        server
            .log_text()
            .lines()
            .any(|l| l.contains("on duty") && l.contains("webhooks"))
    };
    assert!(on_duty(&a), "{}", a.log_text());
    assert!(!on_duty(&b), "{}", b.log_text());
    send(&a, 0);
    send(&b, 5);
    rig.wait_delivered(
        &(0..10).map(|n| n.to_string()).collect::<Vec<_>>(),
        Duration::from_secs(30),
    );
    once("both nodes' events", 10);
    // a dies: b takes the duty over and posts what was recorded since.
    a.kill9();
    let died = Instant::now();
    send(&b, 10);
    rig.wait_delivered(
        &(10..15).map(|n| n.to_string()).collect::<Vec<_>>(),
        Duration::from_secs(30),
    );
    once("after a's death", 15);
    assert!(on_duty(&b), "{}", b.log_text());
    eprintln!("events after a's death posted within {:?}", died.elapsed());
}

/// The shared PostgreSQL down for a while (`PG_OUTAGE`, 60 s by default; stopped as by a
/// crash): mail keeps being accepted over SMTP and delivered; the API answers with a JSON
/// error instead of hanging or failing silently; once the database is back, the API sends
/// again and the events of the outage are recorded.
#[test]
fn the_control_plane_down_for_a_minute_stops_no_mail() {
    let outage = Duration::from_secs(
        std::env::var("PG_OUTAGE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let rig = rig();
    let pg = testkit::postgres::PgServer::start();
    let shared = format!("{QUICK}[control]\npostgres = \"{}\"\n", pg.url());
    let a = rig.node_with("a", &shared);
    let b = rig.node_with("b", &shared);
    a.cli(&["tenant", "add", "acme"]);
    crate::api::add_domain(&a, "acme", "acme.test");
    let key = a.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim();
    let api_send = |server: &TestServer, n: usize| {
        let body = serde_json::json!({"messages": [{"from": "news@acme.test",
            "to": ["r@dest.test"], "subject": format!("crash {n}"), "text": "t"}]});
        crate::api::post(server, key, &body.to_string())
    };
    // A message accepted before the outage and delivered during it: its delivery event
    // waits for the database.
    b.cli(&["queue", "pause", "--domain", "dest.test"]);
    assert_eq!(api_send(&b, 900_000)["status"], 200);

    pg.stop();
    let stopped = Instant::now();
    b.cli(&["queue", "resume", "--domain", "dest.test"]);
    rig.wait_delivered(&["900000".to_string()], Duration::from_secs(30));
    // SMTP relaying goes on through both nodes for the whole outage.
    let mut acked = Vec::new();
    let mut api_answers = Vec::new();
    let mut round = 0;
    while stopped.elapsed() < outage {
        for (i, node) in [&a, &b].into_iter().enumerate() {
            acked.extend(send_for(
                node,
                Duration::from_millis(300),
                10 * round + 2 * i,
            ));
        }
        // Bursts, not a flood: the suite runs other tests beside this one.
        std::thread::sleep(Duration::from_secs(2));
        let answer = api_send(&a, 900_001 + round);
        api_answers.push(answer["status"].as_u64().unwrap_or(0));
        assert!(
            answer["body"].is_object(),
            "the API answers JSON while the database is down: {answer}"
        );
        round += 1;
    }
    assert!(acked.len() > 20, "too little traffic: {}", acked.len());
    assert!(
        api_answers.iter().all(|s| *s == 200 || *s >= 500),
        "{api_answers:?}"
    );
    let took = rig.wait_delivered(&acked, Duration::from_secs(60));
    eprintln!(
        "outage {outage:?}: {} messages acknowledged over SMTP, all delivered ({took:?} after); API answers {api_answers:?}",
        acked.len()
    );

    pg.restart();
    let back = Instant::now();
    loop {
        let answer = api_send(&b, 999_999);
        if answer["status"] == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "the API never recovered: {answer}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("API sending again {:?} after the database", back.elapsed());
    rig.wait_delivered(&["999999".to_string()], Duration::from_secs(30));
    // Both deliveries have their event: the one made during the outage was kept.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let delivered = crate::events::events(&b, key, "type=delivered&limit=100");
        if delivered.len() >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the delivery during the outage lost its event: {delivered:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// One node's disk fills up: it refuses new mail with 452 (clients go to another node), the
/// other node accepts, nothing acknowledged is lost or delivered twice, and the full node
/// accepts again once space returns.
#[test]
fn one_nodes_full_disk_refuses_with_452_and_loses_nothing() {
    use std::process::Command;
    let rig = rig();
    let dir = tempfile::tempdir().expect("tempdir");
    let mount = dir.path().join("mnt");
    std::fs::create_dir(&mount).expect("mkdir");
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&mount)
        .status()
        .expect("mount");
    assert!(status.success(), "mounting a tmpfs needs root, as CI has");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.clone());
    let mut a = TestServer::configure(
        dir.path(),
        &mount.join("data"),
        &rig.node_config(
            "a",
            &format!("{QUICK}[spool]\nsegment_bytes_max = 262144\n"),
        ),
    );
    a.spawn(&[]);
    let b = rig.node_with("b", QUICK);
    // Destination paused: what the nodes accept stays on their disks.
    a.cli(&["queue", "pause", "--domain", "dest.test"]);
    let used = mount_used(&mount);
    let ballast = mount.join("ballast");
    std::fs::write(&ballast, vec![0u8; (8 << 20) - used - (1 << 20)]).expect("ballast");

    let send = |server: &TestServer, n: usize| -> String {
        let mut client = crate::harness::RawClient::connect(server.smtp);
        client.start_data("a@example.org", "r@dest.test");
        let mut data = format!("Subject: crash {n}\r\n\r\n").into_bytes();
        for line in vec![b'z'; 48 << 10].chunks(76) {
            data.extend_from_slice(line);
            data.extend_from_slice(b"\r\n");
        }
        data.extend_from_slice(b".\r\n");
        client.send(&data);
        let reply = client.reply();
        client.cmd("QUIT");
        reply
    };
    let mut acked = Vec::new();
    let mut refused = None;
    for n in 0..200 {
        let reply = send(&a, n);
        if reply.starts_with("250 ") {
            acked.push(n.to_string());
        } else {
            refused = Some((n, reply));
            break;
        }
    }
    let (refused_n, reply) = refused.expect("a's disk never filled");
    assert!(reply.starts_with("452 4.3.1"), "{reply}");
    assert!(!acked.is_empty());
    // The client goes elsewhere: b takes the message a refused, and more.
    for n in [refused_n, 1000, 1001] {
        let reply = send(&b, n);
        assert!(reply.starts_with("250 "), "{reply}");
        acked.push(n.to_string());
    }
    // Space returns: a accepts again.
    std::fs::remove_file(&ballast).expect("free space");
    std::thread::sleep(Duration::from_millis(200));
    let reply = send(&a, 2000);
    assert!(reply.starts_with("250 "), "{reply}");
    acked.push("2000".into());
    a.cli(&["queue", "resume", "--domain", "dest.test"]);
    rig.wait_delivered(&acked, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    let delivered = rig.delivered();
    let twice: Vec<_> = delivered.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    let unexpected: Vec<_> = delivered.keys().filter(|s| !acked.contains(s)).collect();
    assert!(
        unexpected.is_empty(),
        "delivered though refused: {unexpected:?}"
    );
    eprintln!(
        "a acknowledged {} before its disk filled; all {} delivered once",
        acked.len() - 4,
        acked.len()
    );
}

fn mount_used(mount: &std::path::Path) -> usize {
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=used"])
        .arg(mount)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// Drops every packet node `a` (running as the user `nobody`) sends to the spool servers,
/// as a partition would (nftables, output hook on loopback); gone with the table on drop.
struct Partition;

impl Partition {
    fn cut(ports: &[u16]) -> Partition {
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        let rules = format!(
            "table inet tsubame_partition {{\n  chain output {{\n    type filter hook output priority 0;\n    \
             meta skuid 65534 tcp dport {{ {} }} drop\n  }}\n}}\n",
            ports.join(", ")
        );
        let mut nft = std::process::Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("nft (Debian package nftables)");
        use std::io::Write;
        nft.stdin
            .take()
            .expect("stdin")
            .write_all(rules.as_bytes())
            .expect("rules");
        assert!(nft.wait().expect("nft").success(), "nft refused: {rules}");
        Partition
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "inet", "tsubame_partition"])
            .status();
    }
}

/// A node cut off from the spool servers by a network partition (its packets dropped, not
/// refused): it stops delivering (its destination resumed meanwhile delivers nothing), a
/// survivor takes its acknowledged queue over and delivers it; when the partition heals the
/// node finds its work taken, exits, and rejoins dropping what went elsewhere. Every
/// message delivered once.
#[test]
fn a_partitioned_node_fences_itself_and_its_queue_is_delivered_once_elsewhere() {
    let rig = rig();
    let dir = tempfile::tempdir().expect("tempdir");
    let status = std::process::Command::new("chown")
        .args(["65534:65534"])
        .arg(dir.path())
        .status()
        .expect("chown");
    assert!(status.success());
    let as_nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let mut a = TestServer::configure(
        dir.path(),
        &dir.path().join("data"),
        &rig.node_config("a", QUICK),
    );
    a.spawn(&as_nobody);
    let b = rig.node_with("b", QUICK);
    a.cli(&["queue", "pause", "--domain", "dest.test"]);
    let acked = send_for(&a, Duration::from_millis(1500), 0);
    assert!(acked.len() > 20, "too little traffic: {}", acked.len());
    assert!(rig.delivered().is_empty(), "nothing delivered while paused");

    let ports: Vec<u16> = rig
        .nats
        .urls()
        .split(',')
        .filter_map(|u| u.rsplit(':').next()?.parse().ok())
        .collect();
    let partition = Partition::cut(&ports);
    let cut = Instant::now();
    // a notices within `fence_after` that its heartbeats no longer land: it fences itself
    // and fails its health check.
    while crate::harness::http_get(a.http, "/health", None).is_ok_and(|(s, _)| s == 200) {
        assert!(
            cut.elapsed() < Duration::from_secs(5),
            "a never fenced itself"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let fenced = cut.elapsed();
    // Fenced, a delivers nothing, even with its destination open again.
    a.cli(&["queue", "resume", "--domain", "dest.test"]);
    rig.wait_delivered(&acked, Duration::from_secs(30));
    eprintln!(
        "partition: a fenced {:.2}s after the cut; its {} messages delivered by b {:.2}s after the cut",
        fenced.as_secs_f64(),
        acked.len(),
        cut.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(2));
    drop(partition);
    // Healed: a's heartbeat is refused, it exits, and its next start drops what b took.
    let exit = a.wait_exit(Duration::from_secs(20));
    assert!(
        exit.is_some_and(|s| !s.success()),
        "a cut-off node whose queue was taken over must exit: {exit:?}\n{}",
        a.log_text()
    );
    a.spawn(&as_nobody);
    std::thread::sleep(Duration::from_secs(2));
    let delivered = rig.delivered();
    let twice: Vec<_> = delivered.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    assert_eq!(delivered.len(), acked.len());
    assert_eq!(queued(&a), 0, "a dropped what b delivered");
    drop(b);
}
