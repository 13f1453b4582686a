//! The monthly operations report: one self-contained HTML page (inline CSS and SVG, no
//! scripts or external files) with volume, latency percentiles, objectives' attainment,
//! incidents with their timelines and the actions taken, disk/queue/CPU trends and
//! recommendations drawn from them.

use crate::activity::Period;
use crate::lifecycle::RESPONSE_TARGET;
use crate::notify::payload::rfc3339;
use crate::report::svg::{bars, escape, lines};
use crate::report::{Facts, SampleRecord};

const DAY: i64 = 86_400_000;

/// Per day: (label, deliveries, mean queued, highest disk use %, mean CPU %).
fn days(f: &Facts) -> Vec<(String, Period, f64, f64, f64)> {
    let n = ((f.to_ms - f.from_ms + DAY - 1) / DAY).max(1) as usize;
    let mut out: Vec<(String, Period, f64, f64, f64, u64)> = (0..n)
        .map(|i| {
            let label = rfc3339(f.from_ms + i as i64 * DAY)
                .get(..10)
                .unwrap_or("")
                .to_string();
            (label, Period::default(), 0.0, 0.0, 0.0, 0)
        })
        .collect();
    for (at, s) in &f.samples {
        let i = ((at - f.from_ms) / DAY).clamp(0, n as i64 - 1) as usize;
        let d = &mut out[i];
        d.1.add(&s.period);
        d.2 += s.queued as f64;
        d.3 = d.3.max(s.disk_used_pct);
        d.4 += s.cpu_pct;
        d.5 += 1;
    }
    out.into_iter()
        .map(|(l, p, q, disk, cpu, k)| {
            let k = k.max(1) as f64;
            (l, p, q / k, disk, cpu / k)
        })
        .collect()
}

/// What the month suggests doing, from its numbers.
pub fn recommendations(f: &Facts) -> Vec<String> {
    let mut out = Vec::new();
    for s in &f.slos {
        if !s.met() {
            out.push(format!(
                "Objective {} was missed ({:.3} % against {} %): review the incidents below and hold risky changes until its budget recovers.",
                s.name,
                s.attained(),
                s.objective
            ));
        } else if s.budget_left < 0.25 {
            out.push(format!(
                "Objective {} has {:.0} % of its budget left: slow down changes that put it at risk.",
                s.name,
                s.budget_left * 100.0
            ));
        }
    }
    for (p, r) in f.response() {
        if !r.met() {
            let top = r
                .misses
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(k, _)| *k)
                .unwrap_or("unknown");
            out.push(format!(
                "{} response attainment was {:.1} % (target {:.0} %), most misses: {top}. Check the rotation, notification channels and the priority rules.",
                p.as_str(),
                r.attainment(),
                RESPONSE_TARGET * 100.0
            ));
        }
    }
    for (p, attempts, deferred) in f.providers(10) {
        if attempts >= 100 && deferred >= 10.0 {
            out.push(format!(
                "{p} deferred {deferred:.1} % of {attempts} attempts: lower its connection or message rate in the shaping rules, and check its postmaster tools."
            ));
        }
    }
    let disk = f
        .samples
        .iter()
        .map(|(_, s)| s.disk_used_pct)
        .fold(0.0, f64::max);
    if disk >= 70.0 {
        out.push(format!(
            "The spool's disk reached {disk:.0} % used: add disk before the next campaign peak."
        ));
    }
    let cpu = f.samples.iter().map(|(_, s)| s.cpu_pct).fold(0.0, f64::max);
    if cpu >= 80.0 {
        out.push(format!(
            "CPU reached {cpu:.0} %: plan another node or spread campaigns over more hours."
        ));
    }
    if out.is_empty() {
        out.push(
            "No action needed: objectives, response times and capacity were within their targets."
                .into(),
        );
    }
    out
}

