//! The 5-minute samples and the reports made from them: scheduled or asked for, archived,
//! and sent to the channels that list them.

use super::*;

impl Ops {
    pub(super) async fn save_sample(
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

    pub(super) async fn scheduled_reports(&self, now: i64) -> Result<(), StoreError> {
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

    pub(super) async fn facts(&self, span: &Span) -> Result<Facts, StoreError> {
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

    pub(super) async fn make_report(&self, span: &Span) -> Result<ReportRecord, StoreError> {
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
}
