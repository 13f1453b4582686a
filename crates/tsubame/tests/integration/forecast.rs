//! The capacity forecast against an actual run: three `tsubame sink`s on 127.0.0.11-13
//! play Gmail, Yahoo and Docomo (MX records from a real DNS server on loopback), shaped at
//! 300, 200 and 100 messages a second. After a warm-up (so the forecast knows each site's
//! transaction time), `tsubame ops forecast` is asked about a campaign of 6,600 contacts,
//! then the campaign is sent: the measured delivery time (first to last arrival at the
//! sinks) must be within 15 % of the forecast.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::dns::{Rr, TestDns};

use crate::api::add_domain;
use crate::campaigns::{call, ok, sent_campaign};
use crate::harness::TestServer;
use crate::sink::SinkProcess;

/// (name, domain, MX host, sink address, contacts, messages per second).
const PROVIDERS: [(&str, &str, &str, &str, usize, u32); 3] = [
    (
        "gmail",
        "gmail.com",
        "gmail-smtp-in.l.google.com",
        "127.0.0.11",
        3_000,
        300,
    ),
    (
        "yahoo",
        "yahoo.co.jp",
        "mx1.mail.yahoodns.net",
        "127.0.0.12",
        2_000,
        200,
    ),
    (
        "docomo",
        "docomo.ne.jp",
        "mfsmax.docomo.ne.jp",
        "127.0.0.13",
        1_600,
        100,
    ),
];
const WARM_UP: usize = 30;

fn shared_port() -> u16 {
    for _ in 0..50 {
        let port = crate::harness::free_port();
        if PROVIDERS
            .iter()
            .all(|p| std::net::TcpListener::bind((p.3, port)).is_ok())
        {
            return port;
        }
    }
    panic!("no port free on every sink address");
}

/// Arrival times (ms, from the capture files' names).
fn arrivals(dir: &std::path::Path) -> Vec<i64> {
    std::fs::read_dir(dir)
        .expect("capture dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            (name.ends_with(".eml") && !name.starts_with('.'))
                .then(|| name.get(..13)?.parse().ok())
                .flatten()
        })
        .collect()
}

