//! The operations runner inside the server: every `evaluate_every` it samples the server,
//! evaluates the built-in conditions and the objectives, steps the alert engine, stores
//! what changed (with the timeline), notifies the channels, saves a sample every five
//! minutes for the reports and makes the scheduled reports when they are due. Operators'
//! acknowledgements, resolves, notes and silences come through here too.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use store::{
    AlertAction, AlertRecord, ControlPlane, OpsStore, ReportRecord, SilenceRecord, StoreError,
};

use crate::activity::Activity;
use crate::alerts::conditions::{self, History, Observations};
use crate::alerts::{Change, ChangeKind, Engine, EngineError, OpenAlert, Rule, Silence};
use crate::clock::{Clock, wall_ms};
use crate::config::{Channel, ChannelKind, OpsConfig};
use crate::lifecycle::{Alert, MissReason, Priority, State};
use crate::notify::payload::{self, Context};
use crate::notify::{MailOut, Notifier, Outgoing};
use crate::observe::{Observer, Slow};
use crate::oncall::Person;
use crate::report::period::{self, Span};
use crate::report::{Facts, Incident, SampleRecord, SloFacts, chat, monthly};
use crate::tracker::Tracker;

mod forecast;
mod notify;
mod records;
mod reports;

pub use forecast::{ForecastAnswer, ForecastRequest, UNMEASURED_NODE_RATE, UNSEEN_TRANSACTION_S};
use records::{actor, describe, open_of, silence_of};
pub use records::{life_of, record_of};

const SAMPLE_EVERY_MS: i64 = 5 * 60_000;
const SLOW_EVERY_MS: i64 = 60_000;

