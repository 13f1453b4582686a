//! Who is on call, and telling the channels: a payload per channel, sent in the background
//! with retries, the outcome on the alert's timeline.

use super::*;

impl Ops {
    pub(super) fn person(&self, name: &str) -> Option<Person> {
        self.config.people.iter().find(|p| p.name == name).cloned()
    }

    /// Who answers at `level` now.
    pub fn on_call(&self, level: u8) -> Option<Person> {
        let r = self.config.rotation.as_ref()?;
        self.person(r.at(level, self.clock.now_ms()))
    }

    pub(super) fn runbook(&self, rule: Rule) -> String {
        format!("{}#{}", self.config.runbook_base, rule.runbook_anchor())
    }

    pub(super) fn notify(&self, change: &Change, now: i64) {
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
    pub(super) fn recipients(&self, to: &[String], level: u8) -> Vec<String> {
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
    pub(super) fn send(&self, channel: &Channel, out: Outgoing, alert: Option<String>) {
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
}
