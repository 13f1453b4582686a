//! An alert's life and the response objective (issue 17 item 3, the model; not wired to
//! storage or notifications yet): triggered → acknowledged → resolved, with who and when;
//! escalation L1 → L2 → L3 each time the priority's window passes unacknowledged; a
//! response is *in time* when acknowledged within its priority's window, and a resolve of
//! a late alert must say why (a reason from a list, plus free text). Attainment per
//! priority is the share in time, against the target (97 %).

use std::time::Duration;

/// P1 (most urgent) to P4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

impl Priority {
    /// How long an alert of this priority may wait for an acknowledgement.
    pub fn response_window(self) -> Duration {
        Duration::from_secs(match self {
            Priority::P1 => 15 * 60,
            Priority::P2 => 30 * 60,
            Priority::P3 => 45 * 60,
            Priority::P4 => 60 * 60,
        })
    }

    pub fn parse(text: &str) -> Option<Priority> {
        Some(match text.trim().to_ascii_uppercase().as_str() {
            "P1" => Priority::P1,
            "P2" => Priority::P2,
            "P3" => Priority::P3,
            "P4" => Priority::P4,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
        }
    }
}

/// The share of alerts per priority that must be answered in time.
pub const RESPONSE_TARGET: f64 = 0.97;

/// Why a response was late; required when resolving a late alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissReason {
    OutOfHours,
    SeveralIncidents,
    NotificationFailed,
    WrongPriority,
    Other,
}

