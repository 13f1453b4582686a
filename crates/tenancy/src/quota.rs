//! Per-tenant sending limits: a rate (messages per second, a token bucket one second deep)
//! and a daily quota (messages per UTC day), counting every way in together. A refusal says
//! when to come back (HTTP 429 with Retry-After, SMTP 451 4.7.1). Limits are read from the control plane and refreshed every few seconds, so
//! `tsubame tenant` changes (and suspensions) take effect without a restart; daily counts are kept in memory
//! and written to the control plane once a second, so a restart keeps them (a crash can lose
//! at most the last second's count).

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
    used_today: i64,
    unsaved: i64,
}

/// The limiter every ingress asks before spooling.
#[derive(Default)]
pub struct Quotas {
    tenants: Mutex<HashMap<String, TenantState>>,
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
        if let Some(quota) = t.quota
            && t.used_today + n > quota
        {
            return Err(too_many(
                format!(
                    "daily quota of {quota} messages reached ({} used today); it resets at 00:00 UTC",
                    t.used_today
                ),
                seconds_left,
            ));
        }
        if let Some(rate) = t.rate {
            let rate = rate as f64;
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
        t.used_today += n;
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
        let known = {
            let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            match tenants.get_mut(tenant_id).filter(|t| t.day == day) {
                Some(t) => {
                    t.suspended = tenant.suspended.clone();
                    t.rate = tenant.rate_per_sec;
                    t.quota = tenant.daily_quota;
                    t.fetched = now;
                    true
                }
                None => false,
            }
        };
        if known {
            return Ok(());
        }
        // First sight today: what was counted before a restart counts too.
        let used = store
            .usage(tenant_id, day)
            .await
            .map_err(crate::unavailable)?;
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let unsaved = tenants
            .get(tenant_id)
            .filter(|t| t.day == day)
            .map_or(0, |t| t.unsaved);
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
                used_today: used + unsaved,
                unsaved,
            },
        );
        Ok(())
    }

    /// Messages counted today for a tenant this process has seen today (saved or not).
    pub fn used_today(&self, tenant_id: &str, day: i64) -> Option<i64> {
        let tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        tenants
            .get(tenant_id)
            .filter(|t| t.day == day)
            .map(|t| t.used_today)
    }

    /// Writes the counts not yet saved. Called once a second by the server.
    pub async fn flush<S: ControlStore>(&self, store: &S) {
        let pending: Vec<(String, i64, i64)> = {
            let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            tenants
                .iter_mut()
                .filter(|(_, t)| t.unsaved > 0)
                .map(|(id, t)| (id.clone(), t.day, std::mem::take(&mut t.unsaved)))
                .collect()
        };
        for (tenant, day, n) in pending {
            if let Err(err) = store.add_usage(&tenant, day, n).await {
                tracing::warn!(tenant, error = %err, "could not save the daily count; retrying");
                let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(t) = tenants.get_mut(&tenant).filter(|t| t.day == day) {
                    t.unsaved += n;
                }
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
