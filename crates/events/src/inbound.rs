//! Reports that come back to a return path become events: a DSN's failed recipients are
//! `bounced` (delayed ones `deferred`), a feedback report is `complained`, and a free-text
//! bounce is matched to the message's recipients by address. Each report is about the
//! message its return path names; only that message's recipients (from its `accepted`
//! events) can be reported on, so a report cannot touch anyone else. The events are written
//! before the SMTP reply (a 250 means they are on disk), and the suppressions they call for
//! are added at once.

use delivery::outcome::classify::Classifier;
use serde_json::{Map, Value, json};
use store::{ControlStore, EventFilter, EventKind, EventStore, NewEvent, StoreError};

use crate::reports::{self, Report};

/// What a message's `accepted` events say about it.
struct Sent {
    tenant_id: String,
    recipients: Vec<String>,
    custom_id: Option<String>,
    tags: Option<String>,
    /// The campaign the message belongs to (its id, variant, zone, test mark), carried on
    /// so that bounces, complaints and unsubscribes count in the campaign's report.
    campaign: Map<String, Value>,
}

/// The keys of a message's attributes that attribute its later events to a campaign.
const CAMPAIGN_KEYS: [&str; 4] = ["campaign_id", "variant", "zone", "campaign_test"];

/// The campaign attribution in an `accepted` event's detail (empty when none).
fn campaign_of(detail: Option<&str>) -> Map<String, Value> {
    let Some(Ok(Value::Object(detail))) = detail
        .filter(|d| d.contains("\"campaign_id\""))
        .map(serde_json::from_str::<Value>)
    else {
        return Map::new();
    };
    detail
        .into_iter()
        .filter(|(k, _)| CAMPAIGN_KEYS.contains(&k.as_str()))
        .collect()
}

/// The campaign a tenant's message belongs to, from its `accepted` events, as detail
/// fields to add to a later event about it (empty when it is no campaign's).
pub async fn campaign_detail<S: EventStore>(
    store: &S,
    tenant_id: &str,
    message_id: &str,
) -> Result<Map<String, Value>, StoreError> {
    let filter = EventFilter {
        message_id: Some(message_id.to_string()),
        kinds: vec![EventKind::Accepted],
        limit: 1,
        ..EventFilter::default()
    };
    let accepted = store.events(tenant_id, &filter).await?;
    Ok(campaign_of(
        accepted.first().and_then(|e| e.event.detail.as_deref()),
    ))
}

async fn sent<S: ControlStore + EventStore>(
    store: &S,
    message_id: &str,
    domain: &str,
) -> Result<Option<Sent>, StoreError> {
    let Some(tenant_id) = store.domain_owner(domain).await? else {
        return Ok(None);
    };
    let filter = EventFilter {
        message_id: Some(message_id.to_string()),
        kinds: vec![EventKind::Accepted],
        limit: 1000,
        ..EventFilter::default()
    };
    let accepted = store.events(&tenant_id, &filter).await?;
    let Some(first) = accepted.first() else {
        return Ok(None);
    };
    Ok(Some(Sent {
        custom_id: first.event.custom_id.clone(),
        tags: first.event.tags.clone(),
        recipients: accepted.iter().map(|e| e.event.recipient.clone()).collect(),
        campaign: campaign_of(first.event.detail.as_deref()),
        tenant_id,
    }))
}

fn event(
    sent: &Sent,
    message_id: &str,
    recipient: &str,
    kind: EventKind,
    mut detail: Value,
) -> NewEvent {
    if let Value::Object(map) = &mut detail {
        map.extend(sent.campaign.clone());
    }
    NewEvent {
        tenant_id: sent.tenant_id.clone(),
        time_ms: crate::convert::now_ms(),
        kind,
        message_id: message_id.to_string(),
        recipient: recipient.to_string(),
        custom_id: sent.custom_id.clone(),
        tags: sent.tags.clone(),
        detail: Some(detail.to_string()),
    }
}

/// The message's recipient a reported address is, if any (case-insensitively).
fn ours<'a>(sent: &'a Sent, address: &str) -> Option<&'a String> {
    sent.recipients
        .iter()
        .find(|r| r.eq_ignore_ascii_case(address.trim()))
}

fn status_triple(text: &str) -> Option<(u8, u16, u16)> {
    let mut it = text.split('.').map(|p| p.trim().parse::<u16>().ok());
    Some((it.next()??.try_into().ok()?, it.next()??, it.next()??))
}

