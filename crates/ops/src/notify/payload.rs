//! What each channel is sent, in its published format (no I/O):
//!
//! - Slack incoming webhooks: `text` (the fallback) and Block Kit `blocks` (header,
//!   section with mrkdwn and fields, context).
//! - PagerDuty Events API v2: `routing_key`, `event_action` (`trigger`, `acknowledge`,
//!   `resolve`), `dedup_key` (the alert's id) and, to trigger, a `payload` with `summary`
//!   (≤ 1024 characters), `source`, `severity` (`critical`, `error`, `warning`, `info`),
//!   `timestamp`, `component`, `group`, `class`, `custom_details`; `links` to the runbook.
//! - The generic webhook: a versioned JSON document, signed like the event webhooks
//!   (`X-Tsubame-Timestamp`, `X-Tsubame-Signature: v1=<HMAC-SHA256 of "<ts>.<body>">`).
//! - Mail: a plain-text RFC 5322 message, sent through tsubame itself.

use serde_json::{Value, json};

use crate::alerts::{Change, ChangeKind};
use crate::lifecycle::Priority;
use crate::oncall::Person;

/// What a notification knows beyond the alert.
#[derive(Debug, Clone)]
pub struct Context {
    /// This server (its SMTP host name).
    pub source: String,
    pub runbook_url: String,
    /// Who answers at the alert's level now.
    pub on_call: Option<Person>,
    pub now_ms: i64,
}

pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn headline(change: &Change) -> String {
    let a = &change.alert;
    let what = match &change.kind {
        ChangeKind::Triggered => "triggered".to_string(),
        ChangeKind::Escalated(level) => format!("escalated to L{level}"),
        ChangeKind::Reprioritised(was) => {
            format!("now {} (was {})", a.life.priority.as_str(), was.as_str())
        }
        ChangeKind::Refired => "firing again".into(),
        ChangeKind::Cleared => "condition cleared".into(),
        ChangeKind::Acknowledged => "acknowledged".into(),
        ChangeKind::Resolved => "resolved".into(),
        ChangeKind::Silenced(id) => format!("silenced by {id}"),
        ChangeKind::Unsilenced => "silence ended".into(),
    };
    format!("[{}] {} {what}", a.life.priority.as_str(), a.rule.name())
}

fn who_did(change: &Change) -> Option<String> {
    match &change.alert.life.state {
        crate::lifecycle::State::Acknowledged { by, .. }
            if change.kind == ChangeKind::Acknowledged =>
        {
            Some(by.clone())
        }
        crate::lifecycle::State::Resolved { by, .. } => Some(by.clone()),
        _ => None,
    }
}

pub fn slack_alert(change: &Change, ctx: &Context) -> Value {
    let a = &change.alert;
    let title = headline(change);
    let mut details = a.summary.clone();
    if a.members.len() > 1 {
        let list: Vec<String> = a
            .members
            .iter()
            .take(10)
            .map(|m| format!("• {m}"))
            .collect();
        details = format!("{details}\n{}", list.join("\n"));
    }
    let on_call = match &ctx.on_call {
        Some(Person {
            slack: Some(id), ..
        }) => format!("<@{id}>"),
        Some(p) => p.name.clone(),
        None => "nobody on call".into(),
    };
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": format!("*Priority*\n{}", a.life.priority.as_str())}),
        json!({"type": "mrkdwn", "text": format!("*Level*\nL{} · {on_call}", a.life.level)}),
        json!({"type": "mrkdwn", "text": format!("*Triggered*\n{}", rfc3339(a.life.triggered_ms))}),
        json!({"type": "mrkdwn", "text": format!("*Alert*\n`{}`", a.id)}),
    ];
    if let Some(by) = who_did(change) {
        fields.push(json!({"type": "mrkdwn", "text": format!("*By*\n{by}")}));
    }
    json!({
        "text": format!("{title}: {}", a.summary),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(&title, 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&details, 3000)}, "fields": fields},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": format!("{} · <{}|runbook>", ctx.source, ctx.runbook_url)}
            ]}
        ]
    })
}

fn pd_severity(p: Priority) -> &'static str {
    match p {
        Priority::P1 => "critical",
        Priority::P2 => "error",
        Priority::P3 => "warning",
        Priority::P4 => "info",
    }
}

/// The PagerDuty event for a change, when it maps to one.
pub fn pagerduty(change: &Change, ctx: &Context, routing_key: &str) -> Option<Value> {
    let a = &change.alert;
    let action = match change.kind {
        ChangeKind::Triggered | ChangeKind::Refired | ChangeKind::Reprioritised(_) => "trigger",
        ChangeKind::Acknowledged => "acknowledge",
        ChangeKind::Resolved => "resolve",
        _ => return None,
    };
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": a.id,
    });
    if action == "trigger" {
        event["payload"] = json!({
            "summary": truncate(&format!("[{}] {}", a.life.priority.as_str(), a.summary), 1024),
            "source": ctx.source,
            "severity": pd_severity(a.life.priority),
            "timestamp": rfc3339(a.life.triggered_ms),
            "component": a.labels.get("site").or(a.labels.get("provider")).or(a.labels.get("tenant")).cloned().unwrap_or_else(|| "tsubame".into()),
            "group": a.labels.get("provider").cloned().unwrap_or_else(|| "server".into()),
            "class": a.rule.name(),
            "custom_details": {
                "priority": a.life.priority.as_str(),
                "labels": a.labels,
                "members": a.members,
                "alert_id": a.id,
            }
        });
        event["links"] = json!([{"href": ctx.runbook_url, "text": "Runbook"}]);
        event["client"] = json!("tsubame");
    }
    Some(event)
}

