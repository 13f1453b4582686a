//! What the runner observes at each evaluation, gathered from the parts of the server:
//! the delivery queue (sizes, oldest message, sites' suspensions), the spool (stored and
//! refused inserts, its disk), the delivery activity per site, and — at most once a
//! minute — failing webhooks, tenants' bounce and complaint rates over the last day and
//! the TLS certificate's expiry.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use store::rollups::Resolution;
use store::{ControlPlane, ControlStore, EventKind, EventStore};

use crate::activity::Activity;
use crate::alerts::conditions::{FailingWebhook, Sample, TenantMail};

/// The slow observations.
#[derive(Debug, Clone, Default)]
pub struct Slow {
    pub webhooks: Vec<FailingWebhook>,
    pub tenants: Vec<TenantMail>,
    pub tls_not_after_ms: Option<i64>,
}

pub struct Observer {
    pub spool: spool::Spool,
    pub spool_dir: PathBuf,
    pub delivery: Option<delivery::Engine>,
    pub activity: Arc<Activity>,
    pub store: ControlPlane,
    /// The server's certificate (PEM), when it has one.
    pub tls_cert: Option<PathBuf>,
    cpu: Mutex<Option<(i64, u64)>>,
}

impl Observer {
    pub fn new(
        spool: spool::Spool,
        spool_dir: PathBuf,
        delivery: Option<delivery::Engine>,
        activity: Arc<Activity>,
        store: ControlPlane,
        tls_cert: Option<PathBuf>,
    ) -> Observer {
        Observer {
            spool,
            spool_dir,
            delivery,
            activity,
            store,
            tls_cert,
            cpu: Mutex::new(None),
        }
    }

    pub fn sample(&self, wall_ms: i64) -> Sample {
        let mut sample = Sample {
            at_ms: wall_ms,
            sites: self.activity.sites(),
            stored: self.spool.inserted_count(),
            refused: self.spool.insert_failed_count(),
            ..Default::default()
        };
        if let Some(engine) = &self.delivery {
            let summary = engine.summary();
            sample.queued =
                summary.ready_recipients + summary.deferred_recipients + summary.held_recipients;
            sample.oldest_ms = summary.oldest_ms.map(|ms| ms as i64);
            for site in &summary.sites {
                let known = sample.sites.iter_mut().find(|s| s.site == site.site);
                let s = match known {
                    Some(s) => s,
                    None => {
                        sample.sites.push(crate::alerts::conditions::SiteSample {
                            site: site.site.clone(),
                            provider: site.provider.clone().unwrap_or_else(|| site.site.clone()),
                            ..Default::default()
                        });
                        sample.sites.last_mut().unwrap_or_else(|| unreachable!())
                    }
                };
                if let Some(p) = &site.provider {
                    s.provider = p.clone();
                }
                s.ready = site.ready_recipients;
                s.suspended = (site.hold == Some("suspended")).then(|| {
                    site.hold_reason
                        .clone()
                        .unwrap_or_else(|| "suspended".into())
                });
            }
        }
        if let Some((total, free)) = disk(&self.spool_dir) {
            sample.disk_total = total;
            sample.disk_free = free;
        }
        sample
    }

    /// CPU used by this process since the last call, percent of one core.
    pub fn cpu_pct(&self, wall_ms: i64) -> f64 {
        let Some(ticks) = process_ticks() else {
            return 0.0;
        };
        let mut last = self.cpu.lock().unwrap_or_else(|e| e.into_inner());
        let pct = match *last {
            Some((at, before)) if wall_ms > at => {
                // Linux reports in clock ticks of 1/100 s.
                (ticks.saturating_sub(before) as f64 * 10.0) * 100.0 / (wall_ms - at) as f64
            }
            _ => 0.0,
        };
        *last = Some((wall_ms, ticks));
        pct
    }

    pub async fn slow(&self, wall_ms: i64) -> Slow {
        let mut slow = Slow::default();
        let tenants = self.store.tenants().await.unwrap_or_default();
        let name = |id: &str| {
            tenants
                .iter()
                .find(|t| t.id == id)
                .map(|t| t.name.clone())
                .unwrap_or_else(|| id.to_string())
        };
        if let Ok(hooks) = self.store.all_webhooks().await {
            for h in hooks {
                if let Some(since) = h.failing_since_ms {
                    slow.webhooks.push(FailingWebhook {
                        tenant: name(&h.tenant_id),
                        url: h.url.clone(),
                        since_ms: since,
                    });
                }
            }
        }
        for t in &tenants {
            let Ok(rows) = self
                .store
                .rollup(&t.id, Resolution::Hour, wall_ms - 86_400_000, wall_ms, None)
                .await
            else {
                continue;
            };
            let mut m = TenantMail {
                tenant: t.name.clone(),
                sent: 0,
                delivered: 0,
                bounced: 0,
                complained: 0,
            };
            for r in rows {
                let n = r.count.max(0) as u64;
                match r.kind {
                    EventKind::Accepted => m.sent += n,
                    EventKind::Delivered => m.delivered += n,
                    EventKind::Bounced => m.bounced += n,
                    EventKind::Complained => m.complained += n,
                    _ => {}
                }
            }
            slow.tenants.push(m);
        }
        if let Some(path) = &self.tls_cert
            && let Ok(pem) = std::fs::read(path)
        {
            slow.tls_not_after_ms = crate::tls::not_after_ms(&pem);
        }
        slow
    }
}

fn disk(dir: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a zeroed struct statvfs fills.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let block = st.f_frsize as u64;
    Some((st.f_blocks as u64 * block, st.f_bavail as u64 * block))
}

/// utime + stime of this process, in clock ticks.
fn process_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is [0]; utime and stime are the 14th and 15th of the
    // whole line, [11] and [12] here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}
