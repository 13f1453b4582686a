//! Per-tenant sending limits: a rate (messages per second, a token bucket one second deep)
//! and a daily quota (messages per UTC day), counting every way in together. A refusal says
//! when to come back (HTTP 429 with Retry-After, SMTP 451 4.7.1). Limits and the day's count
//! so far are read from the control plane every few seconds, so `tsubame tenant` changes
//! (and suspensions) take effect without a restart; this node's counts are kept in memory
//! and added to the control plane's once a second, so a restart keeps them (a crash can lose
//! at most the last second's count).
//!
//! In cluster mode each node uses its share ([`shares::Share`]) of the rate and of what is
//! left of the day's quota at the last reading: the nodes' parts add up to the limit, with
//! no round trip per message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use store::ControlStore;

use crate::Refusal;

/// How long a tenant's limits are used before they are read again.
const LIMITS_TTL: Duration = Duration::from_secs(5);

struct TenantState {
    suspended: Option<String>,
    rate: Option<i64>,
    quota: Option<i64>,
    fetched: Instant,
    tokens: f64,
    refilled: Instant,
    day: i64,
    /// The day's count in the control plane at the last reading (every node's).
    used_stored: i64,
    /// Admitted here since that reading, or not yet in the control plane when it was taken.
    since_reading: i64,
    unsaved: i64,
    /// Taken by a flush whose write has not finished.
    saving: i64,
}

impl TenantState {
    fn used_today(&self) -> i64 {
        self.used_stored + self.since_reading
    }
}

/// The limiter every ingress asks before spooling.
#[derive(Default)]
pub struct Quotas {
    tenants: Mutex<HashMap<String, TenantState>>,
    /// This node's share of every tenant's limits (all of them outside cluster mode).
    pub shares: shares::Shares,
}

fn utc_day_and_seconds_left() -> (i64, u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    ((now / 86_400) as i64, 86_400 - now % 86_400)
}

impl Quotas {
    /// Admits `messages` for the tenant or says when to come back.
    pub async fn admit<S: ControlStore>(
        &self,
        store: &S,
        tenant_id: &str,
        messages: usize,
    ) -> Result<(), Refusal> {
        let now = Instant::now();
        let (day, seconds_left) = utc_day_and_seconds_left();
        let fresh = {
            let tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            tenants
                .get(tenant_id)
                .is_some_and(|t| now.duration_since(t.fetched) < LIMITS_TTL && t.day == day)
        };
        if !fresh {
            self.refresh(store, tenant_id, day, now).await?;
        }
        let n = messages as i64;
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let Some(t) = tenants.get_mut(tenant_id) else {
            return Ok(());
        };
        if let Some(reason) = &t.suspended {
            return Err(Refusal::Suspended(reason.clone()));
        }
        let share = self.shares.get();
        if let Some(quota) = t.quota {
            // This node may use its share of what was left at the last reading.
            let left = quota.saturating_sub(t.used_stored).max(0) as u64;
            let allowance = share.part(left) as i64;
            if t.since_reading + n > allowance {
                return Err(too_many(
                    format!(
                        "daily quota of {quota} messages reached ({} used today); it resets at 00:00 UTC",
                        t.used_today()
                    ),
                    if share.is_whole() {
                        seconds_left
                    } else {
                        // Other nodes may have some left; the shares move as they use it.
                        seconds_left.min(LIMITS_TTL.as_secs())
                    },
                ));
            }
        }
        if let Some(rate) = t.rate {
            let rate = share.part(rate.max(0) as u64) as f64;
            if rate <= 0.0 {
                return Err(too_many(
                    "rate limit reached: this node's share of it is used by the others".into(),
                    1,
                ));
            }
            t.tokens = (t.tokens + now.duration_since(t.refilled).as_secs_f64() * rate).min(rate);
            t.refilled = now;
            // A batch larger than one second's worth passes when the bucket is full and
            // leaves it in debt, so the average rate still holds.
            if t.tokens < (n as f64).min(rate) {
                let wait = ((n as f64).min(rate) - t.tokens) / rate;
                return Err(too_many(
                    format!("rate limit of {rate} messages per second"),
                    wait.ceil().max(1.0) as u64,
                ));
            }
            t.tokens -= n as f64;
        }
        t.since_reading += n;
        t.unsaved += n;
        Ok(())
    }

    async fn refresh<S: ControlStore>(
        &self,
        store: &S,
        tenant_id: &str,
        day: i64,
        now: Instant,
    ) -> Result<(), Refusal> {
        let tenant = store.tenant(tenant_id).await.map_err(crate::unavailable)?;
        let Some(tenant) = tenant else {
            return Err(Refusal::UnknownTenant);
        };
        // Every node's count so far; ours not yet written is added below.
        let used = store
            .usage(tenant_id, day)
            .await
            .map_err(crate::unavailable)?;
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        match tenants.get_mut(tenant_id).filter(|t| t.day == day) {
            Some(t) => {
                t.suspended = tenant.suspended.clone();
                t.rate = tenant.rate_per_sec;
                t.quota = tenant.daily_quota;
                t.fetched = now;
                t.used_stored = used;
                t.since_reading = t.unsaved + t.saving;
            }
            None => {
                tenants.insert(
                    tenant_id.to_string(),
                    TenantState {
                        suspended: tenant.suspended,
                        rate: tenant.rate_per_sec,
                        quota: tenant.daily_quota,
                        fetched: now,
                        tokens: tenant.rate_per_sec.unwrap_or(0) as f64,
                        refilled: now,
                        day,
                        used_stored: used,
                        since_reading: 0,
                        unsaved: 0,
                        saving: 0,
                    },
                );
            }
        }
        Ok(())
    }