/// Why an operator's request was refused.
#[derive(Debug, thiserror::Error)]
pub enum OpsFailure {
    #[error("{0}")]
    Refused(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<EngineError> for OpsFailure {
    fn from(e: EngineError) -> OpsFailure {
        match e {
            EngineError::Unknown(id) => OpsFailure::NotFound(id),
            other => OpsFailure::Refused(other.to_string()),
        }
    }
}

pub struct Ops {
    store: ControlPlane,
    config: OpsConfig,
    pub clock: Clock,
    source: String,
    engine: tokio::sync::Mutex<Engine>,
    history: Mutex<History>,
    tracker: Arc<Tracker>,
    observer: Observer,
    notifier: Notifier,
    slow: Mutex<(i64, Slow)>,
    last_sample_ms: Mutex<Option<i64>>,
    made_reports: Mutex<HashSet<(String, String)>>,
}

impl Ops {
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        store: ControlPlane,
        config: OpsConfig,
        clock: Clock,
        source: String,
        tracker: Arc<Tracker>,
        observer: Observer,
        mail: Option<Arc<dyn MailOut>>,
    ) -> Result<Arc<Ops>, StoreError> {
        let open: Vec<OpenAlert> = store
            .open_alerts()
            .await?
            .iter()
            .filter_map(open_of)
            .collect();
        let made: HashSet<(String, String)> = store
            .reports()
            .await?
            .into_iter()
            .map(|r| (r.kind, r.period))
            .collect();
        Ok(Arc::new(Ops {
            store,
            config,
            clock,
            source,
            engine: tokio::sync::Mutex::new(Engine::new(open)),
            history: Mutex::new(History::default()),
            tracker,
            observer,
            notifier: Notifier::new(mail),
            slow: Mutex::new((i64::MIN, Slow::default())),
            last_sample_ms: Mutex::new(None),
            made_reports: Mutex::new(made),
        }))
    }

    pub fn activity(&self) -> &Arc<Activity> {
        &self.observer.activity
    }

    pub fn store(&self) -> &ControlPlane {
        &self.store
    }

    pub fn config(&self) -> &OpsConfig {
        &self.config
    }

    /// Every objective's status now.
    pub fn slo_status(&self) -> Vec<crate::tracker::SloStatus> {
        self.tracker.status(wall_ms())
    }

    /// The rotation's next shifts from now: (start, L1, L2, L3 names).
    pub fn shifts(&self, count: usize) -> Vec<(i64, [String; 3])> {
        let Some(r) = self.config.rotation.as_ref() else {
            return Vec::new();
        };
        let mut at = self.clock.now_ms();
        let mut out = Vec::new();
        for _ in 0..count {
            out.push((at, [1, 2, 3].map(|l| r.at(l, at).to_string())));
            at = r.shift_ends_ms(at);
        }
        out
    }

    /// Evaluates for ever, while on `duty` (one node of a cluster evaluates, notifies and
    /// reports).
    pub async fn run(self: Arc<Self>, duty: leases::Duty) {
        let mut tick = tokio::time::interval(self.config.evaluate_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            duty.wait().await;
            if let Err(e) = self.evaluate().await {
                tracing::warn!(target: "tsubame::ops", error = %e, "alert evaluation failed");
            }
        }
    }

    /// One evaluation; what changed.
    pub async fn evaluate(&self) -> Result<Vec<Change>, StoreError> {
        let wall = wall_ms();
        let now = self.clock.now_ms();
        let sample = self.observer.sample(wall);
        let disk_used_pct = if sample.disk_total > 0 {
            100.0 - sample.disk_free as f64 * 100.0 / sample.disk_total as f64
        } else {
            0.0
        };
        let (queued, oldest) = (sample.queued, sample.oldest_ms);
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sample);
        let stale = self.slow.lock().unwrap_or_else(|e| e.into_inner()).0 + SLOW_EVERY_MS <= wall;
        if stale {
            let fresh = self.observer.slow(wall).await;
            *self.slow.lock().unwrap_or_else(|e| e.into_inner()) = (wall, fresh);
        }
        let slow = self
            .slow
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone();
        let statuses = self.tracker.status(wall);
        let signals = {
            let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
            conditions::evaluate(
                &Observations {
                    now_ms: wall,
                    history: &history,
                    slos: &statuses,
                    tls_not_after_ms: slow.tls_not_after_ms,
                    webhooks: &slow.webhooks,
                    tenants: &slow.tenants,
                },
                &self.config.thresholds,
            )
        };
        let mut silences: Vec<Silence> = self
            .store
            .silences(now)
            .await?
            .iter()
            .map(silence_of)
            .collect();
        silences.extend(
            self.config
                .maintenance
                .iter()
                .filter_map(|m| m.silence_at(now)),
        );
        let changes = self.engine.lock().await.step(now, signals, &silences);
        for change in &changes {
            self.record(change, now).await?;
        }
        self.save_sample(now, wall, queued, oldest, disk_used_pct)
            .await?;
        self.scheduled_reports(now).await?;
        Ok(changes)
    }

    /// Stores a change with its timeline entry and sends its notifications.
    async fn record(&self, change: &Change, now: i64) -> Result<(), StoreError> {
        let action = AlertAction {
            alert_id: change.alert.id.clone(),
            at_ms: now,
            action: change.kind.action().to_string(),
            who: actor(change),
            text: describe(change),
        };
        self.store
            .save_alert(&record_of(&change.alert), &[action])
            .await?;
        tracing::info!(target: "tsubame::ops", alert = %change.alert.id, rule = change.alert.rule.name(),
            priority = change.alert.life.priority.as_str(), change = change.kind.action(), "alert");
        self.notify(change, now);
        Ok(())
    }

    pub async fn acknowledge(&self, id: &str, by: &str) -> Result<Change, OpsFailure> {
        let by = who(by)?;
        let now = self.clock.now_ms();
        let change = self.engine.lock().await.acknowledge(id, by, now)?;
        self.record(&change, now).await?;
        Ok(change)
    }