/// The events one report about `message_id` (sent from `domain`) calls for.
fn events_for(
    classifier: &Classifier,
    report: &Report,
    message_id: &str,
    sent: &Sent,
) -> Vec<NewEvent> {
    let mut out = Vec::new();
    match report {
        Report::Dsn(recipients) => {
            for r in recipients {
                let Some(rcpt) = ours(sent, &r.recipient) else {
                    continue;
                };
                let kind = match r.action.as_str() {
                    "failed" => EventKind::Bounced,
                    "delayed" => EventKind::Deferred,
                    _ => continue,
                };
                let status = r.status.as_deref().and_then(status_triple);
                let text = r.diagnostic.clone().unwrap_or_default();
                let (_, code) = reports::codes_in(&text);
                let default_code = if kind == EventKind::Bounced { 550 } else { 450 };
                let category = classifier.classify(code.unwrap_or(default_code), status, &text);
                let mut detail = Map::new();
                detail.insert("source".into(), "dsn".into());
                detail.insert("response".into(), text.into());
                if let Some(s) = &r.status {
                    detail.insert("status".into(), s.clone().into());
                }
                detail.insert("category".into(), category.as_str().into());
                out.push(event(sent, message_id, rcpt, kind, Value::Object(detail)));
            }
        }
        Report::Feedback {
            feedback_type,
            recipients,
        } => {
            let mut named: Vec<&String> = recipients.iter().filter_map(|r| ours(sent, r)).collect();
            if named.is_empty() && sent.recipients.len() == 1 {
                named.push(&sent.recipients[0]);
            }
            for rcpt in named {
                let detail = json!({"source": "feedback", "feedback_type": feedback_type});
                out.push(event(sent, message_id, rcpt, EventKind::Complained, detail));
            }
        }
        Report::Unstructured { text } => {
            let lower = text.to_ascii_lowercase();
            let mut named: Vec<&String> = sent
                .recipients
                .iter()
                .filter(|r| lower.contains(&r.to_ascii_lowercase()))
                .collect();
            if named.is_empty() && sent.recipients.len() == 1 {
                named.push(&sent.recipients[0]);
            }
            let (status, code) = reports::codes_in(text);
            let temporary = matches!(status, Some((4, _, _))) || code.is_some_and(|c| c < 500);
            let kind = if temporary {
                EventKind::Deferred
            } else {
                EventKind::Bounced
            };
            let category = classifier.classify(code.unwrap_or(550), status, text);
            // The line with the server's answer, else the start of the text.
            let response = text
                .lines()
                .find(|l| code.is_some_and(|c| l.contains(&c.to_string())))
                .unwrap_or_else(|| text.lines().find(|l| !l.trim().is_empty()).unwrap_or(""))
                .trim()
                .chars()
                .take(500)
                .collect::<String>();
            for rcpt in named {
                let detail = json!({"source": "bounce-text", "response": response, "category": category.as_str()});
                out.push(event(sent, message_id, rcpt, kind, detail));
            }
        }
    }
    out
}

/// A recipient's one-click unsubscribe (RFC 8058) for a message sent from `domain`:
/// recorded (with its suppression) before the answer. False when the message or the
/// recipient is unknown.
pub async fn unsubscribe<S: ControlStore + EventStore>(
    store: &S,
    message_id: &str,
    domain: &str,
    recipient: &str,
) -> Result<bool, StoreError> {
    let Some(sent) = sent(store, message_id, domain).await? else {
        return Ok(false);
    };
    let Some(rcpt) = ours(&sent, recipient) else {
        return Ok(false);
    };
    let detail = json!({"source": "one-click"});
    let events = [event(
        &sent,
        message_id,
        rcpt,
        EventKind::Unsubscribed,
        detail,
    )];
    store.add_events(&events).await?;
    crate::suppress(store, &events).await;
    Ok(true)
}

/// Which of our addresses a message came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mailbox {
    /// A return path: bounces and feedback reports.
    Bounces,
    /// A List-Unsubscribe address: the recipient asks for no more mail.
    Unsubscribe,
}

/// Takes one message sent to our addresses naming `messages` ((mailbox, message id,
/// sending domain)); `author` is its From address (who unsubscribes). Records the events
/// it calls for and their suppressions. Returns how many events.
pub async fn take<S: ControlStore + EventStore>(
    store: &S,
    classifier: &Classifier,
    messages: &[(Mailbox, String, String)],
    author: Option<&str>,
    content: &[u8],
) -> Result<usize, StoreError> {
    let report = reports::parse(content);
    let mut events = Vec::new();
    for (mailbox, message_id, domain) in messages {
        let Some(sent) = sent(store, message_id, domain).await? else {
            tracing::info!(message = %message_id, domain = %domain, "mail about a message with no record; dropped");
            continue;
        };
        match mailbox {
            Mailbox::Bounces => {
                if let Some(report) = &report {
                    events.extend(events_for(classifier, report, message_id, &sent));
                }
            }
            // Only the recipient itself can unsubscribe: the request must come from one of
            // the message's recipients.
            Mailbox::Unsubscribe => {
                if let Some(rcpt) = author.and_then(|a| ours(&sent, a)) {
                    let detail = json!({"source": "list-unsubscribe"});
                    events.push(event(
                        &sent,
                        message_id,
                        rcpt,
                        EventKind::Unsubscribed,
                        detail,
                    ));
                }
            }
        }
    }
    if events.is_empty() {
        return Ok(0);
    }
    store.add_events(&events).await?;
    crate::suppress(store, &events).await;
    Ok(events.len())
}
