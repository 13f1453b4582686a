//! Refusing spool servers that are known to lose acknowledged writes.
//!
//! NATS Server 2.10.20–2.10.22 lost whole streams on process crashes (fixed in 2.10.23,
//! Jepsen's note in its NATS 2.12.1 analysis, 2025-12-08), and every version acknowledges
//! before fsync unless `jetstream { sync_interval: always }` is set (the default flushes
//! every two minutes). Cluster mode starts only against servers that are new enough and
//! report `sync_always` in their monitoring endpoint's `/varz`.

use crate::ClusterError;

/// The oldest server release without known loss of acknowledged writes on crashes.
pub const MINIMUM_VERSION: (u32, u32, u32) = (2, 10, 23);

/// Parses `2.15.1` (also `v2.15.1`, `2.11.0-beta.2`) into its numbers.
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let text = text.trim().trim_start_matches('v');
    let core = text.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next().unwrap_or("0").parse().ok()?;
    Some((major, minor, patch))
}

/// Refuses a server version older than [`MINIMUM_VERSION`] or one that cannot be read.
pub fn check_version(server: &str, version: &str) -> Result<(), ClusterError> {
    let parsed = parse_version(version).ok_or_else(|| ClusterError::UnsafeServer {
        server: server.to_string(),
        reason: format!("unreadable version {version:?}"),
    })?;
    if parsed < MINIMUM_VERSION {
        let (a, b, c) = MINIMUM_VERSION;
        return Err(ClusterError::UnsafeServer {
            server: server.to_string(),
            reason: format!(
                "nats-server {version} is known to lose acknowledged JetStream writes on crashes; \
                 use {a}.{b}.{c} or newer"
            ),
        });
    }
    Ok(())
}

/// Checks a server's `/varz` document: version, JetStream on, fsync before every
/// acknowledgement.
pub fn check_varz(server: &str, varz: &serde_json::Value) -> Result<(), ClusterError> {
    let version = varz
        .get("version")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    check_version(server, version)?;
    let unsafe_server = |reason: &str| ClusterError::UnsafeServer {
        server: server.to_string(),
        reason: reason.to_string(),
    };
    let config = varz
        .pointer("/jetstream/config")
        .ok_or_else(|| unsafe_server("JetStream is not enabled"))?;
    if config.get("sync_always").and_then(|v| v.as_bool()) != Some(true) {
        return Err(unsafe_server(
            "JetStream acknowledges before fsync: set `jetstream { sync_interval: always }` \
             (the default flushes every two minutes, and a power loss loses acknowledged mail)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_before_the_crash_fix_are_refused() {
        assert_eq!(parse_version("v2.15.1"), Some((2, 15, 1)));
        assert_eq!(parse_version("2.11.0-beta.2"), Some((2, 11, 0)));
        assert!(check_version("a", "2.9.10").is_err(), "Debian bookworm's");
        assert!(check_version("a", "2.10.22").is_err());
        assert!(check_version("a", "2.10.23").is_ok());
        assert!(check_version("a", "2.12.1").is_ok());
        assert!(check_version("a", "banana").is_err());
        let err = check_version("nats://n1", "2.10.20")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nats://n1") && err.contains("2.10.23"),
            "{err}"
        );
    }

    #[test]
    fn lazy_fsync_is_refused() {
        let lazy = json!({"version": "2.15.1", "jetstream": {"config": {"sync_interval": 120000000000u64}}});
        let err = check_varz("n1", &lazy).unwrap_err().to_string();
        assert!(err.contains("sync_interval: always"), "{err}");
        let no_js = json!({"version": "2.15.1"});
        assert!(check_varz("n1", &no_js).is_err());
        let good = json!({"version": "2.15.1", "jetstream": {"config": {"sync_always": true}}});
        assert!(check_varz("n1", &good).is_ok());
    }
}
