//! The operations runner inside the server: every `evaluate_every` it samples the server,
//! evaluates the built-in conditions and the objectives, steps the alert engine, stores
//! what changed (with the timeline), notifies the channels, saves a sample every five
//! minutes for the reports and makes the scheduled reports when they are due. Operators'
//! acknowledgements, resolves, notes and silences come through here too.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use store::{
    AlertAction, AlertRecord, OpsStore, ReportRecord, SilenceRecord, SqliteStore, StoreError,
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
    store: SqliteStore,
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

pub fn record_of(a: &OpenAlert) -> AlertRecord {
    let resolved = match &a.life.state {
        State::Resolved { by, at_ms } => Some((by.clone(), *at_ms)),
        _ => None,
    };
    AlertRecord {
        id: a.id.clone(),
        rule: a.rule.name().to_string(),
        labels: a.labels.clone(),
        summary: a.summary.clone(),
        members: a.members.clone(),
        priority: a.life.priority.as_str().to_string(),
        level: i64::from(a.life.level),
        triggered_ms: a.life.triggered_ms,
        acknowledged: a.life.acknowledged_by.clone().zip(a.life.acknowledged_ms),
        resolved,
        cleared_ms: a.cleared_ms,
        silenced_by: a.silenced_by.clone(),
        refired: i64::from(a.refired),
        miss: a
            .life
            .miss
            .as_ref()
            .map(|(m, t)| (m.as_str().to_string(), t.clone())),
    }
}

/// The lifecycle of a stored alert.
pub fn life_of(r: &AlertRecord) -> Alert {
    let state = match (&r.resolved, &r.acknowledged) {
        (Some((by, at)), _) => State::Resolved {
            by: by.clone(),
            at_ms: *at,
        },
        (None, Some((by, at))) => State::Acknowledged {
            by: by.clone(),
            at_ms: *at,
        },
        _ => State::Triggered,
    };
    Alert {
        key: r.id.clone(),
        priority: Priority::parse(&r.priority).unwrap_or(Priority::P4),
        triggered_ms: r.triggered_ms,
        state,
        acknowledged_ms: r.acknowledged.as_ref().map(|a| a.1),
        acknowledged_by: r.acknowledged.as_ref().map(|a| a.0.clone()),
        level: r.level.clamp(1, 3) as u8,
        miss: r
            .miss
            .as_ref()
            .and_then(|(m, t)| MissReason::parse(m).map(|m| (m, t.clone()))),
    }
}

fn open_of(r: &AlertRecord) -> Option<OpenAlert> {
    Some(OpenAlert {
        id: r.id.clone(),
        rule: Rule::parse(&r.rule)?,
        labels: r.labels.clone(),
        summary: r.summary.clone(),
        members: r.members.clone(),
        life: life_of(r),
        cleared_ms: r.cleared_ms,
        silenced_by: r.silenced_by.clone(),
        refired: r.refired.max(0) as u32,
    })
}

fn silence_of(s: &SilenceRecord) -> Silence {
    Silence {
        id: s.id.clone(),
        matchers: s.matchers.clone(),
        starts_ms: s.starts_ms,
        ends_ms: s.ends_ms,
        by: s.created_by.clone(),
        comment: s.comment.clone(),
    }
}

fn describe(change: &Change) -> String {
    let a = &change.alert;
    match &change.kind {
        ChangeKind::Triggered => format!("{} {}", a.life.priority.as_str(), a.summary),
        ChangeKind::Escalated(level) => format!("not acknowledged: escalated to L{level}"),
        ChangeKind::Reprioritised(was) => {
            format!("{} → {}", was.as_str(), a.life.priority.as_str())
        }
        ChangeKind::Refired => a.summary.clone(),
        ChangeKind::Cleared => "the condition no longer holds".into(),
        ChangeKind::Silenced(id) => format!("silence {id}"),
        ChangeKind::Unsilenced => "silence ended".into(),
        ChangeKind::Acknowledged => String::new(),
        ChangeKind::Resolved => match &a.life.miss {
            Some((m, t)) => format!(
                "answered late: {}{}",
                m.label(),
                if t.is_empty() {
                    String::new()
                } else {
                    format!(" — {t}")
                }
            ),
            None => String::new(),
        },
    }
}

