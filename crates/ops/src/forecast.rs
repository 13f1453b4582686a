//! Capacity forecast for a planned campaign: how long its delivery takes under the current
//! shaping and the node's capacity, the spool disk it needs, and whether the delivery
//! latency objective holds while it runs. No I/O: the runner fills in each lane (a site,
//! with its provider's limits and what the site has been doing) and the node's capacity.
//!
//! The model, per site ("lane"): attempts are paced by the site's message rate (a token
//! bucket that starts full: one second's worth, as the delivery engine's does) and by its
//! connections (each connection one transaction at a time, at the site's mean transaction
//! time); a share of attempts is deferred (the site's recent deferral share) and comes
//! back. All lanes together are capped by the node's capacity (shared in proportion to
//! what each could take), and a campaign `rate_per_sec` paces how fast recipients are
//! queued (spread over the lanes by their share). Time advances in small steps until every
//! recipient is delivered.

use serde::Serialize;

/// One site of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    pub site: String,
    pub provider: String,
    pub recipients: u64,
    /// Messages per second the shaping allows (none: unlimited).
    pub rate: Option<f64>,
    pub connections: u32,
    /// Seconds per message on one connection.
    pub transaction_s: f64,
    /// Share of attempts deferred (0 … <1).
    pub deferral: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub lanes: Vec<Lane>,
    /// Attempts per second the node sustains.
    pub node_rate: f64,
    pub message_bytes: u64,
    /// The campaign's own pacing, recipients per second.
    pub campaign_rate: Option<f64>,
    /// The delivery latency objective's threshold, seconds.
    pub latency_threshold_s: Option<f64>,
    /// Free bytes on the spool's disk.
    pub disk_free: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaneForecast {
    pub site: String,
    pub provider: String,
    pub recipients: u64,
    /// Delivered per second while it runs (averaged).
    pub rate: f64,
    /// What limits it: `message_rate`, `connections`, `node` or `campaign_rate`.
    pub bound: &'static str,
    pub seconds: f64,
    /// The longest a message queued for this site behind the campaign waits, seconds.
    pub worst_wait_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    pub seconds: f64,
    pub recipients: u64,
    pub lanes: Vec<LaneForecast>,
    /// Spool space at the peak of the queue (content and envelope per recipient).
    pub spool_bytes: u64,
    pub disk_free: Option<u64>,
    pub fits_disk: Option<bool>,
    pub latency_threshold_s: Option<f64>,
    pub worst_wait_s: f64,
    pub latency_holds: Option<bool>,
    pub node_rate: f64,
}

/// Spool bytes per queued recipient beyond its content: envelope, index and record framing.
pub const PER_RECIPIENT_OVERHEAD: u64 = 512;

struct State {
    queued: f64,
    enqueued: f64,
    delivered: f64,
    tokens: f64,
    done_at: Option<f64>,
    worst_wait: f64,
    limited: [f64; 4],
}

