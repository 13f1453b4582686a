//! The alert engine (no I/O, the clock passed in): each evaluation hands it the signals of
//! the built-in rules; it drops the inhibited ones, groups the rest into alerts (one per
//! rule and group labels), keeps one alert per group while it is open (de-duplication: a
//! condition that comes back re-fires the same alert), holds back silenced ones, escalates
//! unacknowledged ones and notes when a condition clears. What changed comes back as
//! [`Change`]s for the store and the notifiers.

use std::collections::BTreeMap;

use crate::alerts::priority::{Impact, priority};
use crate::alerts::rule::{INHIBITIONS, Rule};
use crate::alerts::silence::Silence;
use crate::lifecycle::{Alert, LifecycleError, MissReason, Priority, State};

/// One rule's finding at one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub rule: Rule,
    /// What it is about: `site`, `provider`, `tenant`, `slo`, …
    pub labels: BTreeMap<String, String>,
    pub summary: String,
    pub impact: Impact,
}

impl Signal {
    pub fn new(rule: Rule, labels: &[(&str, &str)], summary: String, impact: Impact) -> Signal {
        Signal {
            rule,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            summary,
            impact,
        }
    }
}

/// An alert not yet resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAlert {
    pub id: String,
    pub rule: Rule,
    /// `alertname` and the rule's group labels.
    pub labels: BTreeMap<String, String>,
    pub summary: String,
    /// The summaries of the signals grouped into it, at the last evaluation that fired.
    pub members: Vec<String>,
    pub life: Alert,
    /// When its condition stopped (none while it fires).
    pub cleared_ms: Option<i64>,
    /// The silence holding it back, if one does.
    pub silenced_by: Option<String>,
    /// Times its condition came back while it was open.
    pub refired: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    Triggered,
    /// The level it rose to (2 or 3).
    Escalated(u8),
    /// The priority it had.
    Reprioritised(Priority),
    /// Its condition came back.
    Refired,
    Cleared,
    /// The silence's id.
    Silenced(String),
    Unsilenced,
    Acknowledged,
    Resolved,
}

impl ChangeKind {
    pub fn action(&self) -> &'static str {
        match self {
            ChangeKind::Triggered => "triggered",
            ChangeKind::Escalated(_) => "escalated",
            ChangeKind::Reprioritised(_) => "reprioritised",
            ChangeKind::Refired => "refired",
            ChangeKind::Cleared => "cleared",
            ChangeKind::Silenced(_) => "silenced",
            ChangeKind::Unsilenced => "unsilenced",
            ChangeKind::Acknowledged => "acknowledged",
            ChangeKind::Resolved => "resolved",
        }
    }
}

/// What happened to an alert, with the alert as it is after the change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: ChangeKind,
    pub alert: OpenAlert,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("no open alert {0}")]
    Unknown(String),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
}

#[derive(Default)]
pub struct Engine {
    open: Vec<OpenAlert>,
    seq: u64,
}

impl Engine {
    /// An engine with the alerts that were open (from the store, after a restart).
    pub fn new(open: Vec<OpenAlert>) -> Engine {
        Engine { open, seq: 0 }
    }

    pub fn open(&self) -> &[OpenAlert] {
        &self.open
    }

    pub fn get(&self, id: &str) -> Option<&OpenAlert> {
        self.open.iter().find(|a| a.id == id)
    }

