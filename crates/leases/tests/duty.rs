//! One duty, two nodes on one PostgreSQL: exactly one is on duty; when it dies (its renewals
//! stop), the other takes the duty once the term has run out, and never before the first
//! stopped counting itself on duty.

use std::time::{Duration, Instant};

use leases::Duty;
use store::PgStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duty_moves_to_the_survivor_after_its_term() {
    let server = testkit::postgres::PgServer::start();
    let term = Duration::from_secs(2);
    let a_store = PgStore::connect(&server.url()).await.expect("connect");
    let b_store = PgStore::connect(&server.url()).await.expect("connect");
    let a = Duty::leased(a_store, "webhooks", "a", term);
    tokio::time::timeout(Duration::from_secs(5), a.wait())
        .await
        .expect("a on duty");
    let b = Duty::leased(b_store, "webhooks", "b", term);
    // b renews a few times and stays off duty while a holds it.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(a.held() && !b.held(), "one holder at a time");
    }
    // a dies: its renewals stop with its last handle.
    let a_until = Instant::now();
    let a_watch = a.clone();
    drop(a);
    assert!(!a_watch.held() || a_until.elapsed() < term);
    drop(a_watch);
    tokio::time::timeout(Duration::from_secs(10), b.wait())
        .await
        .expect("b takes the duty over");
    let took = a_until.elapsed();
    assert!(
        took >= term / 2,
        "b took over before a's term ran out: {took:?}"
    );
    eprintln!("the duty moved after {took:?} (term {term:?})");
}

#[tokio::test]
async fn a_single_node_is_always_on_duty() {
    let duty = Duty::always();
    assert!(duty.held());
    tokio::time::timeout(Duration::from_millis(100), duty.wait())
        .await
        .expect("at once");
}
