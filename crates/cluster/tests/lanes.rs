//! The membership outlives a spool server's death: with the lanes' leaders on different
//! servers, killing the server that leads the authority (its stream then waits 4 to 9 s for
//! an election) fences nobody and kills nobody, and neither does its restart. A node whose
//! lease lapsed does not get it back through the liveness lanes alone.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use cluster::membership::{
    BeatError, Membership, MembershipConfig, NodeRecord, NodeState, leaders,
};
use testkit::nats::NatsCluster;

async fn member(nats: &NatsCluster, name: &str) -> (Arc<Membership>, jetstream::Context) {
    let servers: Vec<String> = nats.urls().split(',').map(str::to_string).collect();
    let js = jetstream::new(async_nats::connect(servers).await.expect("connect"));
    let membership = Membership::open(&js, MembershipConfig::new(name, 3))
        .await
        .expect("membership");
    membership
        .claim_self(Duration::from_secs(10))
        .await
        .expect("claim");
    (Arc::new(membership), js)
}

async fn leader_of(js: &jetstream::Context, stream: &str) -> Option<String> {
    let mut stream = js.get_stream(stream).await.ok()?;
    let info = stream.info().await.ok()?;
    info.cluster.as_ref().and_then(|c| c.leader.clone())
}

/// Every node beats every heartbeat and, beside that, looks at the others, as a node's
/// cluster loop does, for `secs`; returns the trouble seen: a node fenced, or a node judged
/// dead by another.
async fn run(nodes: Vec<Arc<Membership>>, secs: u64) -> Vec<String> {
    let trouble = Arc::new(Mutex::new(Vec::new()));
    let notes = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for m in &nodes {
        let (beating, failures) = (m.clone(), notes.clone());
        tasks.push(tokio::spawn(async move {
            let m = beating;
            let record = NodeRecord::new(&m.config().node, NodeState::Up);
            // As the cluster loop: a heartbeat that took long is followed by the next at once.
            let mut tick = tokio::time::interval(m.config().heartbeat);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while Instant::now() < until {
                tick.tick().await;
                match m.beat(&record).await {
                    Err(BeatError::TakenOver(by)) => {
                        panic!("{} taken over by {by}", m.config().node)
                    }
                    // A heartbeat may fail (its server died under it): what counts is
                    // whether the node stays leased.
                    Err(e) => {
                        let line = format!("{:?}: {}: {e}", started.elapsed(), m.config().node);
                        failures.lock().unwrap().push(line);
                    }
                    Ok(()) => {}
                }
            }
        }));
        let (m, trouble) = (m.clone(), trouble.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                if m.fenced() {
                    let line = format!("{:?}: {} fenced", started.elapsed(), m.config().node);
                    trouble.lock().unwrap().push(line);
                }
                let read = tokio::time::timeout(m.config().heartbeat * 4, m.observe()).await;
                if let Ok(Ok(members)) = read {
                    for dead in members.iter().filter(|x| !x.alive) {
                        let line = format!(
                            "{:?}: {} sees {} dead",
                            started.elapsed(),
                            m.config().node,
                            dead.record.name
                        );
                        trouble.lock().unwrap().push(line);
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("node task");
    }
    let trouble = trouble.lock().unwrap().clone();
    if !trouble.is_empty() {
        eprintln!("failed heartbeats: {:#?}", notes.lock().unwrap());
    }
    trouble
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_server_death_fences_nobody_and_a_lapsed_lease_needs_the_authority() {
    let mut nats = NatsCluster::start(3);
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        nodes.push(member(&nats, name).await);
    }
    let streams = nodes[0].0.streams();
    let js = nodes[0].1.clone();
    let members: Vec<Arc<Membership>> = nodes.iter().map(|(m, _)| m.clone()).collect();
    // The lanes' leaders end up on three different servers.
    let deadline = Instant::now() + Duration::from_secs(20);
    let leaders = loop {
        let _ = leaders::spread(&js, &streams).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut leaders = Vec::new();
        for stream in &streams {
            leaders.push(leader_of(&js, stream).await.unwrap_or_default());
        }
        let distinct: std::collections::HashSet<&String> = leaders.iter().collect();
        if distinct.len() == 3 && !leaders.iter().any(String::is_empty) {
            break leaders;
        }
        assert!(
            Instant::now() < deadline,
            "leaders never spread: {leaders:?}"
        );
    };
    let trouble = run(members.clone(), 3).await;
    assert!(trouble.is_empty(), "{trouble:#?}");

    // The authority's leader dies, later comes back: nobody is fenced or judged dead.
    let server = |leader: &str| {
        leader
            .trim_start_matches('n')
            .parse::<usize>()
            .expect("server name")
            - 1
    };
    let authority = server(&leaders[0]);
    let runner = tokio::spawn(run(members.clone(), 24));
    nats.kill(authority);
    tokio::time::sleep(Duration::from_secs(12)).await;
    tokio::task::block_in_place(|| nats.restart(authority));
    let trouble = runner.await.expect("run");
    assert!(
        trouble.is_empty(),
        "server down, then restarted: {trouble:#?}"
    );

    // a goes quiet past its fence; then the authority's leader dies again. a's heartbeats
    // land in the liveness lanes but its lease stays lapsed until the authority takes one.
    let leader = loop {
        if let Some(leader) = leader_of(&js, &streams[0]).await {
            break leader;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(MembershipConfig::new("a", 3).fence_after + Duration::from_millis(200))
        .await;
    assert!(nodes[0].0.fenced());
    nats.kill(server(&leader));
    let record = NodeRecord::new("a", NodeState::Up);
    let beat = nodes[0].0.beat(&record).await;
    assert!(
        matches!(beat, Err(BeatError::Unreachable(_))),
        "a's lease came back without the authority: {beat:?}"
    );
    assert!(nodes[0].0.fenced());
    // Once the authority has a leader again, a's heartbeat wins its lease back.
    let deadline = Instant::now() + Duration::from_secs(20);
    while nodes[0].0.beat(&record).await.is_err() {
        assert!(Instant::now() < deadline, "a never got its lease back");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(!nodes[0].0.fenced());
}
