//! The spool's JetStream copy against a real three-server JetStream cluster: copies follow
//! the spool's lifecycle, another node takes a node's copy over, and ingest goes on while a
//! server (the leader of some shards) is killed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use cluster::replica::{JetStreamReplica, ReplicaConfig};
use cluster::streams::Layout;
use spool::{Envelope, MessageId, Recipient, Spool, SpoolConfig};
use testkit::nats::NatsCluster;

fn envelope(rcpts: usize) -> Envelope {
    Envelope {
        sender: "s@example.com".into(),
        recipients: (0..rcpts)
            .map(|i| Recipient {
                address: format!("r{i}@example.net"),
                notify: 2,
                orcpt: None,
            })
            .collect(),
        dsn_ret: 1,
        dsn_envid: None,
        flags: 0,
        received_ms: 1,
        client_ip: "127.0.0.1".into(),
        helo: "client".into(),
        auth_user: None,
        not_before_ms: 0,
        attributes: None,
    }
}

fn body(n: usize) -> Vec<u8> {
    format!("Subject: {n}\r\n\r\nbody {n}\r\n").into_bytes()
}

fn open_spool(dir: &std::path::Path) -> Spool {
    let (spool, _) = Spool::open(&SpoolConfig {
        dir: dir.to_path_buf(),
        segment_bytes_max: 1 << 20,
        batch_bytes_max: 4 << 20,
    })
    .expect("spool");
    spool
}

async fn replica(nats: &NatsCluster, node: &str, shards: u32) -> JetStreamReplica {
    let servers: Vec<String> = nats.urls().split(',').map(str::to_string).collect();
    let client = async_nats::connect(servers).await.expect("connect");
    JetStreamReplica::open(
        jetstream::new(client),
        ReplicaConfig {
            node: node.into(),
            layout: Layout {
                shards,
                replicas: 3,
            },
            ..ReplicaConfig::default()
        },
    )
    .await
    .expect("replica")
}