    /// Messages counted today for a tenant this process has seen today (saved or not).
    pub fn used_today(&self, tenant_id: &str, day: i64) -> Option<i64> {
        let tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        tenants
            .get(tenant_id)
            .filter(|t| t.day == day)
            .map(|t| t.used_today())
    }

    /// Writes the counts not yet saved. Called once a second by the server.
    pub async fn flush<S: ControlStore>(&self, store: &S) {
        let pending: Vec<(String, i64, i64)> = {
            let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            tenants
                .iter_mut()
                .filter(|(_, t)| t.unsaved > 0)
                .map(|(id, t)| {
                    let n = std::mem::take(&mut t.unsaved);
                    t.saving += n;
                    (id.clone(), t.day, n)
                })
                .collect()
        };
        for (tenant, day, n) in pending {
            let saved = store.add_usage(&tenant, day, n).await;
            let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            let Some(t) = tenants.get_mut(&tenant).filter(|t| t.day == day) else {
                continue;
            };
            t.saving -= n;
            if let Err(err) = saved {
                tracing::warn!(tenant, error = %err, "could not save the daily count; retrying");
                t.unsaved += n;
            }
        }
    }
}

fn too_many(message: String, retry_after_secs: u64) -> Refusal {
    Refusal::Limited {
        message,
        retry_after_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::SqliteStore;

    #[tokio::test]
    async fn a_suspension_stops_a_tenant_already_admitted_once_its_limits_are_read_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("control.db"))
            .await
            .expect("store");
        let tenant = store.add_tenant("acme").await.expect("tenant");
        let quotas = Quotas::default();
        quotas.admit(&store, &tenant.id, 1).await.expect("active");

        store
            .set_tenant_suspended(&tenant.id, Some("unpaid invoice"))
            .await
            .expect("suspend");
        // Read again as if the limits had gone stale.
        quotas
            .refresh(
                &store,
                &tenant.id,
                utc_day_and_seconds_left().0,
                Instant::now(),
            )
            .await
            .expect("refresh");
        assert_eq!(
            quotas.admit(&store, &tenant.id, 1).await,
            Err(Refusal::Suspended("unpaid invoice".into()))
        );

        store
            .set_tenant_suspended(&tenant.id, None)
            .await
            .expect("reactivate");
        quotas
            .refresh(
                &store,
                &tenant.id,
                utc_day_and_seconds_left().0,
                Instant::now(),
            )
            .await
            .expect("refresh");
        quotas
            .admit(&store, &tenant.id, 1)
            .await
            .expect("active again");
        assert_eq!(
            quotas.used_today(&tenant.id, utc_day_and_seconds_left().0),
            Some(2)
        );
    }
}

#[cfg(test)]
mod cluster_tests {
    use super::*;
    use shares::Share;
    use store::SqliteStore;

    /// Two nodes (two limiters) on one control plane, each with its share.
    async fn two_nodes(
        rate: Option<i64>,
        quota: Option<i64>,
    ) -> (SqliteStore, String, [Quotas; 2]) {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        let store = SqliteStore::open(&dir.join("control.db"))
            .await
            .expect("store");
        let tenant = store.add_tenant("acme").await.expect("tenant");
        store
            .set_tenant_limits(&tenant.id, rate, quota)
            .await
            .expect("limits");
        let nodes = [Quotas::default(), Quotas::default()];
        for (rank, node) in nodes.iter().enumerate() {
            node.shares.set(Share {
                rank: rank as u32,
                count: 2,
            });
        }
        (store, tenant.id, nodes)
    }

    /// Admits one message at a time on both nodes until both refuse; returns how many.
    async fn admit_all(store: &SqliteStore, tenant: &str, nodes: &[Quotas; 2]) -> i64 {
        let mut admitted = 0;
        loop {
            let mut any = false;
            for node in nodes {
                if node.admit(store, tenant, 1).await.is_ok() {
                    admitted += 1;
                    any = true;
                }
            }
            if !any {
                return admitted;
            }
        }
    }

    #[tokio::test]
    async fn the_nodes_rates_add_up_to_the_tenants_rate() {
        let (store, tenant, nodes) = two_nodes(Some(11), None).await;
        // One second's burst on each node: 6 + 5 (the odd one goes to one rank).
        assert_eq!(admit_all(&store, &tenant, &nodes).await, 11);
    }

    #[tokio::test]
    async fn the_daily_quota_holds_across_nodes_and_moves_to_where_it_is_used() {
        let (store, tenant, nodes) = two_nodes(None, Some(100)).await;
        // Each node may use half of what is left: 100 in all, never more.
        assert_eq!(admit_all(&store, &tenant, &nodes).await, 100);
        assert!(nodes[0].admit(&store, &tenant, 1).await.is_err());

        // Tomorrow-like reset of the counts is not needed to see the shares move: a fresh
        // quota, used only on node 0, which after readings gets what node 1 left unused.
        let (store, tenant, nodes) = two_nodes(None, Some(100)).await;
        let mut on_zero = 0;
        for _ in 0..6 {
            while nodes[0].admit(&store, &tenant, 1).await.is_ok() {
                on_zero += 1;
            }
            nodes[0].flush(&store).await;
            let day = utc_day_and_seconds_left().0;
            nodes[0]
                .refresh(&store, &tenant, day, Instant::now())
                .await
                .expect("reading");
        }
        assert!(on_zero >= 97 && on_zero <= 100, "{on_zero}");
        assert_eq!(
            store
                .usage(&tenant, utc_day_and_seconds_left().0)
                .await
                .unwrap(),
            on_zero
        );
    }
}