    /// One evaluation at `now_ms`.
    pub fn step(&mut self, now_ms: i64, signals: Vec<Signal>, silences: &[Silence]) -> Vec<Change> {
        let mut changes = Vec::new();
        let groups = group(inhibit(signals));
        let silence_for = |labels: &BTreeMap<String, String>| {
            silences
                .iter()
                .find(|s| s.active(now_ms) && s.matches(labels))
                .map(|s| s.id.clone())
        };
        for (labels, (rule, members)) in &groups {
            let worst = members
                .iter()
                .map(|s| priority(&s.impact))
                .min()
                .unwrap_or(Priority::P4);
            let summary = match members.len() {
                1 => members[0].summary.clone(),
                n => format!("{} (and {} more)", members[0].summary, n - 1),
            };
            let member_texts: Vec<String> = members.iter().map(|s| s.summary.clone()).collect();
            let silence = silence_for(labels);
            if let Some(open) = self.open.iter_mut().find(|a| &a.labels == labels) {
                open.summary = summary;
                open.members = member_texts;
                if open.cleared_ms.take().is_some() {
                    open.refired += 1;
                    changes.push(change(ChangeKind::Refired, open));
                }
                if worst < open.life.priority {
                    let was = open.life.priority;
                    open.life.priority = worst;
                    changes.push(change(ChangeKind::Reprioritised(was), open));
                }
                match (&open.silenced_by, silence) {
                    (None, Some(id)) => {
                        open.silenced_by = Some(id.clone());
                        changes.push(change(ChangeKind::Silenced(id), open));
                    }
                    (Some(_), None) => {
                        open.silenced_by = None;
                        changes.push(change(ChangeKind::Unsilenced, open));
                    }
                    _ => {}
                }
                continue;
            }
            if silence.is_some() {
                // Silenced before it began: no alert, nobody told.
                continue;
            }
            self.seq += 1;
            let id = format!("al_{now_ms:x}{:03x}", self.seq % 0x1000);
            let alert = OpenAlert {
                life: Alert::trigger(&id, worst, now_ms),
                id,
                rule: *rule,
                labels: labels.clone(),
                summary,
                members: member_texts,
                cleared_ms: None,
                silenced_by: None,
                refired: 0,
            };
            changes.push(change(ChangeKind::Triggered, &alert));
            self.open.push(alert);
        }
        for open in self.open.iter_mut() {
            if !groups.contains_key(&open.labels) && open.cleared_ms.is_none() {
                open.cleared_ms = Some(now_ms);
                changes.push(change(ChangeKind::Cleared, open));
            }
            // A cleared or silenced alert wakes nobody further.
            if open.cleared_ms.is_none() && open.silenced_by.is_none() && open.life.tick(now_ms) {
                changes.push(change(ChangeKind::Escalated(open.life.level), open));
            }
        }
        changes
    }

    pub fn acknowledge(&mut self, id: &str, by: &str, now_ms: i64) -> Result<Change, EngineError> {
        let open = self
            .open
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(|| EngineError::Unknown(id.to_string()))?;
        open.life.acknowledge(by, now_ms)?;
        Ok(change(ChangeKind::Acknowledged, open))
    }

    /// Resolves an alert (it leaves the open ones). A late one needs a miss reason.
    pub fn resolve(
        &mut self,
        id: &str,
        by: &str,
        now_ms: i64,
        miss: Option<(MissReason, String)>,
    ) -> Result<Change, EngineError> {
        let at = self
            .open
            .iter()
            .position(|a| a.id == id)
            .ok_or_else(|| EngineError::Unknown(id.to_string()))?;
        self.open[at].life.resolve(by, now_ms, miss)?;
        let alert = self.open.remove(at);
        Ok(Change {
            kind: ChangeKind::Resolved,
            alert,
        })
    }
}

fn change(kind: ChangeKind, alert: &OpenAlert) -> Change {
    Change {
        kind,
        alert: alert.clone(),
    }
}

/// Drops the signals an inhibition rule holds back.
fn inhibit(signals: Vec<Signal>) -> Vec<Signal> {
    let held = |s: &Signal| {
        INHIBITIONS.iter().any(|rule| {
            rule.targets.contains(&s.rule)
                && signals.iter().any(|source| {
                    source.rule == rule.source
                        && rule
                            .equal
                            .iter()
                            .all(|l| source.labels.get(*l) == s.labels.get(*l))
                })
        })
    };
    let keep: Vec<bool> = signals.iter().map(|s| !held(s)).collect();
    signals
        .into_iter()
        .zip(keep)
        .filter_map(|(s, k)| k.then_some(s))
        .collect()
}

type Groups = BTreeMap<BTreeMap<String, String>, (Rule, Vec<Signal>)>;

/// Signals by alert: `alertname` and the rule's group labels.
fn group(signals: Vec<Signal>) -> Groups {
    let mut groups: Groups = BTreeMap::new();
    for s in signals {
        let mut key = BTreeMap::new();
        key.insert("alertname".to_string(), s.rule.name().to_string());
        for l in s.rule.group_by() {
            if let Some(v) = s.labels.get(*l) {
                key.insert(l.to_string(), v.clone());
            }
        }
        groups
            .entry(key)
            .or_insert_with(|| (s.rule, Vec::new()))
            .1
            .push(s);
    }
    groups
}

