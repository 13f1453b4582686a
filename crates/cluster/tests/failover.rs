//! Membership, takeover and rejoin against a real three-server JetStream cluster: a node
//! that stops beating is taken over by exactly one survivor, which then holds (and would
//! deliver) every message the dead node acknowledged; the dead node coming back drops what
//! went elsewhere; a node cut off fences itself before it is taken over and learns of the
//! takeover when it is back.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use cluster::membership::{BeatError, Membership, MembershipConfig, NodeRecord, NodeState};
use cluster::replica::{JetStreamReplica, ReplicaConfig};
use cluster::streams::Layout;
use cluster::{rejoin, takeover};
use spool::{Envelope, Recipient, Spool, SpoolConfig};
use testkit::nats::NatsCluster;

fn envelope() -> Envelope {
    Envelope {
        sender: "s@example.com".into(),
        recipients: vec![
            Recipient {
                address: "a@example.net".into(),
                notify: 2,
                orcpt: None,
            },
            Recipient {
                address: "b@example.net".into(),
                notify: 2,
                orcpt: None,
            },
        ],
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

struct Node {
    name: String,
    spool: Spool,
    replica: JetStreamReplica,
    membership: Membership,
}

impl Node {
    /// Starts a node the way `tsubame serve` does in cluster mode: claim its record,
    /// reconcile its spool with its copy, announce itself up.
    async fn start(
        nats: &NatsCluster,
        name: &str,
        dir: &std::path::Path,
    ) -> (Node, rejoin::Rejoined) {
        let servers: Vec<String> = nats.urls().split(',').map(str::to_string).collect();
        let js = jetstream::new(async_nats::connect(servers).await.expect("connect"));
        let (spool, _) = Spool::open(&SpoolConfig {
            dir: dir.to_path_buf(),
            segment_bytes_max: 1 << 20,
            batch_bytes_max: 4 << 20,
        })
        .expect("spool");
        let replica = JetStreamReplica::open(
            js.clone(),
            ReplicaConfig {
                node: name.into(),
                layout: Layout {
                    shards: 3,
                    replicas: 3,
                },
                ..ReplicaConfig::default()
            },
        )
        .await
        .expect("replica");
        let membership = Membership::open(
            &js,
            MembershipConfig {
                heartbeat: Duration::from_millis(100),
                dead_after: Duration::from_millis(1000),
                fence_after: Duration::from_millis(600),
                ..MembershipConfig::new(name, 3)
            },
        )
        .await
        .expect("membership");
        membership
            .claim_self(Duration::from_secs(10))
            .await
            .expect("claim");
        let rejoined = rejoin::rejoin(&spool, &replica).await.expect("rejoin");
        let node = Node {
            name: name.into(),
            spool,
            replica,
            membership,
        };
        node.beat().await.expect("up");
        (node, rejoined)
    }

    async fn beat(&self) -> Result<(), BeatError> {
        let mut record = NodeRecord::new(&self.name, NodeState::Up);
        record.queued = self.spool.totals().messages;
        self.membership.beat(&record).await
    }

    /// One round of the cluster loop: beat, look, take over whoever is due.
    async fn round(&self) -> Vec<takeover::Takeover> {
        let _ = self.beat().await;
        let members = self.membership.observe().await.expect("observe");
        let mut done = Vec::new();
        for member in &members {
            if takeover::due(&self.name, member, &members)
                && let Some(report) =
                    takeover::take_over(&self.membership, &self.replica, &self.spool, member)
                        .await
                        .expect("takeover")
            {
                done.push(report);
            }
        }
        done
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_mail_moves_to_one_survivor_and_its_return_drops_nothing_twice() {
    let nats = NatsCluster::start(3);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, _) = Node::start(&nats, "a", dirs[0].path()).await;
    let (b, _) = Node::start(&nats, "b", dirs[1].path()).await;
    let (c, _) = Node::start(&nats, "c", dirs[2].path()).await;

    let mut acked = Vec::new();
    for n in 0..30 {
        let id = a.spool.next_id();
        a.spool
            .insert(
                id,
                envelope(),
                format!("Subject: {n}\r\n\r\nx\r\n").into_bytes(),
            )
            .await
            .expect("insert");
        acked.push(id);
    }
    a.spool
        .recipients_done(acked[0], vec![0])
        .await
        .expect("done");
    // Final recipients of a message still queued are noted after a second.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    for _ in 0..3 {
        assert!(b.round().await.is_empty() && c.round().await.is_empty());
        assert!(a.round().await.is_empty());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let members = b.membership.observe().await.expect("observe");
    assert_eq!(members.iter().filter(|m| m.active()).count(), 3);

    // a dies (no goodbye). b and c both run their loops; exactly one takes a over.
    let died = Instant::now();
    drop(a);
    let mut reports = Vec::new();
    while reports.is_empty() {
        assert!(
            died.elapsed() < Duration::from_secs(10),
            "nobody took a over"
        );
        let (from_b, from_c) = tokio::join!(b.round(), c.round());
        reports.extend(from_b.into_iter().map(|r| ("b", r)));
        reports.extend(from_c.into_iter().map(|r| ("c", r)));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let taken = died.elapsed();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let (winner, report) = &reports[0];
    assert_eq!((report.node.as_str(), report.imported), ("a", 30));
    eprintln!(
        "a taken over by {winner} {taken:?} after it died ({:?} importing)",
        report.took
    );
    let survivor = if *winner == "b" { &b } else { &c };
    let other = if *winner == "b" { &c } else { &b };
    for id in &acked {
        assert!(
            survivor.spool.contains(*id),
            "{id} acknowledged by a, not taken over"
        );
        assert!(!other.spool.contains(*id));
    }
    assert_eq!(
        survivor.spool.recipients_final(acked[0]).expect("final"),
        vec![true, false],
        "recipients final before the death stay final"
    );
    for _ in 0..3 {
        assert!(b.round().await.is_empty() && c.round().await.is_empty());
    }
    let names: Vec<String> = b
        .membership
        .observe()
        .await
        .expect("observe")
        .into_iter()
        .map(|m| m.record.name)
        .collect();
    assert_eq!(names, ["b", "c"], "a is forgotten");

    // a comes back on its old disk: everything it held went elsewhere, so it drops it all.
    let (a, rejoined) = Node::start(&nats, "a", dirs[0].path()).await;
    assert_eq!(
        (rejoined.dropped, rejoined.kept, rejoined.restored),
        (30, 0, 0)
    );
    assert_eq!(a.spool.totals().messages, 0);

    // a is cut off (its heartbeats stop reaching the servers): it fences itself before the
    // others count it dead; when it is back, its heartbeat is refused.
    let id = a.spool.next_id();
    a.spool
        .insert(id, envelope(), b"Subject: late\r\n\r\nx\r\n".to_vec())
        .await
        .expect("insert");
    let cut = Instant::now();
    let mut fenced_at = None;
    let mut taken_at = None;
    while taken_at.is_none() {
        assert!(
            cut.elapsed() < Duration::from_secs(10),
            "a never taken over"
        );
        if fenced_at.is_none() && a.membership.fenced() {
            fenced_at = Some(cut.elapsed());
        }
        let (from_b, from_c) = tokio::join!(b.round(), c.round());
        if !from_b.is_empty() || !from_c.is_empty() {
            taken_at = Some(cut.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fenced_at = fenced_at.expect("a fenced itself");
    assert!(
        fenced_at < taken_at.unwrap(),
        "{fenced_at:?} vs {taken_at:?}"
    );
    assert!(b.spool.contains(id) || c.spool.contains(id));
    match a.beat().await {
        Err(BeatError::TakenOver(_)) => {}
        other => panic!("a's heartbeat after the takeover: {other:?}"),
    }
    drop(a);
    let (_a, rejoined) = Node::start(&nats, "a", dirs[0].path()).await;
    assert_eq!(rejoined.dropped, 1);
}
