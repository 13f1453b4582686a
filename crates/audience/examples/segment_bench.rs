//! Segment count and sample over a large audience: seeds one tenant's store with contacts
//! (1 M by default; address, time zone, locale, country and 6 declared properties of every
//! type) on two lists, and events (10 M by default: delivered, opened, clicked over 180
//! days), then runs segments as the API does (parse, check, count, sample of 10), 5 times
//! each, and prints the times.
//!
//! cargo run --release -p audience --example segment_bench -- [--contacts 1000000]
//!     [--events 10000000] [--data /tmp/segment-bench]   # reuses a seeded directory

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use store::{
    AudienceStore, Consent, ContactInput, ControlStore, EventKind, EventStore, Existing,
    MemberStatus, NewEvent, PropertyKind, SqliteStore,
};

const DAY: i64 = 86_400_000;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn seed(store: &SqliteStore, contacts: usize, events: usize) -> Result<String, Error> {
    let tenant = store.add_tenant("acme").await?.id;
    for (name, kind) in [
        (
            "plan",
            PropertyKind::Choice(vec!["free".into(), "pro".into(), "team".into()]),
        ),
        ("score", PropertyKind::Number),
        ("signed_up", PropertyKind::DateTime),
        ("vip", PropertyKind::Boolean),
        ("city", PropertyKind::Text),
        ("note", PropertyKind::Text),
    ] {
        store.add_property(&tenant, name, &kind).await?;
    }
    let now = now_ms();
    let started = Instant::now();
    let countries = ["JP", "US", "FR", "IN", "AU"];
    let zones = [
        "Asia/Tokyo",
        "America/New_York",
        "Europe/Paris",
        "Asia/Kolkata",
        "Australia/Sydney",
    ];
    let cities = ["Tokyo", "Osaka", "Paris", "New York", "Sydney", "Kyoto"];
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..contacts {
        let c = i % 5;
        let plan = ["free", "pro", "team"][i % 3];
        batch.push(ContactInput {
            address: format!("user{i}@example{}.com", i % 97),
            timezone: Some(zones[c].into()),
            locale: Some(["ja", "en", "fr", "hi", "en-AU"][c].into()),
            country: Some(countries[c].into()),
            properties: json!({
                "plan": plan,
                "score": (i * 7919) % 1000,
                "signed_up": now - ((i as i64 * 7) % 365) * DAY,
                "vip": i % 7 == 0,
                "city": cities[i % 6],
                "note": format!("note {i}"),
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        });
        if batch.len() == 10_000 {
            store
                .upsert_contacts(&tenant, &batch, Existing::Update)
                .await?;
            batch.clear();
        }
    }
    store
        .upsert_contacts(&tenant, &batch, Existing::Update)
        .await?;
    eprintln!(
        "seeded {contacts} contacts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let news = store.add_list(&tenant, "Newsletter", false).await?;
    let consent = Consent {
        source: "import".into(),
        time_ms: now,
        address: None,
        confirmed_ms: None,
    };
    // Every third contact is on the list (ids are 1.. in insertion order).
    let members: Vec<(i64, MemberStatus)> = (1..=contacts as i64)
        .filter(|id| id % 3 == 0)
        .map(|id| (id, MemberStatus::Subscribed))
        .collect();
    for chunk in members.chunks(50_000) {
        store
            .set_members(&tenant, &news.id, chunk, &consent)
            .await?;
    }
    let started = Instant::now();
    let mut batch = Vec::with_capacity(5000);
    for i in 0..events {
        // Contacts are reached unevenly: a third of them get most of the mail.
        let who = if i % 3 == 0 {
            (i * 31) % contacts
        } else {
            (i * 7) % (contacts / 3).max(1)
        };
        let kind = match i % 10 {
            0..=5 => EventKind::Delivered,
            6..=8 => EventKind::Opened,
            _ => EventKind::Clicked,
        };
        batch.push(NewEvent {
            tenant_id: tenant.clone(),
            time_ms: now - ((i as i64 * 13) % 180) * DAY - (i as i64 % 86_400) * 1000,
            kind,
            message_id: format!("M{}", i / 3),
            recipient: format!("user{who}@example{}.com", who % 97),
            custom_id: None,
            tags: None,
            detail: None,
        });
        if batch.len() == 5000 {
            store.add_events(&batch).await?;
            batch.clear();
        }
    }
    store.add_events(&batch).await?;
    eprintln!(
        "seeded {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(tenant)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut contacts = 1_000_000;
    let mut events = 10_000_000;
    let mut data: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        match flag.as_str() {
            "--contacts" => contacts = value.parse()?,
            "--events" => events = value.parse()?,
            "--data" => data = Some(value.into()),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let scratch = tempfile::tempdir()?;
    let dir = data.unwrap_or_else(|| scratch.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("control.db");
    let fresh = !path.exists();
    let store = SqliteStore::open(&path).await?;
    let tenant = if fresh {
        seed(&store, contacts, events).await?
    } else {
        store.tenant("acme").await?.ok_or("no tenant acme")?.id
    };
    let segments = [
        "",
        r#"country = "JP""#,
        r#"plan = "pro" and score >= 500"#,
        "signed_up > now() - 30d",
        r#"city contains "kyo" and vip = true"#,
        r#"in_list("Newsletter") and not suppressed()"#,
        "opened(within: 90d)",
        r#"country = "JP" and signed_up > now() - 30d and opened(within: 90d)"#,
        r#"clicked(within: 7d) or (plan in ["team"] and country != "US")"#,
    ];
    println!(
        "| segment | contacts selected | count + sample p50 ms | max ms |\n|---|---:|---:|---:|"
    );
    for text in segments {
        let mut times = Vec::new();
        let mut count = 0;
        for _ in 0..5 {
            let started = Instant::now();
            let (properties, lists) =
                tokio::try_join!(store.properties(&tenant), store.lists(&tenant))?;
            let condition = audience::parse_segment(text, &properties, &lists)?;
            let (n, _sample) = tokio::try_join!(
                store.segment_count(&tenant, &condition),
                store.segment_contacts(&tenant, &condition, None, 10),
            )?;
            count = n;
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| `{}` | {count} | {:.0} | {:.0} |",
            if text.is_empty() { "(everyone)" } else { text },
            times[2],
            times[4]
        );
    }
    Ok(())
}
