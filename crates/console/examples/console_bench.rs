//! Console page latency on a large account: seeds one tenant's store with events (1 M by
//! default, spread over 30 days, recorded through the store so the rollups are kept as in
//! production), suppressions (100 k), keys, webhooks and audit entries; starts
//! `tsubame serve` on it; then requests every page as a signed-in owner and as an operator,
//! sequentially, and prints p50 / p99 / max per page (server-side render plus loopback
//! HTTP, measured at the client).
//!
//! cargo build --release -p tsubame
//! cargo run --release -p console --example console_bench -- \
//!     --bin target/release/tsubame [--events 1000000] [--suppressions 100000] \
//!     [--requests 200] [--data /tmp/console-bench]   # reuses a seeded directory

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use store::{
    ConsoleStore, ControlStore, EventKind, EventStore, NewEvent, Role, Scopes, Session, SqliteStore,
};

const DAY_MS: i64 = 86_400_000;
const OWNER_COOKIE: &str = "bench-owner-session-cookie-value-0000000000";
const OPERATOR_COOKIE: &str = "bench-operator-session-cookie-value-00000000";

struct Args {
    bin: PathBuf,
    events: usize,
    suppressions: usize,
    requests: usize,
    data: Option<PathBuf>,
}

fn args() -> Args {
    let mut out = Args {
        bin: PathBuf::from("target/release/tsubame"),
        events: 1_000_000,
        suppressions: 100_000,
        requests: 200,
        data: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--bin" => out.bin = value.into(),
            "--events" => out.events = value.parse().unwrap_or(out.events),
            "--suppressions" => out.suppressions = value.parse().unwrap_or(out.suppressions),
            "--requests" => out.requests = value.parse().unwrap_or(out.requests),
            "--data" => out.data = Some(value.into()),
            other => {
                eprintln!("unknown flag {other}");
                std::process::exit(2);
            }
        }
    }
    out
}

fn now_ms() -> i64 {
    console::auth::sessions::now_ms()
}