fn actor(change: &Change) -> String {
    match (&change.kind, &change.alert.life.state) {
        (ChangeKind::Acknowledged, State::Acknowledged { by, .. }) => by.clone(),
        (ChangeKind::Resolved, State::Resolved { by, .. }) => by.clone(),
        _ => "tsubame".into(),
    }
}

impl Ops {
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        store: SqliteStore,
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

    pub fn store(&self) -> &SqliteStore {
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

    /// Evaluates for ever.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.evaluate_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
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

    fn person(&self, name: &str) -> Option<Person> {
        self.config.people.iter().find(|p| p.name == name).cloned()
    }

    /// Who answers at `level` now.
    pub fn on_call(&self, level: u8) -> Option<Person> {
        let r = self.config.rotation.as_ref()?;
        self.person(r.at(level, self.clock.now_ms()))
    }

    fn runbook(&self, rule: Rule) -> String {
        format!("{}#{}", self.config.runbook_base, rule.runbook_anchor())
    }

    fn notify(&self, change: &Change, now: i64) {
        if matches!(
            change.kind,
            ChangeKind::Silenced(_) | ChangeKind::Unsilenced
        ) {
            return;
        }
        let a = &change.alert;
        let ctx = Context {
            source: self.source.clone(),
            runbook_url: self.runbook(a.rule),
            on_call: self.on_call(a.life.level),
            now_ms: now,
        };
        for channel in &self.config.channels {
            if a.life.priority > channel.min_priority {
                continue;
            }
            let out = match &channel.kind {
                ChannelKind::Slack { url } => Some(Outgoing::Json {
                    url: url.clone(),
                    body: payload::slack_alert(change, &ctx),
                }),
                ChannelKind::PagerDuty { url, routing_key } => {
                    payload::pagerduty(change, &ctx, routing_key).map(|body| Outgoing::Json {
                        url: url.clone(),
                        body,
                    })
                }
                ChannelKind::Webhook { url, secret } => Some(Outgoing::Signed {
                    url: url.clone(),
                    secret: secret.clone(),
                    body: payload::webhook_alert(change, &ctx),
                }),
                ChannelKind::Mail { from, to } => {
                    let wakes = matches!(
                        change.kind,
                        ChangeKind::Triggered
                            | ChangeKind::Escalated(_)
                            | ChangeKind::Refired
                            | ChangeKind::Reprioritised(_)
                    );
                    let rcpts = self.recipients(to, a.life.level);
                    (wakes && !rcpts.is_empty()).then(|| Outgoing::Mail {
                        message: payload::mail_alert(change, &ctx, from, &rcpts),
                        from: from.clone(),
                        to: rcpts,
                    })
                }
            };
            if let Some(out) = out {
                self.send(channel, out, Some(a.id.clone()));
            }
        }
    }

    /// Mail addresses: fixed ones, and for `oncall` the person at `level`.
    fn recipients(&self, to: &[String], level: u8) -> Vec<String> {
        let mut out = Vec::new();
        for t in to {
            if t == "oncall" {
                if let Some(email) = self.on_call(level).and_then(|p| p.email) {
                    out.push(email);
                }
            } else {
                out.push(t.clone());
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Sends in the background; the result goes to the alert's timeline.
    fn send(&self, channel: &Channel, out: Outgoing, alert: Option<String>) {
        let notifier = self.notifier.clone();
        let store = self.store.clone();
        let name = channel.name.clone();
        let now = self.clock.now_ms();
        tokio::spawn(async move {
            let result = notifier.send(&out).await;
            if let Err(e) = &result {
                tracing::warn!(target: "tsubame::ops", channel = %name, error = %e, "notification failed");
            }
            let Some(alert_id) = alert else {
                return;
            };
            let (action, text) = match result {
                Ok(tries) => ("notified", format!("after {tries} tries")),
                Err(e) => ("notify_failed", e),
            };
            let entry = AlertAction {
                alert_id,
                at_ms: now,
                action: action.into(),
                who: name,
                text,
            };
            if let Err(e) = store.add_alert_actions(&[entry]).await {
                tracing::warn!(target: "tsubame::ops", error = %e, "recording a notification failed");
            }
        });
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

    async fn save_sample(
        &self,
        now: i64,
        wall: i64,
        queued: u64,
        oldest: Option<i64>,
        disk: f64,
    ) -> Result<(), StoreError> {
        {
            let mut last = self
                .last_sample_ms
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|l| now - l < SAMPLE_EVERY_MS) {
                return Ok(());
            }
            *last = Some(now);
        }
        let record = SampleRecord {
            period: self.observer.activity.take_period(),
            queued,
            oldest_age_s: oldest
                .map(|o| (wall - o).max(0) as f64 / 1000.0)
                .unwrap_or(0.0),
            disk_used_pct: disk,
            cpu_pct: self.observer.cpu_pct(wall),
        };
        self.store
            .add_ops_sample(now, &serde_json::to_string(&record).unwrap_or_default())
            .await?;
        // Samples are kept 400 days (a year of monthly reports, and the month before).
        self.store.purge_ops_samples(now - 400 * 86_400_000).await?;
        Ok(())
    }

    async fn scheduled_reports(&self, now: i64) -> Result<(), StoreError> {
        for span in period::due(&self.config.reports, now) {
            let key = (span.kind.to_string(), span.label.clone());
            if self
                .made_reports
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&key)
            {
                continue;
            }
            self.make_report(&span).await?;
        }
        Ok(())
    }

    /// Makes (or finds) the report of `kind`: the last one due, or the period so far.
    pub async fn report(&self, kind: &str, so_far: bool) -> Result<ReportRecord, OpsFailure> {
        let now = self.clock.now_ms();
        let span = if so_far {
            period::so_far(kind, now)
        } else {
            match kind {
                "daily" => Some(period::daily(now, self.config.reports.daily.unwrap_or(0))),
                "weekly" => {
                    let (d, m) = self.config.reports.weekly.unwrap_or((0, 0));
                    Some(period::weekly(now, d, m))
                }
                "monthly" => Some(period::monthly(now)),
                _ => None,
            }
        }
        .ok_or_else(|| {
            OpsFailure::Refused(format!("kind: {kind:?} is not daily, weekly or monthly"))
        })?;
        Ok(self.make_report(&span).await?)
    }

    async fn facts(&self, span: &Span) -> Result<Facts, StoreError> {
        let wall = wall_ms();
        let length = Duration::from_millis((span.to_ms - span.from_ms).max(0) as u64);
        let slos = self
            .tracker
            .status(wall)
            .into_iter()
            .map(|s| {
                let c = self
                    .tracker
                    .period_counts(&s.name, wall, length)
                    .unwrap_or_default();
                SloFacts {
                    name: s.name,
                    objective: s.objective,
                    good: c.good,
                    total: c.total,
                    budget_left: s.budget_left,
                }
            })
            .collect();
        let mut incidents = Vec::new();
        for r in self
            .store
            .alerts_between(span.from_ms, span.to_ms)
            .await?
            .iter()
            .rev()
        {
            let timeline = self
                .store
                .alert_actions(&r.id)
                .await?
                .into_iter()
                .map(|a| (a.at_ms, a.action, a.who, a.text))
                .collect();
            incidents.push(Incident {
                life: life_of(r),
                rule: r.rule.clone(),
                summary: r.summary.clone(),
                timeline,
            });
        }
        let samples = self
            .store
            .ops_samples(span.from_ms, span.to_ms)
            .await?
            .iter()
            .map(|(at, body)| (*at, monthly::sample(body)))
            .collect();
        Ok(Facts {
            kind: span.kind.to_string(),
            label: span.label.clone(),
            from_ms: span.from_ms,
            to_ms: span.to_ms,
            source: self.source.clone(),
            slos,
            incidents,
            samples,
        })
    }

    async fn make_report(&self, span: &Span) -> Result<ReportRecord, StoreError> {
        let facts = self.facts(span).await?;
        let now = self.clock.now_ms();
        let monthly_kind = span.kind == "monthly";
        let record = ReportRecord {
            id: format!("rp_{}_{}", span.kind, span.label),
            kind: span.kind.to_string(),
            period: span.label.clone(),
            created_ms: now,
            content_type: if monthly_kind {
                "text/html; charset=utf-8"
            } else {
                "text/plain; charset=utf-8"
            }
            .into(),
            body: if monthly_kind {
                monthly::html(&facts)
            } else {
                chat::text(&facts)
            },
        };
        let fresh = self.store.save_report(&record).await?;
        self.made_reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((record.kind.clone(), record.period.clone()));
        if !fresh {
            return self
                .store
                .report(&record.id)
                .await
                .map(|r| r.unwrap_or(record));
        }
        for channel in self
            .config
            .channels
            .iter()
            .filter(|c| c.reports.contains(&record.kind))
        {
            let title = format!(
                "tsubame {} report {} — {}",
                record.kind, record.period, self.source
            );
            let note = format!(
                "{title}: archived as {} (GET /admin/v1/reports/{}, console Operations → Reports)",
                record.id, record.id
            );
            let out = match &channel.kind {
                ChannelKind::Slack { url } => Outgoing::Json {
                    url: url.clone(),
                    body: if monthly_kind {
                        serde_json::json!({"text": note})
                    } else {
                        chat::slack(&facts)
                    },
                },
                ChannelKind::Webhook { url, secret } => Outgoing::Signed {
                    url: url.clone(),
                    secret: secret.clone(),
                    body: serde_json::json!({
                        "version": 1, "type": "report", "kind": record.kind, "period": record.period,
                        "id": record.id, "content_type": record.content_type, "body": record.body,
                        "source": self.source,
                    }),
                },
                ChannelKind::Mail { from, to } => {
                    let rcpts = self.recipients(to, 1);
                    let body = if monthly_kind {
                        note.clone()
                    } else {
                        record.body.clone()
                    };
                    Outgoing::Mail {
                        message: payload::mail(from, &rcpts, &title, &body, now, &record.id),
                        from: from.clone(),
                        to: rcpts,
                    }
                }
                ChannelKind::PagerDuty { .. } => continue,
            };
            self.send(channel, out, None);
        }
        Ok(record)
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

/// A planned campaign, as the operator describes it.
#[derive(Debug, Clone, Default)]
pub struct ForecastRequest {
    /// Recipients per domain.
    pub recipients: BTreeMap<String, u64>,
    pub message_bytes: u64,
    pub start_ms: Option<i64>,
    pub rate_per_sec: Option<f64>,
    /// The node's capacity (attempts per second), when the operator knows better.
    pub node_rate: Option<f64>,
}

/// The forecast with its times and what the model assumed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ForecastAnswer {
    #[serde(flatten)]
    pub forecast: crate::forecast::Forecast,
    pub starts_at: String,
    pub ends_at: String,
    /// Where the node's capacity came from.
    pub node_rate_source: String,
    /// Domains that could not be routed (and are left out).
    pub unroutable: Vec<String>,
}

/// Seconds per message on one connection at a site not seen yet: a typical answer time of
/// a large mailbox provider over the Internet.
pub const UNSEEN_TRANSACTION_S: f64 = 0.05;
/// The node's capacity until it has measured itself (attempts per second).
pub const UNMEASURED_NODE_RATE: f64 = 1_000.0;

impl Ops {
    /// Forecasts a planned campaign under the current shaping and capacity.
    pub async fn forecast(&self, req: &ForecastRequest) -> Result<ForecastAnswer, OpsFailure> {
        use crate::forecast::{Lane, Plan, forecast};
        if req.recipients.is_empty() || req.recipients.values().all(|n| *n == 0) {
            return Err(OpsFailure::Refused(
                "recipients: name at least one domain and its count".into(),
            ));
        }
        if req.recipients.len() > 1000 {
            return Err(OpsFailure::Refused(
                "recipients: at most 1,000 domains".into(),
            ));
        }
        if let Some(r) = req.rate_per_sec
            && !(r > 0.0 && r.is_finite())
        {
            return Err(OpsFailure::Refused(
                "rate_per_sec: a positive number".into(),
            ));
        }
        let Some(engine) = &self.observer.delivery else {
            return Err(OpsFailure::Refused(
                "delivery is disabled on this node: nothing to forecast".into(),
            ));
        };
        let seen = self.observer.activity.sites();
        let mut lanes: Vec<Lane> = Vec::new();
        let mut unroutable = Vec::new();
        for (domain, count) in &req.recipients {
            let plan = match engine.site_of(domain).await {
                Ok(p) => p,
                Err(e) => {
                    unroutable.push(format!("{domain}: {e}"));
                    continue;
                }
            };
            if let Some(lane) = lanes.iter_mut().find(|l| l.site == plan.site) {
                lane.recipients += count;
                continue;
            }
            let site = seen.iter().find(|s| s.site == plan.site);
            let transaction_s = site
                .filter(|s| s.attempts_timed > 0)
                .map(|s| s.attempt_ms_total as f64 / s.attempts_timed as f64 / 1000.0)
                .unwrap_or(UNSEEN_TRANSACTION_S);
            let deferral = site
                .filter(|s| s.delivered + s.deferred >= 100)
                .map(|s| s.deferred as f64 / (s.delivered + s.deferred) as f64)
                .unwrap_or(0.0)
                .min(0.95);
            let connections = match plan.provider_connections_max {
                Some(total) => plan.limits.connections_max.min(total),
                None => plan.limits.connections_max,
            };
            lanes.push(Lane {
                provider: plan.provider.clone().unwrap_or_else(|| "other".into()),
                site: plan.site,
                recipients: *count,
                rate: plan.limits.message_rate.map(|r| r.per_second),
                connections,
                transaction_s,
                deferral,
            });
        }
        if lanes.is_empty() {
            return Err(OpsFailure::Refused(format!(
                "recipients: no domain could be routed ({})",
                unroutable.join("; ")
            )));
        }
        let (node_rate, source) = match req.node_rate {
            Some(r) if r > 0.0 => (r, "given".to_string()),
            _ => {
                let now = self.clock.now_ms();
                let best = self
                    .store
                    .ops_samples(now - 30 * 86_400_000, now + 1)
                    .await?
                    .iter()
                    .map(|(_, body)| {
                        let s = monthly::sample(body);
                        (s.period.delivered + s.period.deferred + s.period.bounced) as f64
                            / (SAMPLE_EVERY_MS / 1000) as f64
                    })
                    .fold(0.0, f64::max);
                if best >= 50.0 {
                    (best, "the best 5 minutes of the last 30 days".to_string())
                } else {
                    (
                        UNMEASURED_NODE_RATE,
                        "not measured yet: the default".to_string(),
                    )
                }
            }
        };
        let sample = self.observer.sample(wall_ms());
        let plan = Plan {
            lanes,
            node_rate,
            message_bytes: req.message_bytes.max(1),
            campaign_rate: req.rate_per_sec,
            latency_threshold_s: self.tracker.delivery_threshold().map(|d| d.as_secs_f64()),
            disk_free: (sample.disk_total > 0).then_some(sample.disk_free),
        };
        let f = forecast(&plan);
        let start = req.start_ms.unwrap_or_else(|| self.clock.now_ms());
        Ok(ForecastAnswer {
            starts_at: payload::rfc3339(start),
            ends_at: payload::rfc3339(start + (f.seconds * 1000.0) as i64),
            forecast: f,
            node_rate_source: source,
            unroutable,
        })
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
