//! Alerts between the engine's form and the store's records, and their timeline entries.

use super::*;

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

pub(super) fn open_of(r: &AlertRecord) -> Option<OpenAlert> {
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

pub(super) fn silence_of(s: &SilenceRecord) -> Silence {
    Silence {
        id: s.id.clone(),
        matchers: s.matchers.clone(),
        starts_ms: s.starts_ms,
        ends_ms: s.ends_ms,
        by: s.created_by.clone(),
        comment: s.comment.clone(),
    }
}

pub(super) fn describe(change: &Change) -> String {
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

pub(super) fn actor(change: &Change) -> String {
    match (&change.kind, &change.alert.life.state) {
        (ChangeKind::Acknowledged, State::Acknowledged { by, .. }) => by.clone(),
        (ChangeKind::Resolved, State::Resolved { by, .. }) => by.clone(),
        _ => "tsubame".into(),
    }
}
