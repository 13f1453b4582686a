//! A campaign end to end against sinks that behave like mailbox providers: 100,000 contacts
//! at gmail.com, yahoo.co.jp and docomo.ne.jp, whose MX records (a real DNS server on
//! loopback) point at three `tsubame sink`s on 127.0.0.11-13. The sinks defer a share of
//! recipients or messages (451) and refuse the hard bounces (`permfail+` addresses, 550
//! 5.1.1), so the provider shaping, the retries and the bounce handling all take part.
//!
//! Checked: every deliverable recipient arrives exactly once (the sinks' captures, one
//! Message-ID each) and nobody else does; every hard bounce is on the suppression list;
//! the report's delivered, bounced and deferred counts equal the sinks' own counts, in
//! total and per provider; no provider got more connections than its shaping allows and
//! Docomo's message rate held; opens and clicks made here appear in the report.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::dns::{Rr, TestDns};

use crate::api::add_domain;
use crate::campaigns::{call, ok, sent_campaign};
use crate::harness::{TestServer, python_json};
use crate::sink::SinkProcess;

const CONTACTS: usize = 100_000;
/// One contact in 101 is a hard bounce (spread over the providers' shares of 100).
const BOUNCE_EVERY: usize = 101;
/// Docomo's message rate in this test's shaping (messages per second).
const DOCOMO_RATE: f64 = 200.0;
const PERSON: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

struct Provider {
    name: &'static str,
    domain: &'static str,
    mx: &'static str,
    ip: &'static str,
    /// Out of every 100 contacts.
    share: usize,
    /// The sink's behaviour.
    args: &'static [&'static str],
    /// Connections its shaping allows at once.
    connections_max: u64,
}

const PROVIDERS: [Provider; 3] = [
    Provider {
        name: "gmail",
        domain: "gmail.com",
        mx: "gmail-smtp-in.l.google.com",
        ip: "127.0.0.11",
        share: 55,
        args: &["--rcpt-tempfail", "0.03", "--seed", "1"],
        connections_max: 20,
    },
    Provider {
        name: "yahoo",
        domain: "yahoo.co.jp",
        mx: "mx1.mail.yahoodns.net",
        ip: "127.0.0.12",
        share: 40,
        args: &["--data-tempfail", "0.03", "--seed", "2"],
        connections_max: 10,
    },
    Provider {
        name: "docomo",
        domain: "docomo.ne.jp",
        mx: "mfsmax.docomo.ne.jp",
        ip: "127.0.0.13",
        share: 5,
        args: &["--rcpt-tempfail", "0.05", "--seed", "3"],
        connections_max: 5,
    },
];

fn provider_of(i: usize) -> &'static Provider {
    let slot = i % 100;
    if slot < PROVIDERS[0].share {
        &PROVIDERS[0]
    } else if slot < PROVIDERS[0].share + PROVIDERS[1].share {
        &PROVIDERS[1]
    } else {
        &PROVIDERS[2]
    }
}

fn address(i: usize) -> String {
    let local = if i % BOUNCE_EVERY == 7 {
        format!("permfail+u{i}")
    } else {
        format!("u{i}")
    };
    format!("{local}@{}", provider_of(i).domain)
}

/// A port free on every sink address.
fn shared_port() -> u16 {
    for _ in 0..50 {
        let port = crate::harness::free_port();
        if PROVIDERS
            .iter()
            .all(|p| std::net::TcpListener::bind((p.ip, port)).is_ok())
        {
            return port;
        }
    }
    panic!("no port free on every sink address");
}

/// Each captured message: (recipient, Message-ID, arrival ms from the file name).
fn captured(dir: &std::path::Path) -> Vec<(String, String, i64, std::path::PathBuf)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("capture dir") {
        let path = entry.expect("entry").path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.ends_with(".eml") || name.starts_with('.') {
            continue;
        }
        let ms: i64 = name[..13].parse().expect("millis in the name");
        let text = std::fs::read_to_string(&path).expect("read");
        let field = |prefix: &str| {
            let start = text.find(prefix).map(|s| s + prefix.len())?;
            let end = text[start..].find('>')? + start;
            Some(text[start..end].to_string())
        };
        out.push((
            field("X-Sink-Recipient: <").expect("recipient"),
            field("\r\nMessage-ID: <").expect("Message-ID"),
            ms,
            path,
        ));
    }
    out
}

fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    format!("/{}", rest.split_once('/').expect("a path").1)
}