/// Waits until `check` holds (bookkeeping records are published in the background).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_copy_follows_its_spool_and_another_node_takes_it_over() {
    let nats = NatsCluster::start(3);
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open_spool(dirs.0.path());
    let a_copy = replica(&nats, "a", 3).await;
    assert!(a.attach_replica(Arc::new(a_copy.clone())));

    let mut ids = Vec::new();
    for n in 0..20 {
        let id = a.next_id();
        a.insert(id, envelope(2), body(n)).await.expect("insert");
        ids.push(id);
    }
    let (held, released) = (a.next_id(), a.next_id());
    a.insert_held(held, envelope(1), &[], body(98))
        .await
        .expect("held");
    a.insert_held(released, envelope(1), &[], body(99))
        .await
        .expect("held");
    a.release(&[released]);
    a.recipients_done(ids[0], vec![1]).await.expect("done");
    for id in &ids[15..] {
        a.remove(*id).await.expect("remove");
    }
    assert_eq!(a_copy.tracked(), 17);

    // Read back as another node would: 15 live messages, the held one marked, notes applied.
    let b_copy = replica(&nats, "b", 3).await;
    eventually("a's notes and deletions land", async || {
        let copy = b_copy.recover("a").await.expect("recover");
        copy.messages.len() == 17
            && copy.messages[&ids[0]].done == vec![1]
            && copy.messages[&released].released
    })
    .await;
    let copy = b_copy.recover("a").await.expect("recover");
    assert_eq!(copy.unreadable, 0);
    assert!(copy.messages[&held].still_held());
    assert!(!copy.messages[&released].still_held());
    for id in &ids[..15] {
        let stored = &copy.messages[id];
        let (got, env, content) = spool::decode_message(&stored.record).expect("record");
        assert_eq!((got, env.recipients.len()), (*id, 2));
        assert!(content.starts_with(b"Subject: "));
    }
    for id in &ids[15..] {
        assert!(!copy.messages.contains_key(id), "removed with the message");
    }

    // Node b takes a's copy over: imports (republished under b), applies final recipients,
    // deletes a's records. The held, unreleased batch is its campaign's to spool again.
    let b = open_spool(dirs.1.path());
    assert!(b.attach_replica(Arc::new(b_copy.clone())));
    for (id, stored) in &copy.messages {
        if stored.still_held() {
            continue;
        }
        assert_eq!(b.import(&stored.record, false).await.expect("import"), *id);
        if !stored.done.is_empty() {
            b.recipients_done(*id, stored.done.clone())
                .await
                .expect("done");
        }
    }
    let all: Vec<(u32, u64)> = copy
        .messages
        .values()
        .flat_map(|m| m.locations.iter().copied())
        .collect();
    b_copy.delete(&all).await;
    assert!(b.contains(ids[3]) && !b.contains(held));
    assert_eq!(
        b.recipients_final(ids[0]).expect("final"),
        vec![false, true]
    );
    assert!(
        b_copy
            .recover("a")
            .await
            .expect("recover")
            .messages
            .is_empty()
    );
    eventually("b's own copy holds the imports", async || {
        let mine = b_copy.recover("b").await.expect("recover");
        mine.messages.len() == 16 && mine.messages[&ids[0]].done == vec![1]
    })
    .await;

    // A node restarting on an empty disk finds its copy and tracks it: removals delete it.
    let fresh = replica(&nats, "b", 3).await;
    let mine = fresh.recover("b").await.expect("recover");
    fresh.track(&mine);
    assert_eq!(fresh.tracked(), 16);
    let again = tempfile::tempdir().unwrap();
    let restarted = open_spool(again.path());
    assert!(restarted.attach_replica(Arc::new(fresh.clone())));
    restarted
        .import(&mine.messages[&ids[4]].record, false)
        .await
        .expect("import");
    restarted.remove(ids[4]).await.expect("remove");
    eventually("the removal reaches the stream", async || {
        !fresh
            .recover("b")
            .await
            .expect("recover")
            .messages
            .contains_key(&ids[4])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_goes_on_when_a_server_dies_and_nothing_acknowledged_is_lost() {
    let mut nats = NatsCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(open_spool(dir.path()));
    let copy = replica(&nats, "a", 6).await;
    assert!(spool.attach_replica(Arc::new(copy.clone())));

    // Writers insert continuously; one server is killed mid-way, then restarted.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..8 {
        let (spool, stop) = (spool.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let (mut acked, mut refused, mut slowest) = (Vec::new(), 0u32, Duration::ZERO);
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id = spool.next_id();
                let started = Instant::now();
                match spool.insert(id, envelope(1), body(n)).await {
                    Ok(()) => acked.push(id),
                    Err(_) => refused += 1,
                }
                slowest = slowest.max(started.elapsed());
                n += 1;
            }
            (acked, refused, slowest)
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    tokio::task::block_in_place(|| nats.kill(0));
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked: Vec<MessageId> = Vec::new();
    let mut slowest = Duration::ZERO;
    for writer in writers {
        let (ids, refused, slow) = writer.await.expect("writer");
        assert_eq!(refused, 0, "a single server's death refuses nothing");
        acked.extend(ids);
        slowest = slowest.max(slow);
    }
    eprintln!(
        "{} acknowledged; slowest insert {slowest:?} across the kill",
        acked.len()
    );
    assert!(acked.len() > 100, "ingest went on: {}", acked.len());

    // Every acknowledged message is in the surviving servers' copy.
    let reader = replica(&nats, "reader", 6).await;
    let found = reader.recover("a").await.expect("recover");
    let missing: Vec<&MessageId> = acked
        .iter()
        .filter(|id| !found.messages.contains_key(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged, not in the copy",
        missing.len()
    );

    // The dead server comes back and catches up; still nothing missing.
    tokio::task::block_in_place(|| nats.restart(0));
    let found = reader.recover("a").await.expect("recover");
    assert!(acked.iter().all(|id| found.messages.contains_key(id)));

    // Delivered: every record goes, in bulk (the shards are purged up to their watermarks).
    for id in &acked {
        spool.remove(*id).await.expect("remove");
    }
    let servers: Vec<String> = nats.urls().split(',').map(str::to_string).collect();
    let js = jetstream::new(async_nats::connect(servers).await.expect("connect"));
    eventually("the finished records are purged", async || {
        let mut left = 0;
        for shard in 0..6 {
            let mut stream = js
                .get_stream(cluster::streams::stream_name(shard))
                .await
                .expect("stream");
            left += stream.info().await.expect("info").state.messages;
        }
        left == 0
    })
    .await;
}