/// Whether an open alert is waiting for someone (not acknowledged, not silenced).
pub fn waiting(alert: &OpenAlert) -> bool {
    alert.life.state == State::Triggered && alert.silenced_by.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Severity;

    const MIN: i64 = 60_000;

    fn deferring(site: &str, provider: &str, messages: u64) -> Signal {
        Signal::new(
            Rule::DeferralJump,
            &[("site", site), ("provider", provider)],
            format!("{site} defers 80 %"),
            Impact {
                all_tenants: true,
                messages,
                ..Default::default()
            },
        )
    }

    fn kinds(changes: &[Change]) -> Vec<&'static str> {
        changes.iter().map(|c| c.kind.action()).collect()
    }

    #[test]
    fn grouped_deduplicated_escalated_cleared_and_refired() {
        let mut engine = Engine::default();
        let both = || {
            vec![
                deferring("mx1.yahoo", "yahoo", 100),
                deferring("mx2.yahoo", "yahoo", 100),
            ]
        };
        let c = engine.step(0, both(), &[]);
        assert_eq!(
            kinds(&c),
            ["triggered"],
            "two sites of one provider: one alert"
        );
        let alert = &c[0].alert;
        assert_eq!(alert.members.len(), 2);
        assert_eq!(alert.life.priority, Priority::P2);
        assert!(
            engine.step(MIN, both(), &[]).is_empty(),
            "no second notification"
        );
        assert_eq!(kinds(&engine.step(30 * MIN, both(), &[])), ["escalated"]);
        let c = engine.step(31 * MIN, vec![deferring("mx1.yahoo", "yahoo", 20_000)], &[]);
        assert_eq!(
            kinds(&c),
            ["reprioritised", "escalated"],
            "a P1 waits 15 min per level"
        );
        assert_eq!(c[0].alert.life.priority, Priority::P1);
        assert_eq!(kinds(&engine.step(32 * MIN, vec![], &[])), ["cleared"]);
        assert!(
            engine.step(200 * MIN, vec![], &[]).is_empty(),
            "cleared: no escalation"
        );
        assert_eq!(kinds(&engine.step(201 * MIN, both(), &[])), ["refired"]);
        assert_eq!(engine.open().len(), 1);
    }

    #[test]
    fn inhibition_silences_and_acknowledgement() {
        let mut engine = Engine::default();
        let suspended = Signal::new(
            Rule::ProviderSuspended,
            &[("site", "mx1.yahoo"), ("provider", "yahoo")],
            "yahoo suspended us (TSS04)".into(),
            Impact {
                all_tenants: true,
                messages: 500,
                ..Default::default()
            },
        );
        let c = engine.step(
            0,
            vec![
                suspended,
                deferring("mx1.yahoo", "yahoo", 500),
                deferring("gmail-smtp-in", "gmail", 500),
            ],
            &[],
        );
        let names: Vec<&str> = c.iter().map(|c| c.alert.rule.name()).collect();
        assert_eq!(
            names,
            ["deferral_jump", "provider_suspended"],
            "yahoo's deferrals held back"
        );
        assert_eq!(c[0].alert.labels["provider"], "gmail");

        let silence = Silence {
            id: "s1".into(),
            matchers: [("provider".to_string(), "gmail".to_string())].into(),
            starts_ms: 0,
            ends_ms: 60 * MIN,
            by: "ann".into(),
            comment: "known".into(),
        };
        let c = engine.step(
            MIN,
            vec![deferring("gmail-smtp-in", "gmail", 500)],
            &[silence.clone()],
        );
        assert_eq!(kinds(&c), ["silenced", "cleared"]);
        let later = vec![deferring("gmail-smtp-in", "gmail", 500)];
        assert!(
            engine.step(45 * MIN, later, &[silence.clone()]).is_empty(),
            "silenced and cleared alerts do not escalate"
        );

        let id = engine.open()[0].id.clone();
        let late = engine.resolve(&id, "ann", 50 * MIN, None);
        assert_eq!(
            late,
            Err(EngineError::Lifecycle(LifecycleError::ReasonRequired))
        );
        engine.acknowledge(&id, "ann", 50 * MIN).unwrap();
        let done = engine
            .resolve(
                &id,
                "ann",
                51 * MIN,
                Some((MissReason::OutOfHours, "night".into())),
            )
            .unwrap();
        assert_eq!(done.kind, ChangeKind::Resolved);
        assert!(engine.get(&id).is_none());
        // Silenced from the start: never opened.
        let mut quiet = Engine::default();
        let all = Silence {
            matchers: BTreeMap::new(),
            ..silence
        };
        assert!(
            quiet
                .step(0, vec![deferring("a", "gmail", 1)], &[all])
                .is_empty()
        );
        let burn = Signal::new(
            Rule::SloBurn,
            &[("slo", "delivery-7s")],
            "burn".into(),
            Impact {
                burn: Some((Severity::Page, 20.0)),
                ..Default::default()
            },
        );
        assert_eq!(
            quiet.step(MIN, vec![burn], &[])[0].alert.life.priority,
            Priority::P1
        );
    }
}