pub fn html(f: &Facts) -> String {
    let days = days(f);
    let labels: Vec<String> = days.iter().map(|d| d.0.clone()).collect();
    let volume = f.volume();
    let mut h = String::new();
    h.push_str(&format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>tsubame operations report {}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}}\
         table{{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}}th,td{{border:1px solid #bbb;padding:.3rem .5rem;text-align:left}}\
         .miss{{color:#a40000}}.ok{{color:#0a6b2c}}h2{{margin-top:2rem}}</style></head><body>",
        escape(&f.label)
    ));
    h.push_str(&format!(
        "<h1>Operations report {}</h1><p>{} · {} to {} (UTC)</p>",
        escape(&f.label),
        escape(&f.source),
        rfc3339(f.from_ms),
        rfc3339(f.to_ms)
    ));
    h.push_str("<h2>Summary</h2><ul>");
    h.push_str(&format!(
        "<li>{} delivered, {} deferred, {} bounced</li>",
        volume.delivered, volume.deferred, volume.bounced
    ));
    h.push_str(&format!("<li>{} incidents</li>", f.incidents.len()));
    h.push_str("</ul>");

    h.push_str("<h2>Volume</h2>");
    h.push_str(&bars(
        "Delivered per day",
        &labels,
        &days
            .iter()
            .map(|d| d.1.delivered as f64)
            .collect::<Vec<_>>(),
        "",
    ));
    h.push_str("<h2>Latency percentiles</h2>");
    let pct = |q: f64| {
        days.iter()
            .map(|d| d.1.percentile(q).unwrap_or(f64::NAN))
            .collect::<Vec<_>>()
    };
    h.push_str(&lines(
        "Accept to delivered, seconds (p50, p95, p99)",
        &labels,
        &[("p50", pct(0.5)), ("p95", pct(0.95)), ("p99", pct(0.99))],
        " s",
    ));
    h.push_str(&format!(
        "<p>Month: p50 {} · p95 {} · p99 {}</p>",
        seconds(volume.percentile(0.5)),
        seconds(volume.percentile(0.95)),
        seconds(volume.percentile(0.99))
    ));

    h.push_str("<h2>Objectives</h2><table><thead><tr><th scope=\"col\">Objective</th><th scope=\"col\">Target</th><th scope=\"col\">Attained</th><th scope=\"col\">Events</th><th scope=\"col\">Budget left</th></tr></thead><tbody>");
    for s in &f.slos {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{} %</td><td class=\"{}\">{:.3} %</td><td>{}</td><td>{:.1} %</td></tr>",
            escape(&s.name),
            s.objective,
            if s.met() { "ok" } else { "miss" },
            s.attained(),
            s.total,
            s.budget_left * 100.0
        ));
    }
    h.push_str("</tbody></table>");
    if !f.slos.is_empty() {
        h.push_str(&bars(
            "Attainment per objective, percent",
            &f.slos.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
            &f.slos.iter().map(|s| s.attained()).collect::<Vec<_>>(),
            " %",
        ));
    }

    h.push_str("<h2>Response to alerts</h2><table><thead><tr><th scope=\"col\">Priority</th><th scope=\"col\">Alerts</th><th scope=\"col\">In time</th><th scope=\"col\">Attainment (target 97 %)</th><th scope=\"col\">Miss reasons</th></tr></thead><tbody>");
    for (p, r) in f.response() {
        let reasons: Vec<String> = r
            .misses
            .iter()
            .map(|(k, n)| format!("{} ×{n}", escape(k)))
            .collect();
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{} of {}</td><td class=\"{}\">{:.1} %</td><td>{}</td></tr>",
            p.as_str(),
            r.alerts,
            r.in_time,
            r.answered,
            if r.met() { "ok" } else { "miss" },
            r.attainment(),
            reasons.join(", ")
        ));
    }
    h.push_str("</tbody></table>");

    h.push_str("<h2>Incidents</h2>");
    if f.incidents.is_empty() {
        h.push_str("<p>None.</p>");
    }
    for i in &f.incidents {
        h.push_str(&format!(
            "<h3>{} · {} · {}</h3><p>{}</p>",
            escape(&i.life.key),
            i.life.priority.as_str(),
            escape(&i.rule),
            escape(&i.summary)
        ));
        if let Some((reason, text)) = &i.life.miss {
            h.push_str(&format!(
                "<p class=\"miss\">Answered late: {}{}</p>",
                reason.label(),
                if text.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", escape(text))
                }
            ));
        }
        h.push_str("<table><thead><tr><th scope=\"col\">When</th><th scope=\"col\">What</th><th scope=\"col\">Who</th><th scope=\"col\">Detail</th></tr></thead><tbody>");
        for (at, action, who, text) in &i.timeline {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                rfc3339(*at),
                escape(action),
                escape(who),
                escape(text)
            ));
        }
        h.push_str("</tbody></table>");
    }

    h.push_str("<h2>Capacity trends</h2>");
    h.push_str(&lines(
        "Spool disk used and CPU, percent",
        &labels,
        &[
            ("disk used %", days.iter().map(|d| d.3).collect()),
            ("CPU %", days.iter().map(|d| d.4).collect()),
        ],
        " %",
    ));
    h.push_str(&lines(
        "Queued recipients (daily mean)",
        &labels,
        &[("queued", days.iter().map(|d| d.2).collect())],
        "",
    ));

    h.push_str("<h2>Recommendations</h2><ul>");
    for r in recommendations(f) {
        h.push_str(&format!("<li>{}</li>", escape(&r)));
    }
    h.push_str("</ul></body></html>\n");
    h
}

fn seconds(v: Option<f64>) -> String {
    match v {
        Some(s) if s.is_finite() => format!("≤ {s} s"),
        Some(_) => "over 1 h".into(),
        None => "no deliveries".into(),
    }
}

/// Parses a stored sample (a bad row reads as empty).
pub fn sample(body: &str) -> SampleRecord {
    serde_json::from_str(body).unwrap_or_default()
}