#[test]
fn a_campaign_to_100k_contacts_across_providers_matches_the_sinks() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut records = Vec::new();
    for p in &PROVIDERS {
        records.push(Rr::mx(p.domain, 10, p.mx));
        records.push(Rr::a(p.mx, p.ip));
    }
    let dns = rt.block_on(TestDns::start_in(".", &records, 300));
    let port = shared_port();
    let work = tempfile::tempdir().expect("tempdir");
    let sinks: Vec<(SinkProcess, std::path::PathBuf)> = PROVIDERS
        .iter()
        .map(|p| {
            let capture = work.path().join(p.name);
            std::fs::create_dir_all(&capture).expect("capture dir");
            let addr: SocketAddr = format!("{}:{port}", p.ip).parse().expect("addr");
            let mut args = vec!["--capture", capture.to_str().expect("utf8")];
            args.extend_from_slice(p.args);
            (SinkProcess::start_on(addr, &args), capture)
        })
        .collect();
    let shaping = work.path().join("shaping.toml");
    std::fs::write(
        &shaping,
        format!("[provider.docomo]\nmessage_rate = \"{DOCOMO_RATE}/s\"\nconnection_rate = \"unlimited\"\n"),
    )
    .expect("shaping");
    let server = TestServer::start(&format!(
        "[delivery]\ntls = \"disabled\"\ndns_servers = [\"{}\"]\nmx_port = {port}\n\
         retry_initial = \"1s\"\nretry_factor = 1.0\nretry_interval_max = \"1s\"\nretry_jitter = 0.0\n\
         shaping_file = \"{}\"\n[http]\npublic_url = \"https://mail.platform.test\"\n",
        dns.addr,
        shaping.display()
    ));
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim().to_string();
    ok(
        call(&server, "POST", "/v1/lists", &key, json!({"name": "All"})),
        201,
    );
    server.cli(&[
        "contacts",
        "property",
        "first_name",
        "text",
        "--tenant",
        "acme",
    ]);
    let csv = work.path().join("contacts.csv");
    let mut rows = String::from("email,first_name\n");
    for i in 0..CONTACTS {
        rows.push_str(&format!("{},P{i}\n", address(i)));
    }
    std::fs::write(&csv, rows).expect("write csv");
    crate::campaigns::import_to_all(&server, &csv);
    let started = Instant::now();
    let id = sent_campaign(
        &server,
        &key,
        json!({
            "name": "Providers",
            "audience": {"lists": ["All"]},
            "content": {"from": "news@acme.test", "subject": "Hello {{ first_name }}",
                        "html": "<p>Hi {{ first_name }}, <a href=\"https://shop.example/sale\">sale</a> \
                                 <a href=\"https://acme.example/news\">news</a></p>",
                        "text": "Hi {{ first_name }}."},
        }),
    );

    // Sent (everyone spooled), then delivered or bounced: every message settles.
    let expected_delivered = (0..CONTACTS).filter(|i| i % BOUNCE_EVERY != 7).count();
    let expected_bounced = CONTACTS - expected_delivered;
    let deadline = Instant::now() + Duration::from_secs(600);
    let report = loop {
        let report = ok(
            call(
                &server,
                "GET",
                &format!("/v1/campaigns/{id}/report"),
                &key,
                Value::Null,
            ),
            200,
        );
        let totals = &report["totals"];
        if report["state"] == "sent"
            && totals["delivered"].as_u64() == Some(expected_delivered as u64)
            && totals["bounced"].as_u64() == Some(expected_bounced as u64)
        {
            break report;
        }
        assert!(
            Instant::now() < deadline,
            "the campaign did not settle: {report}; {}",
            call(
                &server,
                "GET",
                "/v1/events?type=deferred&limit=2",
                &key,
                Value::Null
            )
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let settled = started.elapsed();

    // Every deliverable recipient once, with one message each; nobody else.
    let mut arrivals: HashMap<String, HashSet<String>> = HashMap::new();
    let mut per_sink = Vec::new();
    let mut samples = Vec::new();
    for ((_, capture), p) in sinks.iter().zip(&PROVIDERS) {
        let got = captured(capture);
        let (first, last) = got
            .iter()
            .fold((i64::MAX, i64::MIN), |(a, b), m| (a.min(m.2), b.max(m.2)));
        per_sink.push((p.name, got.len(), (last - first).max(0)));
        if p.name == "docomo" {
            samples.extend(got.iter().take(20).map(|m| m.3.clone()));
        }
        for (recipient, message_id, _, _) in got {
            arrivals.entry(recipient).or_default().insert(message_id);
        }
    }
    let duplicated = arrivals.values().filter(|ids| ids.len() > 1).count();
    let total_arrived: usize = per_sink.iter().map(|s| s.1).sum();
    let expected: HashSet<String> = (0..CONTACTS)
        .filter(|i| i % BOUNCE_EVERY != 7)
        .map(address)
        .collect();
    let missing = expected
        .iter()
        .filter(|a| !arrivals.contains_key(*a))
        .count();
    let unexpected = arrivals.keys().filter(|a| !expected.contains(*a)).count();
    println!(
        "campaign of {CONTACTS}: settled in {:.1} s; arrivals per sink (name, messages, first-to-last ms): {per_sink:?}; \
         missing {missing}, unexpected {unexpected}, recipients with two messages {duplicated}",
        settled.as_secs_f64()
    );
    assert_eq!((missing, unexpected, duplicated), (0, 0, 0));
    assert_eq!(total_arrived, expected_delivered, "a message arrived twice");

    // The sinks' own counts, stopping them.
    let mut sink_delivered = 0;
    let mut sink_bounced = 0;
    let mut sink_deferred = 0;
    let mut summaries = Vec::new();
    for ((sink, _), p) in sinks.into_iter().zip(&PROVIDERS) {
        let summary = sink.stop();
        let n = |a: &str, b: &str| summary[a][b].as_u64().unwrap_or(0);
        let delivered = n("messages", "accepted");
        let bounced = n("recipients", "permfail");
        let deferred = n("recipients", "tempfail") + n("messages", "tempfail");
        assert!(
            summary["open_max"].as_u64().unwrap_or(0) <= p.connections_max,
            "{}: {} connections at once, shaping allows {}",
            p.name,
            summary["open_max"],
            p.connections_max
        );
        assert!(deferred > 0, "{}: the sink deferred nothing", p.name);
        let provider = &report["providers"][p.name];
        assert_eq!(
            [
                provider["delivered"].as_u64().unwrap_or(0),
                provider["bounced"].as_u64().unwrap_or(0),
                provider["deferred"].as_u64().unwrap_or(0)
            ],
            [delivered, bounced, deferred],
            "{}: report {provider} vs sink {summary}",
            p.name
        );
        sink_delivered += delivered;
        sink_bounced += bounced;
        sink_deferred += deferred;
        summaries.push((p.name, summary));
    }
    let totals = &report["totals"];
    assert_eq!(totals["sent"], CONTACTS as u64, "{totals}");
    assert_eq!(
        [
            &totals["delivered"],
            &totals["bounced"],
            &totals["deferred"]
        ],
        [
            &json!(sink_delivered),
            &json!(sink_bounced),
            &json!(sink_deferred)
        ],
        "{totals}"
    );
    assert_eq!(
        report["bounces"]["invalid_recipient"], expected_bounced as u64,
        "{report}"
    );
    // Docomo's rate held: its messages took at least as long as the rate allows.
    let (_, docomo_count, docomo_span_ms) = per_sink[2];
    let floor_ms = ((docomo_count as f64 - DOCOMO_RATE) / DOCOMO_RATE * 1000.0 * 0.95) as i64;
    assert!(
        docomo_span_ms >= floor_ms,
        "docomo got {docomo_count} messages in {docomo_span_ms} ms: faster than {DOCOMO_RATE}/s"
    );

    // Every hard bounce is suppressed.
    let mut suppressed = 0;
    let mut after: Option<String> = None;
    loop {
        let query = after.as_ref().map_or(String::new(), |a| {
            format!("&after={}", a.replace('+', "%2B").replace('@', "%40"))
        });
        let page = ok(
            call(
                &server,
                "GET",
                &format!("/v1/suppressions?limit=1000{query}"),
                &key,
                Value::Null,
            ),
            200,
        );
        let rows = page["suppressions"]
            .as_array()
            .expect("suppressions")
            .clone();
        for row in &rows {
            let address = row["address"].as_str().expect("address");
            assert!(address.starts_with("permfail+"), "{row}");
            assert_eq!(row["reason"], "bounce", "{row}");
            suppressed += 1;
        }
        match page["next"].as_str() {
            Some(next) if !rows.is_empty() => after = Some(next.to_string()),
            _ => break,
        }
    }
    assert_eq!(suppressed, expected_bounced);

    // People open twenty Docomo messages and click a link in ten of them.
    std::thread::sleep(Duration::from_millis(10_500));
    let http = server.http.to_string();
    for (n, eml) in samples.iter().enumerate() {
        let links = python_json("tracking_links.py", &[eml.to_str().expect("utf8")]);
        let pixel = links["pixels"][0].as_str().expect("a pixel");
        let fetch = |url: &str| {
            python_json(
                "track_fetch.py",
                &[&http, &path_of(url), "track.acme.test", PERSON],
            )
        };
        assert_eq!(fetch(pixel)["status"], 200);
        if n % 2 == 0 {
            let link = links["links"][1].as_str().expect("a link");
            assert_eq!(fetch(link)["location"], "https://acme.example/news");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let report = ok(
            call(
                &server,
                "GET",
                &format!("/v1/campaigns/{id}/report"),
                &key,
                Value::Null,
            ),
            200,
        );
        let totals = &report["totals"];
        if totals["opened_unique"] == 20 && totals["clicked_unique"] == 10 {
            assert_eq!(report["providers"]["docomo"]["opened"], 20, "{report}");
            assert_eq!(
                report["links"],
                json!([{"link": 2, "clicks": 10, "unique": 10}]),
                "{report}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{totals}");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(dns);
}