    pub async fn resolve(
        &self,
        id: &str,
        by: &str,
        reason: Option<&str>,
        text: &str,
    ) -> Result<Change, OpsFailure> {
        let by = who(by)?;
        let miss = match reason.filter(|r| !r.is_empty()) {
            None => None,
            Some(r) => Some((
                MissReason::parse(r).ok_or_else(|| {
                    OpsFailure::Refused(format!(
                        "reason: {r:?} is not one of {}",
                        MissReason::ALL
                            .iter()
                            .map(|m| m.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
                text.chars().take(2000).collect(),
            )),
        };
        let now = self.clock.now_ms();
        let change = self.engine.lock().await.resolve(id, by, now, miss)?;
        self.record(&change, now).await?;
        Ok(change)
    }

    /// An operator's note on an alert's timeline (what was done).
    pub async fn note(&self, id: &str, by: &str, text: &str) -> Result<(), OpsFailure> {
        let by = who(by)?;
        if text.trim().is_empty() {
            return Err(OpsFailure::Refused("text: is empty".into()));
        }
        if self.store.alert(id).await?.is_none() {
            return Err(OpsFailure::NotFound(id.into()));
        }
        self.store
            .add_alert_actions(&[AlertAction {
                alert_id: id.into(),
                at_ms: self.clock.now_ms(),
                action: "note".into(),
                who: by.into(),
                text: text.chars().take(4000).collect(),
            }])
            .await?;
        Ok(())
    }

    pub async fn silence(
        &self,
        matchers: BTreeMap<String, String>,
        starts_ms: Option<i64>,
        duration: Duration,
        by: &str,
        comment: &str,
    ) -> Result<SilenceRecord, OpsFailure> {
        let by = who(by)?;
        if matchers.is_empty() {
            return Err(OpsFailure::Refused(
                "matchers: name at least one label (alertname=… for a rule)".into(),
            ));
        }
        if let Some(rule) = matchers.get("alertname")
            && !rule.ends_with('*')
            && Rule::parse(rule).is_none()
        {
            return Err(OpsFailure::Refused(format!(
                "matchers.alertname: {rule:?} is not a rule"
            )));
        }
        if duration.is_zero() || duration > Duration::from_secs(90 * 86_400) {
            return Err(OpsFailure::Refused(
                "duration: between 1 s and 90 days".into(),
            ));
        }
        let now = self.clock.now_ms();
        let starts = starts_ms.unwrap_or(now);
        let silence = SilenceRecord {
            id: format!("si_{now:x}{:04x}", rand_u16()),
            matchers,
            starts_ms: starts,
            ends_ms: starts + duration.as_millis() as i64,
            created_by: by.into(),
            comment: comment.chars().take(500).collect(),
        };
        self.store.add_silence(&silence).await?;
        Ok(silence)
    }

    pub async fn expire_silence(&self, id: &str) -> Result<(), OpsFailure> {
        if self.store.expire_silence(id, self.clock.now_ms()).await? {
            Ok(())
        } else {
            Err(OpsFailure::NotFound(id.into()))
        }
    }

    /// Alerts: the open ones, or all triggered in the last `days`.
    pub async fn alerts(&self, open_only: bool, days: i64) -> Result<Vec<AlertRecord>, StoreError> {
        if open_only {
            let mut open = self.store.open_alerts().await?;
            open.reverse();
            return Ok(open);
        }
        let now = self.clock.now_ms();
        self.store
            .alerts_between(now - days * 86_400_000, now + 1)
            .await
    }

    /// The rotation now: (level, person) for L1 … L3, and when the shift ends.
    pub fn rotation_now(&self) -> Option<(Vec<(u8, Person)>, i64)> {
        let r = self.config.rotation.as_ref()?;
        let now = self.clock.now_ms();
        let levels = (1..=3)
            .filter_map(|l| self.person(r.at(l, now)).map(|p| (l, p)))
            .collect();
        Some((levels, r.shift_ends_ms(now)))
    }
}

fn who(by: &str) -> Result<&str, OpsFailure> {
    let by = by.trim();
    if by.is_empty() || by.len() > 100 || by.chars().any(char::is_control) {
        return Err(OpsFailure::Refused(
            "by: name who you are (1-100 characters)".into(),
        ));
    }
    Ok(by)
}

fn rand_u16() -> u16 {
    rand::random()
}
