//! The background loop of `tsubame serve`: takes queued jobs, and jobs whose worker died
//! (lease expired), up to `workers` at once, so several tenants' imports run side by side.

use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use tokio::sync::{Notify, Semaphore};

use crate::{ImportsConfig, Store};

/// This process's name as a job owner.
pub fn owner_name() -> String {
    let mut raw = [0u8; 8];
    rand::rng().fill_bytes(&mut raw);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", std::process::id())
}

/// Runs forever; `wake` is notified when a job is added, so it starts at once.
pub async fn run<S: Store>(store: S, config: ImportsConfig, wake: Arc<Notify>) {
    let owner = owner_name();
    let slots = Arc::new(Semaphore::new(config.workers.max(1)));
    let config = Arc::new(config);
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        match store
            .claim_import(None, &owner, config.lease.as_millis() as i64)
            .await
        {
            Ok(Some(job)) => {
                tracing::info!(job = %job.id, tenant = %job.tenant_id, resumed_at = job.records_done, "import started");
                let (store, config, owner) = (store.clone(), config.clone(), owner.clone());
                tokio::spawn(async move {
                    let id = job.id.clone();
                    let _ = crate::worker::work(&store, &config, job, &owner, |_| {}).await;
                    tracing::info!(job = %id, "import finished");
                    drop(permit);
                });
                continue;
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "looking for imports failed"),
        }
        drop(permit);
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