#[test]
fn a_forecast_is_within_15_percent_of_the_measured_campaign() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut records = Vec::new();
    for p in &PROVIDERS {
        records.push(Rr::mx(p.1, 10, p.2));
        records.push(Rr::a(p.2, p.3));
    }
    let dns = rt.block_on(TestDns::start_in(".", &records, 300));
    let port = shared_port();
    let work = tempfile::tempdir().expect("tempdir");
    let mut sinks = Vec::new();
    let mut shaping = String::new();
    for p in &PROVIDERS {
        let capture = work.path().join(p.0);
        std::fs::create_dir_all(&capture).expect("capture dir");
        let addr: SocketAddr = format!("{}:{port}", p.3).parse().expect("addr");
        sinks.push((
            SinkProcess::start_on(addr, &["--capture", capture.to_str().expect("utf8")]),
            capture,
        ));
        shaping.push_str(&format!(
            "[provider.{}]\nmessage_rate = \"{}/s\"\nconnection_rate = \"unlimited\"\n",
            p.0, p.5
        ));
    }
    let shaping_file = work.path().join("shaping.toml");
    std::fs::write(&shaping_file, shaping).expect("shaping");
    let server = TestServer::start(&format!(
        "[delivery]\ntls = \"disabled\"\ndns_servers = [\"{}\"]\nmx_port = {port}\n\
         retry_initial = \"1s\"\nretry_factor = 1.0\nretry_jitter = 0.0\nshaping_file = \"{}\"\n\
         [[slo]]\nname = \"delivery-7s\"\nkind = \"delivery_latency\"\nthreshold = \"7s\"\nobjective = 99.9\n",
        dns.addr,
        shaping_file.display()
    ));
    server.cli(&["tenant", "add", "acme"]);
    add_domain(&server, "acme", "acme.test");
    let key = server.cli(&["key", "add", "--tenant", "acme", "--scopes", "all"]);
    let key = key.trim().to_string();

    // Warm-up: each site's transaction time is measured.
    for p in &PROVIDERS {
        let messages: Vec<String> = (0..WARM_UP)
            .map(|i| {
                format!(
                    r#"{{"from":"news@acme.test","to":["warm{i}@{}"],"text":"t"}}"#,
                    p.1
                )
            })
            .collect();
        let sent = crate::api::post(
            &server,
            &key,
            &format!(r#"{{"messages":[{}]}}"#, messages.join(",")),
        );
        assert_eq!(sent["status"], 200, "{sent}");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while sinks.iter().map(|s| arrivals(&s.1).len()).sum::<usize>() < 3 * WARM_UP {
        assert!(Instant::now() < deadline, "warm-up did not arrive");
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut args = vec![
        "ops".to_string(),
        "forecast".into(),
        "--json".into(),
        "--message-bytes".into(),
        "2000".into(),
    ];
    for p in &PROVIDERS {
        args.push("--recipients".into());
        args.push(format!("{}={}", p.1, p.4));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let forecast: Value = serde_json::from_str(&server.cli(&args)).expect("json");
    let predicted = forecast["seconds"].as_f64().expect("seconds");
    assert_eq!(forecast["recipients"], 6_600, "{forecast}");
    let docomo = forecast["lanes"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["provider"] == "docomo").cloned())
        .expect("docomo lane");
    assert_eq!(docomo["bound"], "message_rate", "{forecast}");
    assert_eq!(
        forecast["latency_holds"], false,
        "15 s of queue against 7 s: {forecast}"
    );
    assert_eq!(forecast["spool_bytes"], 6_600 * (2_000 + 512), "{forecast}");

    // The campaign itself.
    ok(
        call(&server, "POST", "/v1/lists", &key, json!({"name": "All"})),
        201,
    );
    let csv = work.path().join("contacts.csv");
    let mut rows = String::from("email\n");
    for p in &PROVIDERS {
        for i in 0..p.4 {
            rows.push_str(&format!("u{i}@{}\n", p.1));
        }
    }
    std::fs::write(&csv, rows).expect("csv");
    crate::campaigns::import_to_all(&server, &csv);
    let before: usize = sinks.iter().map(|s| arrivals(&s.1).len()).sum();
    let sent_ms = jiff::Timestamp::now().as_millisecond();
    sent_campaign(
        &server,
        &key,
        json!({"name": "Forecast", "audience": {"lists": ["All"]},
               "content": {"from": "news@acme.test", "subject": "Hello", "text": "Hi."}}),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while sinks.iter().map(|s| arrivals(&s.1).len()).sum::<usize>() < before + 6_600 {
        assert!(Instant::now() < deadline, "the campaign did not arrive");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut per_sink = Vec::new();
    let (mut first, mut last) = (i64::MAX, 0);
    for (p, (_, dir)) in PROVIDERS.iter().zip(&sinks) {
        let got: Vec<i64> = arrivals(dir)
            .into_iter()
            .filter(|ms| *ms >= sent_ms)
            .collect();
        let (f, l) = (
            got.iter().min().copied().unwrap_or(0),
            got.iter().max().copied().unwrap_or(0),
        );
        first = first.min(f);
        last = last.max(l);
        per_sink.push((p.0, got.len(), (l - f) as f64 / 1000.0));
    }
    let measured = (last - first) as f64 / 1000.0;
    let error = (predicted - measured).abs() / measured;
    eprintln!(
        "forecast {predicted:.2} s, measured {measured:.2} s first to last arrival ({:.2} s from the send), error {:.1} %; per sink {per_sink:?}",
        (last - sent_ms) as f64 / 1000.0,
        error * 100.0
    );
    assert!(
        error <= 0.15,
        "forecast {predicted:.2} s vs measured {measured:.2} s: {forecast}"
    );
}