/// A mix like a transactional sender's: most accepted and delivered, some deferred and
/// bounced (with categories), a few complaints and unsubscribes, over several providers.
fn event(i: usize, tenant: &str, now: i64, span_ms: i64) -> NewEvent {
    const RECIPIENT_DOMAINS: [&str; 6] = [
        "gmail.com",
        "yahoo.co.jp",
        "docomo.ne.jp",
        "outlook.com",
        "icloud.com",
        "example.net",
    ];
    const CATEGORIES: [&str; 4] = ["invalid_recipient", "mailbox_full", "policy", "other"];
    let message = i / 2;
    let time_ms = now - span_ms + (i as i64 * span_ms / 1_000_000_i64.max(1)) % span_ms;
    let recipient = format!(
        "user{}@{}",
        message % 200_000,
        RECIPIENT_DOMAINS[message % RECIPIENT_DOMAINS.len()]
    );
    let sending_domain = if message % 3 == 0 {
        "news.acme.example"
    } else {
        "acme.example"
    };
    let (kind, detail) = match (i % 2, message % 100) {
        (0, _) => (
            EventKind::Accepted,
            serde_json::json!({"via": "api", "sending_domain": sending_domain}),
        ),
        (_, 0..=79) => (
            EventKind::Delivered,
            serde_json::json!({"sending_domain": sending_domain, "response": "250 2.0.0 OK",
                "queued_ms": 200 + (message % 5000) as i64, "attempt": 1}),
        ),
        (_, 80..=89) => (
            EventKind::Deferred,
            serde_json::json!({"sending_domain": sending_domain,
                "response": "421 4.7.0 try again later", "category": "throttled", "attempt": 1}),
        ),
        (_, 90..=97) => (
            EventKind::Bounced,
            serde_json::json!({"sending_domain": sending_domain,
                "response": "550 5.1.1 no such user",
                "category": CATEGORIES[message % CATEGORIES.len()], "attempt": 1}),
        ),
        (_, 98) => (
            EventKind::Complained,
            serde_json::json!({"sending_domain": sending_domain}),
        ),
        _ => (
            EventKind::Unsubscribed,
            serde_json::json!({"sending_domain": sending_domain}),
        ),
    };
    NewEvent {
        tenant_id: tenant.to_string(),
        time_ms,
        kind,
        message_id: format!("BENCH{message:010}"),
        recipient,
        custom_id: Some(format!("order-{}", message % 50_000)),
        tags: Some(r#"["receipt"]"#.into()),
        detail: Some(detail.to_string()),
    }
}

async fn seed(data: &Path, args: &Args) -> anyhow_free::Result<()> {
    std::fs::create_dir_all(data)?;
    let store = SqliteStore::open(&data.join("control.db")).await?;
    let acme = store.add_tenant("acme").await?;
    store.add_tenant("beta").await?;
    for domain in ["acme.example", "news.acme.example"] {
        let made = tenancy::new_domain(&acme.id, domain.into(), dkim::Algorithm::Ed25519, None)?;
        store.add_domain(made).await?;
    }
    for i in 0..5 {
        store
            .add_key(&acme.id, &format!("key{i}"), Scopes::parse("all")?)
            .await?;
    }
    let hash = console::auth::passwords::hash("bench password 1234")?;
    let owner = store
        .add_login("owner@acme.example", Some(&acme.id), Role::Owner, &hash)
        .await?;
    let operator = store
        .add_login("ops@platform.example", None, Role::Operator, &hash)
        .await?;
    for i in 0..20 {
        let email = format!("person{i}@acme.example");
        store
            .add_login(&email, Some(&acme.id), Role::Viewer, &hash)
            .await?;
    }

    let started = Instant::now();
    let now = now_ms();
    let mut batch = Vec::with_capacity(5000);
    for i in 0..args.events {
        batch.push(event(i, &acme.id, now, 30 * DAY_MS));
        if batch.len() == 5000 {
            store.add_events(&batch).await?;
            batch.clear();
        }
    }
    store.add_events(&batch).await?;
    eprintln!(
        "seeded {} events in {:.1} s",
        args.events,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let entries: Vec<(String, String)> = (0..args.suppressions)
        .map(|i| (format!("gone{i:07}@example.org"), "bounce".to_string()))
        .collect();
    for chunk in entries.chunks(10_000) {
        store.add_suppressions(&acme.id, chunk).await?;
    }
    eprintln!(
        "seeded {} suppressions in {:.1} s",
        args.suppressions,
        started.elapsed().as_secs_f64()
    );
    // Webhooks after the events: their cursors start at the end, so nothing is posted.
    for i in 0..3 {
        store
            .add_webhook(&acme.id, &format!("http://127.0.0.1:9/hook{i}"), &[])
            .await?;
    }
    for i in 0..2000 {
        store
            .audit(
                Some(&acme.id),
                "owner@acme.example",
                "key.create",
                &format!("k{i}"),
                "127.0.0.1",
            )
            .await?;
    }
    for (login, cookie) in [(&owner, OWNER_COOKIE), (&operator, OPERATOR_COOKIE)] {
        store
            .add_session(&Session {
                id_sha256: console::auth::sessions::hash(cookie),
                login_id: login.id.clone(),
                csrf: "bench".into(),
                created_ms: now,
                seen_ms: now,
                pending_second_factor: false,
                address: "127.0.0.1".into(),
            })
            .await?;
    }
    Ok(())
}

/// Tiny error plumbing for an example (no anyhow in this crate).
mod anyhow_free {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
}

fn start(bin: &Path, data: &Path) -> (Child, String) {
    let http = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "data_dir = {data:?}\n[smtp]\nlisten = [\"127.0.0.1:{}\"]\nlisten_tls = []\n\
         hostname = \"mx.bench\"\n[http]\nlisten = \"{http}\"\n[delivery]\ntls = \"disabled\"\n\
         [console]\nsession_idle = \"12h\"\n",
        free_port()
    );
    let path = data.join("bench.toml");
    std::fs::write(&path, config).expect("config");
    let child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tsubame serve");
    (child, format!("http://{http}"))
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

#[tokio::main]
async fn main() -> anyhow_free::Result<()> {
    let args = args();
    let scratch = tempfile::tempdir()?;
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| scratch.path().join("data"));
    if !data.join("control.db").exists() {
        seed(&data, &args).await?;
    }
    let (mut child, base) = start(&args.bin, &data);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/login")).send().await.is_err() {
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("the server did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let owner_pages = [
        "/",
        "/?period=7d",
        "/?period=30d",
        "/?period=30d&domain=news.acme.example",
        "/activity",
        "/activity?field=recipient&q=user123%40gmail.com",
        "/activity?field=custom_id&q=order-4242",
        "/activity?field=tag&q=receipt&period=7d",
        "/activity?field=tag&q=no-such-tag",
        "/activity/BENCH0000012345",
        "/domains",
        "/keys",
        "/suppressions",
        "/suppressions?q=gone00999",
        "/webhooks",
        "/team",
        "/account",
        "/audit",
    ];
    let operator_pages = [
        "/ops",
        "/ops/queues",
        "/ops/messages?id=BENCH0000012345",
        "/ops/tenants",
        "/ops/shaping",
        "/ops/audit",
    ];
    println!("| page | p50 ms | p99 ms | max ms | bytes |\n|---|---:|---:|---:|---:|");
    let mut worst = Duration::ZERO;
    for (cookie, pages) in [
        (OWNER_COOKIE, &owner_pages[..]),
        (OPERATOR_COOKIE, &operator_pages[..]),
    ] {
        for page in pages {
            let mut times = Vec::with_capacity(args.requests);
            let mut bytes = 0;
            for i in 0..args.requests + 5 {
                let started = Instant::now();
                let response = client
                    .get(format!("{base}{page}"))
                    .header("cookie", format!("tsubame_session={cookie}"))
                    .send()
                    .await?;
                let status = response.status();
                let body = response.bytes().await?;
                let took = started.elapsed();
                if !status.is_success() {
                    let _ = child.kill();
                    return Err(format!("{page}: {status}").into());
                }
                bytes = body.len();
                if i >= 5 {
                    times.push(took);
                }
            }
            times.sort();
            let p99 = percentile(&times, 0.99);
            worst = worst.max(p99);
            println!(
                "| `{page}` | {:.1} | {:.1} | {:.1} | {bytes} |",
                percentile(&times, 0.50).as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3,
                times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            );
        }
    }
    println!("worst p99: {:.1} ms", worst.as_secs_f64() * 1e3);
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}
