//! `[cluster]`: cluster mode (absent: a single node with its local spool).

use anyhow::bail;
use serde::Deserialize;

use super::{duration, in_range};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// This node's name, unique in the cluster and stable across restarts.
    pub node: Option<String>,
    /// Spool servers' client URLs.
    pub servers: Option<Vec<String>>,
    /// Their monitoring URLs, checked at start for safe settings.
    pub monitor: Option<Vec<String>>,
    pub shards: Option<u64>,
    pub replicas: Option<u64>,
    pub shard_wait: Option<String>,
    pub store_deadline: Option<String>,
    pub heartbeat: Option<String>,
    pub fence_after: Option<String>,
    pub dead_after: Option<String>,
}

/// `None` when there is no `[cluster]` section. Defaults here and in docs/configuration.md.
pub fn validate(raw: Option<&RawCluster>) -> anyhow::Result<Option<cluster::node::ClusterConfig>> {
    let Some(raw) = raw else { return Ok(None) };
    let Some(node) = raw.node.clone() else {
        bail!("cluster.node: required in cluster mode");
    };
    if node.is_empty()
        || node.len() > 64
        || !node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("cluster.node: {node:?} must be 1-64 letters, digits, '-' or '_'");
    }
    let servers = raw.servers.clone().unwrap_or_default();
    if servers.is_empty() {
        bail!("cluster.servers: at least one spool server URL is required");
    }
    for (i, url) in servers.iter().enumerate() {
        if !(url.starts_with("nats://") || url.starts_with("tls://")) {
            bail!("cluster.servers[{i}]: {url:?} is not a nats:// or tls:// URL");
        }
    }
    let monitor = raw.monitor.clone().unwrap_or_default();
    if monitor.is_empty() {
        bail!(
            "cluster.monitor: the servers' monitoring URLs are required (their fsync setting is checked)"
        );
    }
    for (i, url) in monitor.iter().enumerate() {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("cluster.monitor[{i}]: {url:?} is not an http(s) URL");
        }
    }
    let replicas = in_range("cluster.replicas", raw.replicas.unwrap_or(3), 1, 5)? as usize;
    let shards = in_range("cluster.shards", raw.shards.unwrap_or(6), 1, 64)? as u32;
    let heartbeat = duration("cluster.heartbeat", raw.heartbeat.as_deref(), "500ms")?;
    let fence_after = duration("cluster.fence_after", raw.fence_after.as_deref(), "2s")?;
    let dead_after = duration("cluster.dead_after", raw.dead_after.as_deref(), "3s")?;
    if heartbeat.is_zero() || fence_after < heartbeat * 2 || dead_after <= fence_after {
        bail!(
            "cluster.heartbeat, fence_after, dead_after: need heartbeat > 0, fence_after ≥ 2 × heartbeat and dead_after > fence_after (a node must stop delivering before the others take its mail)"
        );
    }
    let shard_wait = duration("cluster.shard_wait", raw.shard_wait.as_deref(), "400ms")?;
    let store_deadline = duration(
        "cluster.store_deadline",
        raw.store_deadline.as_deref(),
        "10s",
    )?;
    if shard_wait.is_zero() || store_deadline < shard_wait {
        bail!("cluster.shard_wait: must be above zero and no longer than cluster.store_deadline");
    }
    Ok(Some(cluster::node::ClusterConfig {
        servers,
        monitor,
        replica: cluster::replica::ReplicaConfig {
            node: node.clone(),
            layout: cluster::streams::Layout { shards, replicas },
            shard_wait,
            store_deadline,
        },
        membership: cluster::membership::MembershipConfig {
            node,
            heartbeat,
            dead_after,
            fence_after,
            replicas,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Option<cluster::node::ClusterConfig>> {
        let raw: RawCluster = toml::from_str(text)?;
        validate(Some(&raw))
    }

    #[test]
    fn cluster_settings_are_checked_and_name_their_key() {
        assert!(validate(None).unwrap().is_none(), "no section: single node");
        let good = parse(
            "node = \"mx1\"\nservers = [\"nats://10.0.0.1:4222\"]\nmonitor = [\"http://10.0.0.1:8222\"]\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(good.replica.layout.shards, 6);
        assert_eq!(
            good.membership.dead_after,
            std::time::Duration::from_secs(3)
        );
        for (text, key) in [
            (
                "servers = [\"nats://a:1\"]\nmonitor = [\"http://a:2\"]",
                "cluster.node",
            ),
            (
                "node = \"a b\"\nservers = [\"nats://a:1\"]\nmonitor = [\"http://a:2\"]",
                "cluster.node",
            ),
            (
                "node = \"a\"\nmonitor = [\"http://a:2\"]",
                "cluster.servers",
            ),
            (
                "node = \"a\"\nservers = [\"http://a:1\"]\nmonitor = [\"http://a:2\"]",
                "cluster.servers[0]",
            ),
            (
                "node = \"a\"\nservers = [\"nats://a:1\"]",
                "cluster.monitor",
            ),
            (
                "node = \"a\"\nservers = [\"nats://a:1\"]\nmonitor = [\"http://a:2\"]\nreplicas = 9",
                "cluster.replicas",
            ),
            (
                "node = \"a\"\nservers = [\"nats://a:1\"]\nmonitor = [\"http://a:2\"]\ndead_after = \"1s\"",
                "dead_after",
            ),
        ] {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
