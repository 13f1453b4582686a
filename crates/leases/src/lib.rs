//! A duty: work the cluster does once. A single node is always on duty. In a cluster, each
//! node tries to hold the duty's lease in the shared control plane ([`LeaseStore`]); the
//! holder renews it every quarter of its term, and counts itself on duty only while its
//! last renewal, sent at most `term - margin` ago, stands. A holder that dies (or cannot
//! reach the database) stops renewing; another node takes the lease once the term has run
//! out on the database's clock, and the old holder has been off duty since before then.
//!
//! Workers call [`Duty::wait`] before each pass of their loop and [`Duty::held`] between
//! steps, so a pass in progress when the duty moves is the only overlap.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use store::LeaseStore;
use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Duty {
    /// None: always on duty (a single node).
    lease: Option<Arc<Held>>,
}

/// The lease and its renewal task, stopped when the last handle goes.
struct Held {
    lease: Arc<Lease>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Lease {
    name: String,
    /// Until when this node counts as holding the lease.
    until: Mutex<Option<Instant>>,
    taken: Notify,
}

impl Duty {
    /// On duty for good: nobody else shares the control plane.
    pub fn always() -> Duty {
        Duty { lease: None }
    }

    /// Holds the lease `name` for `owner` whenever it can, renewing it every `term / 4`.
    pub fn leased<S: LeaseStore + Clone + 'static>(
        store: S,
        name: &str,
        owner: &str,
        term: Duration,
    ) -> Duty {
        let lease = Arc::new(Lease {
            name: name.to_string(),
            until: Mutex::new(None),
            taken: Notify::new(),
        });
        let task = tokio::spawn(keep(store, lease.clone(), owner.to_string(), term));
        Duty {
            lease: Some(Arc::new(Held { lease, task })),
        }
    }

    /// On duty now.
    pub fn held(&self) -> bool {
        match &self.lease {
            None => true,
            Some(held) => held.lease.holds(),
        }
    }

    /// Waits until this node is on duty.
    pub async fn wait(&self) {
        let Some(held) = &self.lease else {
            return;
        };
        let lease = &held.lease;
        loop {
            let taken = lease.taken.notified();
            if lease.holds() {
                return;
            }
            // Also looks again now and then: the term may end without a notification.
            let _ = tokio::time::timeout(Duration::from_secs(1), taken).await;
        }
    }
}

impl Lease {
    fn holds(&self) -> bool {
        self.until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|until| Instant::now() < until)
    }
}

/// The renewal loop. A renewal counts from when it was sent, less a margin for clocks
/// running at slightly different rates.
async fn keep<S: LeaseStore>(store: S, lease: Arc<Lease>, owner: String, term: Duration) {
    let every = term / 4;
    let margin = term / 4;
    let ttl_ms = term.as_millis() as i64;
    let mut held = false;
    loop {
        let sent = Instant::now();
        let claim = tokio::time::timeout(every, store.claim_lease(&lease.name, &owner, ttl_ms));
        match claim.await {
            Ok(Ok(true)) => {
                *lease.until.lock().unwrap_or_else(|p| p.into_inner()) = Some(sent + term - margin);
                if !held {
                    tracing::info!(duty = %lease.name, "on duty: this node holds the lease");
                    held = true;
                }
                lease.taken.notify_waiters();
            }
            Ok(Ok(false)) => {
                *lease.until.lock().unwrap_or_else(|p| p.into_inner()) = None;
                if held {
                    tracing::warn!(duty = %lease.name, "off duty: another node holds the lease");
                    held = false;
                }
            }
            Ok(Err(e)) => tracing::warn!(duty = %lease.name, error = %e, "lease not renewed"),
            Err(_) => tracing::warn!(duty = %lease.name, "lease renewal timed out"),
        }
        if held && !lease.holds() {
            tracing::warn!(duty = %lease.name, "off duty: the lease could not be renewed in time");
            held = false;
        }
        metrics::gauge!("tsubame_cluster_duty", "duty" => lease.name.clone())
            .set(if lease.holds() { 1.0 } else { 0.0 });
        tokio::time::sleep(every.saturating_sub(sent.elapsed())).await;
    }
}
