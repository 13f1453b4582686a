//! Keeps the membership lanes' leaders on different servers. JetStream elects each stream's
//! leader on its own, so two lanes can end up led by one server, whose death then stalls
//! both; the lanes only outlive a server's death when no two share a leader.

use std::collections::HashSet;

use async_nats::jetstream;

use crate::ClusterError;

/// One stream's leader and the other servers holding it.
struct Led {
    stream: String,
    leader: String,
    followers: Vec<String>,
}

/// Asks the leader of each stream sharing its leader with another to hand leadership to a
/// server leading none of them (when one holds a current copy). Returns how many moved.
pub async fn spread(js: &jetstream::Context, streams: &[String]) -> Result<usize, ClusterError> {
    let mut led = Vec::new();
    for name in streams {
        let failed = |e: &dyn std::fmt::Display| ClusterError::Stream {
            stream: name.clone(),
            reason: e.to_string(),
        };
        let mut stream = js.get_stream(name).await.map_err(|e| failed(&e))?;
        let info = stream.info().await.map_err(|e| failed(&e))?;
        let Some(cluster) = &info.cluster else {
            continue;
        };
        let Some(leader) = cluster.leader.clone() else {
            continue;
        };
        led.push(Led {
            stream: name.clone(),
            leader,
            followers: cluster
                .replicas
                .iter()
                .filter(|p| p.current && !p.offline)
                .map(|p| p.name.clone())
                .collect(),
        });
    }
    let mut leading: HashSet<String> = led.iter().map(|l| l.leader.clone()).collect();
    let mut kept: HashSet<String> = HashSet::new();
    let mut moved = 0;
    for l in &led {
        if kept.insert(l.leader.clone()) {
            continue;
        }
        let Some(free) = l.followers.iter().find(|f| !leading.contains(*f)) else {
            continue;
        };
        step_down(js, &l.stream, free).await?;
        tracing::info!(stream = %l.stream, from = %l.leader, to = %free, "moved a membership lane's leader");
        leading.insert(free.clone());
        kept.insert(free.clone());
        moved += 1;
    }
    Ok(moved)
}

async fn step_down(js: &jetstream::Context, stream: &str, to: &str) -> Result<(), ClusterError> {
    let failed = |reason: String| ClusterError::Stream {
        stream: stream.to_string(),
        reason,
    };
    let body = serde_json::json!({ "placement": { "preferred": to } });
    let reply = js
        .client()
        .request(
            format!("$JS.API.STREAM.LEADER.STEPDOWN.{stream}"),
            body.to_string().into(),
        )
        .await
        .map_err(|e| failed(e.to_string()))?;
    let answer: serde_json::Value =
        serde_json::from_slice(&reply.payload).map_err(|e| failed(e.to_string()))?;
    if let Some(error) = answer.get("error") {
        return Err(failed(error.to_string()));
    }
    Ok(())
}