impl MissReason {
    pub const ALL: [MissReason; 5] = [
        MissReason::OutOfHours,
        MissReason::SeveralIncidents,
        MissReason::NotificationFailed,
        MissReason::WrongPriority,
        MissReason::Other,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            MissReason::OutOfHours => "out_of_hours",
            MissReason::SeveralIncidents => "several_incidents",
            MissReason::NotificationFailed => "notification_failed",
            MissReason::WrongPriority => "wrong_priority",
            MissReason::Other => "other",
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            MissReason::OutOfHours => "out of hours",
            MissReason::SeveralIncidents => "several incidents at once",
            MissReason::NotificationFailed => "notification failed",
            MissReason::WrongPriority => "wrong priority",
            MissReason::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<MissReason> {
        Some(match text {
            "out_of_hours" => MissReason::OutOfHours,
            "several_incidents" => MissReason::SeveralIncidents,
            "notification_failed" => MissReason::NotificationFailed,
            "wrong_priority" => MissReason::WrongPriority,
            "other" => MissReason::Other,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Triggered,
    Acknowledged { by: String, at_ms: i64 },
    Resolved { by: String, at_ms: i64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub key: String,
    pub priority: Priority,
    pub triggered_ms: i64,
    pub state: State,
    pub acknowledged_ms: Option<i64>,
    pub acknowledged_by: Option<String>,
    /// 1 (first line) to 3.
    pub level: u8,
    pub miss: Option<(MissReason, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("the alert is already resolved")]
    Resolved,
    #[error("the response was late: a miss reason is required")]
    ReasonRequired,
}

impl Alert {
    pub fn trigger(key: &str, priority: Priority, now_ms: i64) -> Alert {
        Alert {
            key: key.to_string(),
            priority,
            triggered_ms: now_ms,
            state: State::Triggered,
            acknowledged_ms: None,
            acknowledged_by: None,
            level: 1,
            miss: None,
        }
    }

    fn window_ms(&self) -> i64 {
        self.priority.response_window().as_millis() as i64
    }

    /// Escalates while unacknowledged: one level per window passed, up to L3. True when
    /// the level rose (someone new must be told).
    pub fn tick(&mut self, now_ms: i64) -> bool {
        if self.state != State::Triggered {
            return false;
        }
        let windows = (now_ms - self.triggered_ms).max(0) / self.window_ms();
        let level = (1 + windows).min(3) as u8;
        let rose = level > self.level;
        self.level = self.level.max(level);
        rose
    }

    pub fn acknowledge(&mut self, by: &str, now_ms: i64) -> Result<(), LifecycleError> {
        match self.state {
            State::Resolved { .. } => Err(LifecycleError::Resolved),
            State::Acknowledged { .. } => Ok(()),
            State::Triggered => {
                self.tick(now_ms);
                self.acknowledged_ms = Some(now_ms);
                self.acknowledged_by = Some(by.to_string());
                self.state = State::Acknowledged {
                    by: by.to_string(),
                    at_ms: now_ms,
                };
                Ok(())
            }
        }
    }

    /// Answered within the priority's window (an alert resolved without acknowledgement
    /// counts its resolve as the answer).
    pub fn in_time(&self) -> Option<bool> {
        let answered = self.acknowledged_ms.or(match &self.state {
            State::Resolved { at_ms, .. } => Some(*at_ms),
            _ => None,
        })?;
        Some(answered - self.triggered_ms <= self.window_ms())
    }

    /// [`Alert::in_time`] as of `now_ms`: an alert still unanswered when its window has
    /// passed is late already.
    pub fn in_time_at(&self, now_ms: i64) -> Option<bool> {
        self.in_time()
            .or_else(|| (now_ms - self.triggered_ms > self.window_ms()).then_some(false))
    }

    pub fn resolve(
        &mut self,
        by: &str,
        now_ms: i64,
        miss: Option<(MissReason, String)>,
    ) -> Result<(), LifecycleError> {
        if matches!(self.state, State::Resolved { .. }) {
            return Err(LifecycleError::Resolved);
        }
        let answered = self.acknowledged_ms.unwrap_or(now_ms);
        let late = answered - self.triggered_ms > self.window_ms();
        if late && miss.is_none() {
            return Err(LifecycleError::ReasonRequired);
        }
        self.miss = if late { miss } else { None };
        self.state = State::Resolved {
            by: by.to_string(),
            at_ms: now_ms,
        };
        Ok(())
    }
}

/// Response attainment of one priority: (in time, answered, met the target).
pub fn attainment(alerts: &[Alert], priority: Priority) -> (usize, usize, bool) {
    let answered: Vec<bool> = alerts
        .iter()
        .filter(|a| a.priority == priority)
        .filter_map(Alert::in_time)
        .collect();
    let in_time = answered.iter().filter(|t| **t).count();
    let met = answered.is_empty() || in_time as f64 / answered.len() as f64 >= RESPONSE_TARGET;
    (in_time, answered.len(), met)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn escalation_acknowledgement_and_late_resolves() {
        let mut alert = Alert::trigger("slo:delivery-7s", Priority::P2, 0);
        assert!(!alert.tick(29 * MIN));
        assert!(alert.tick(30 * MIN), "L2 after the P2 window");
        assert!(alert.tick(61 * MIN), "L3 after two");
        assert!(!alert.tick(500 * MIN), "no level beyond L3");
        alert.acknowledge("ann", 70 * MIN).unwrap();
        assert_eq!(alert.in_time(), Some(false));
        assert_eq!(
            alert.resolve("ann", 80 * MIN, None),
            Err(LifecycleError::ReasonRequired)
        );
        alert
            .resolve(
                "ann",
                80 * MIN,
                Some((MissReason::OutOfHours, "03:00, pager on silent".into())),
            )
            .unwrap();
        assert_eq!(
            alert.resolve("ann", 81 * MIN, None),
            Err(LifecycleError::Resolved)
        );

        let mut quick = Alert::trigger("site:gmail", Priority::P3, 0);
        quick.acknowledge("bob", 10 * MIN).unwrap();
        quick.resolve("bob", 90 * MIN, None).unwrap();
        assert_eq!(quick.in_time(), Some(true));
        assert_eq!(quick.miss, None, "in time: no reason kept");
    }

    #[test]
    fn attainment_per_priority_against_97_percent() {
        let mut alerts = Vec::new();
        for i in 0..100 {
            let mut a = Alert::trigger(&format!("a{i}"), Priority::P2, 0);
            let at = if i < 97 { 5 * MIN } else { 45 * MIN };
            a.acknowledge("x", at).unwrap();
            alerts.push(a);
        }
        assert_eq!(attainment(&alerts, Priority::P2), (97, 100, true));
        alerts[0].acknowledged_ms = Some(31 * MIN);
        assert_eq!(attainment(&alerts, Priority::P2), (96, 100, false));
        assert_eq!(attainment(&alerts, Priority::P4), (0, 0, true));
        // Unanswered alerts are not counted yet.
        alerts.push(Alert::trigger("open", Priority::P2, 0));
        assert_eq!(attainment(&alerts, Priority::P2).1, 100);
    }
}
