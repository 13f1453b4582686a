//! The daily and weekly chat report: objectives' attainment and budget left, alerts by
//! priority with response attainment and miss reasons, the top providers' deferral rates,
//! and volume — as Slack mrkdwn (and plain text for mail and the archive).

use serde_json::{Value, json};

use crate::report::Facts;

/// The report's lines (Slack mrkdwn: `*bold*`).
pub fn lines(f: &Facts) -> Vec<String> {
    let mut out = vec![format!(
        "*tsubame {} report {}* — {}",
        f.kind, f.label, f.source
    )];
    out.push(String::new());
    out.push("*Objectives*".into());
    if f.slos.is_empty() {
        out.push("no objectives configured".into());
    }
    for s in &f.slos {
        out.push(format!(
            "{} {}: {:.3} % of {} events (objective {} %), budget left {:.1} %",
            if s.met() { "✅" } else { "❌" },
            s.name,
            s.attained(),
            s.total,
            s.objective,
            s.budget_left * 100.0
        ));
    }
    out.push(String::new());
    out.push("*Alerts and response* (target 97 % answered in time)".into());
    for (p, r) in f.response() {
        let mut line = format!(
            "{}: {} alerts, {} of {} answered in time ({:.1} %{})",
            p.as_str(),
            r.alerts,
            r.in_time,
            r.answered,
            r.attainment(),
            if r.met() { "" } else { ", below target" }
        );
        if !r.misses.is_empty() {
            let reasons: Vec<String> = r.misses.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
            line.push_str(&format!("; misses: {}", reasons.join(", ")));
        }
        out.push(line);
    }
    out.push(String::new());
    out.push("*Top providers*".into());
    let providers = f.providers(5);
    if providers.is_empty() {
        out.push("no deliveries".into());
    }
    for (p, attempts, deferred) in providers {
        out.push(format!(
            "{p}: {attempts} attempts, {deferred:.1} % deferred"
        ));
    }
    let v = f.volume();
    out.push(String::new());
    out.push(format!(
        "*Volume*: {} delivered, {} deferred, {} bounced",
        v.delivered, v.deferred, v.bounced
    ));
    out
}

pub fn text(f: &Facts) -> String {
    lines(f).join("\n").replace('*', "")
}

pub fn slack(f: &Facts) -> Value {
    let all = lines(f);
    let title = all[0].replace('*', "");
    let body = all[1..].join("\n");
    json!({
        "text": title,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title.chars().take(150).collect::<String>()}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body.chars().take(3000).collect::<String>()}}
        ]
    })
}