pub fn webhook_alert(change: &Change, ctx: &Context) -> Value {
    let a = &change.alert;
    json!({
        "version": 1,
        "type": "alert",
        "event": change.kind.action(),
        "at": rfc3339(ctx.now_ms),
        "source": ctx.source,
        "alert": {
            "id": a.id,
            "rule": a.rule.name(),
            "priority": a.life.priority.as_str(),
            "level": a.life.level,
            "labels": a.labels,
            "summary": a.summary,
            "members": a.members,
            "triggered_at": rfc3339(a.life.triggered_ms),
            "cleared_at": a.cleared_ms.map(rfc3339),
            "by": who_did(change),
            "runbook": ctx.runbook_url,
        },
        "on_call": ctx.on_call.as_ref().map(|p| p.name.clone()),
    })
}

/// Header values may not carry line breaks (header injection) or run on for ever.
fn header_text(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate(&one_line, 200)
}

/// A plain-text message (RFC 5322, UTF-8, CRLF lines).
pub fn mail(
    from: &str,
    to: &[String],
    subject: &str,
    body: &str,
    now_ms: i64,
    id: &str,
) -> Vec<u8> {
    let date = jiff::Timestamp::from_millisecond(now_ms)
        .map(|t| {
            jiff::fmt::rfc2822::to_string(&t.to_zoned(jiff::tz::TimeZone::UTC)).unwrap_or_default()
        })
        .unwrap_or_default();
    let domain = from.rsplit('@').next().unwrap_or("localhost");
    let subject = header_text(subject);
    let subject = if subject.is_ascii() {
        subject
    } else {
        encoded_words(&subject)
    };
    let mut text = format!(
        "From: {from}\r\nTo: {}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id}@{domain}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\
         Auto-Submitted: auto-generated\r\n\r\n",
        to.join(", ")
    );
    for line in body.lines() {
        // A line of a lone dot is fine in a spooled body; keep lines short of SMTP's limit.
        text.push_str(&truncate(line, 900));
        text.push_str("\r\n");
    }
    text.into_bytes()
}

pub fn mail_alert(change: &Change, ctx: &Context, from: &str, to: &[String]) -> Vec<u8> {
    let a = &change.alert;
    let mut body = format!("{}\r\n\r\n{}\r\n", headline(change), a.summary);
    for m in a.members.iter().skip(1).take(20) {
        body.push_str(&format!("  - {m}\r\n"));
    }
    body.push_str(&format!(
        "\r\nAlert: {}\r\nPriority: {} (answer within {} min)\r\nLevel: L{}\r\nTriggered: {}\r\nServer: {}\r\nRunbook: {}\r\n",
        a.id,
        a.life.priority.as_str(),
        a.life.priority.response_window().as_secs() / 60,
        a.life.level,
        rfc3339(a.life.triggered_ms),
        ctx.source,
        ctx.runbook_url
    ));
    mail(
        from,
        to,
        &format!("[tsubame {}] {}", a.life.priority.as_str(), a.summary),
        &body,
        ctx.now_ms,
        &format!("{}.{}", a.id, ctx.now_ms),
    )
}

/// RFC 2047 encoded words of at most 75 characters each (whole UTF-8 characters per
/// word), folded onto continuation lines.
fn encoded_words(text: &str) -> String {
    use base64::Engine as _;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        // 45 bytes of UTF-8 are 60 of base64: with "=?UTF-8?B?" and "?=", 72.
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w)
            )
        })
        .collect::<Vec<_>>()
        .join("\r\n ")
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_utf8_subjects_become_short_encoded_words() {
        let subject = "[tsubame P1] objective burns at 100.0× (page policy at 14.4×); ".repeat(3);
        let header = super::encoded_words(&subject);
        for word in header.split("\r\n ") {
            assert!(word.len() <= 75, "{word}");
            assert!(word.starts_with("=?UTF-8?B?") && word.ends_with("?="));
        }
        let message = super::mail(
            "a@b.test",
            &["c@d.test".into()],
            "ok × ok\r\nBcc: x@y",
            "body",
            0,
            "id",
        );
        let text = String::from_utf8(message).unwrap();
        assert!(!text.contains("\r\nBcc:"), "no header injection: {text}");
        let subject = text.lines().find(|l| l.starts_with("Subject:")).unwrap();
        assert!(subject.len() <= 78, "{subject}");
    }
}