pub fn forecast(plan: &Plan) -> Forecast {
    let total: u64 = plan.lanes.iter().map(|l| l.recipients).sum();
    let cap = |l: &Lane| {
        let by_connections = f64::from(l.connections.max(1)) / l.transaction_s.max(1e-4);
        (
            l.rate.unwrap_or(f64::INFINITY).min(by_connections),
            by_connections,
        )
    };
    // A step small enough for the fastest lane's seconds, large enough to finish quickly.
    let slowest = plan
        .lanes
        .iter()
        .map(|l| {
            l.recipients as f64 / (cap(l).0.min(plan.node_rate) * (1.0 - l.deferral)).max(1e-6)
        })
        .fold(0.0, f64::max);
    let estimate = slowest.max(total as f64 / plan.node_rate.max(1e-6));
    let dt = (estimate / 20_000.0).clamp(0.001, 60.0);
    let mut states: Vec<State> = plan
        .lanes
        .iter()
        .map(|l| State {
            queued: 0.0,
            enqueued: 0.0,
            delivered: 0.0,
            tokens: l.rate.map_or(f64::INFINITY, |r| r.max(1.0)),
            done_at: (l.recipients == 0).then_some(0.0),
            worst_wait: 0.0,
            limited: [0.0; 4],
        })
        .collect();
    let mut t = 0.0;
    let mut peak_queued = 0.0f64;
    let limit_steps = 5_000_000;
    for _ in 0..limit_steps {
        if states.iter().all(|s| s.done_at.is_some()) {
            break;
        }
        // Queue: all at once, or at the campaign's pace spread by share.
        for (l, s) in plan.lanes.iter().zip(states.iter_mut()) {
            let n = l.recipients as f64;
            let add = match plan.campaign_rate {
                None => n - s.enqueued,
                Some(r) => (r * dt * n / total.max(1) as f64).min(n - s.enqueued),
            };
            s.enqueued += add;
            s.queued += add;
        }
        // What each lane could attempt in this step, then the node's share.
        let wants: Vec<(f64, usize)> = plan
            .lanes
            .iter()
            .zip(states.iter_mut())
            .map(|(l, s)| {
                let (_, by_connections) = cap(l);
                if let Some(r) = l.rate {
                    s.tokens = (s.tokens + r * dt).min(r.max(1.0));
                }
                let by_rate = if l.rate.is_some() {
                    s.tokens
                } else {
                    f64::INFINITY
                };
                let by_conn = by_connections * dt;
                let want = s.queued.min(by_rate).min(by_conn);
                let bound = if want >= s.queued {
                    4
                } else if by_rate <= by_conn {
                    0
                } else {
                    1
                };
                (want.max(0.0), bound)
            })
            .collect();
        let asked: f64 = wants.iter().map(|w| w.0).sum();
        let node = plan.node_rate * dt;
        let scale = if asked > node { node / asked } else { 1.0 };
        t += dt;
        let mut queued_now = 0.0;
        for ((l, s), (want, bound)) in plan.lanes.iter().zip(states.iter_mut()).zip(wants) {
            if s.done_at.is_some() {
                continue;
            }
            let attempts = want * scale;
            if l.rate.is_some() {
                s.tokens -= attempts;
            }
            let delivered = attempts * (1.0 - l.deferral.clamp(0.0, 0.99));
            s.queued -= delivered;
            s.delivered += delivered;
            let which = if scale < 1.0 {
                2
            } else if bound == 4 {
                3
            } else {
                bound
            };
            s.limited[which] += dt;
            let (limit, _) = cap(l);
            let pace = (limit.min(plan.node_rate) * (1.0 - l.deferral)).max(1e-6);
            s.worst_wait = s.worst_wait.max(s.queued / pace);
            if s.delivered >= l.recipients as f64 - 0.5 {
                s.done_at = Some(t);
                s.queued = 0.0;
            }
            queued_now += s.queued.max(0.0);
        }
        peak_queued = peak_queued.max(queued_now);
    }
    if plan.campaign_rate.is_none() {
        peak_queued = peak_queued.max(total as f64);
    }
    let lanes: Vec<LaneForecast> = plan
        .lanes
        .iter()
        .zip(&states)
        .map(|(l, s)| {
            let seconds = s.done_at.unwrap_or(t);
            let names = ["message_rate", "connections", "node", "campaign_rate"];
            let most = (0..4)
                .max_by(|a, b| s.limited[*a].total_cmp(&s.limited[*b]))
                .unwrap_or(0);
            LaneForecast {
                site: l.site.clone(),
                provider: l.provider.clone(),
                recipients: l.recipients,
                rate: if seconds > 0.0 {
                    l.recipients as f64 / seconds
                } else {
                    0.0
                },
                bound: names[most],
                seconds,
                worst_wait_s: s.worst_wait,
            }
        })
        .collect();
    let seconds = lanes.iter().map(|l| l.seconds).fold(0.0, f64::max);
    let worst_wait_s = lanes.iter().map(|l| l.worst_wait_s).fold(0.0, f64::max);
    let spool_bytes = (peak_queued.ceil() as u64) * (plan.message_bytes + PER_RECIPIENT_OVERHEAD);
    Forecast {
        seconds,
        recipients: total,
        lanes,
        spool_bytes,
        disk_free: plan.disk_free,
        fits_disk: plan.disk_free.map(|free| spool_bytes < free),
        latency_threshold_s: plan.latency_threshold_s,
        worst_wait_s,
        latency_holds: plan.latency_threshold_s.map(|th| worst_wait_s <= th),
        node_rate: plan.node_rate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(site: &str, recipients: u64, rate: Option<f64>, connections: u32) -> Lane {
        Lane {
            site: site.into(),
            provider: site.into(),
            recipients,
            rate,
            connections,
            transaction_s: 0.01,
            deferral: 0.0,
        }
    }

    fn plan(lanes: Vec<Lane>) -> Plan {
        Plan {
            lanes,
            node_rate: 10_000.0,
            message_bytes: 10_000,
            campaign_rate: None,
            latency_threshold_s: Some(7.0),
            disk_free: Some(1 << 30),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= b * 0.02 + 0.05
    }

    #[test]
    fn the_slowest_lane_sets_the_duration() {
        // Docomo at 100/s: a second's burst, then (1,100 − 100) / 100 = 10 s.
        let f = forecast(&plan(vec![
            lane("gmail", 2_400, Some(300.0), 20),
            lane("docomo", 1_100, Some(100.0), 5),
        ]));
        assert!(close(f.seconds, 10.0), "{f:?}");
        assert!(close(f.lanes[0].seconds, 7.0), "{f:?}");
        assert_eq!(f.lanes[1].bound, "message_rate");
        assert_eq!(f.latency_holds, Some(false), "10 s of backlog against 7 s");
        assert_eq!(f.spool_bytes, 3_500 * 10_512);
        assert_eq!(f.fits_disk, Some(true));
    }

    #[test]
    fn connections_node_deferrals_and_pacing() {
        // 5 connections at 100 ms: 50/s, whatever the rate.
        let mut slow = lane("slow", 500, None, 5);
        slow.transaction_s = 0.1;
        let f = forecast(&plan(vec![slow.clone()]));
        assert!(close(f.seconds, 10.0), "{f:?}");
        assert_eq!(f.lanes[0].bound, "connections");
        // Half the attempts deferred: twice as long.
        let mut deferring = slow.clone();
        deferring.deferral = 0.5;
        assert!(close(forecast(&plan(vec![deferring])).seconds, 20.0));
        // The node caps two unlimited lanes: 20,000 at 1,000/s.
        let mut p = plan(vec![
            lane("a", 10_000, None, 100),
            lane("b", 10_000, None, 100),
        ]);
        p.node_rate = 1_000.0;
        let f = forecast(&p);
        assert!(close(f.seconds, 20.0), "{f:?}");
        assert_eq!(f.lanes[0].bound, "node");
        // Paced under the site's rate: no backlog, the objective holds.
        let mut p = plan(vec![lane("docomo", 1_000, Some(100.0), 5)]);
        p.campaign_rate = Some(50.0);
        let f = forecast(&p);
        assert!(close(f.seconds, 20.0), "{f:?}");
        assert_eq!(f.latency_holds, Some(true), "{f:?}");
        assert!(f.spool_bytes < 10 * 10_512, "{f:?}");
    }
}
