//! Stored events from what the ingresses and delivery report. A message's custom id and
//! tags get their own columns (they are filters); its metadata and event payload go into
//! each event's detail, so webhooks hand them back to the sender.

use serde_json::{Map, Value, json};
use store::{EventKind, NewEvent};

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The parts of a message's attributes (JSON) that events carry.
struct Attributes {
    custom_id: Option<String>,
    tags: Option<String>,
    /// metadata and event_payload, for the detail.
    extra: Map<String, Value>,
}

fn attributes(text: Option<&str>) -> Attributes {
    let mut out = Attributes {
        custom_id: None,
        tags: None,
        extra: Map::new(),
    };
    let Some(Value::Object(map)) = text.and_then(|t| serde_json::from_str(t).ok()) else {
        return out;
    };
    for (key, value) in map {
        match (key.as_str(), value) {
            ("custom_id", Value::String(id)) => out.custom_id = Some(id),
            ("tags", tags @ Value::Array(_)) => out.tags = Some(tags.to_string()),
            (_, value) => {
                out.extra.insert(key, value);
            }
        }
    }
    out
}

fn event(
    tenant_id: &str,
    time_ms: i64,
    kind: EventKind,
    message_id: &str,
    recipient: &str,
    attrs: &Attributes,
    mut detail: Map<String, Value>,
) -> NewEvent {
    detail.extend(attrs.extra.clone());
    NewEvent {
        tenant_id: tenant_id.to_string(),
        time_ms,
        kind,
        message_id: message_id.to_string(),
        recipient: recipient.to_ascii_lowercase(),
        custom_id: attrs.custom_id.clone(),
        tags: attrs.tags.clone(),
        detail: (!detail.is_empty()).then(|| Value::Object(detail).to_string()),
    }
}

/// A delivery event of a tenant's message; `None` for anything else (the operator's own
/// mail, operator deletions).
pub fn from_delivery(e: &delivery::events::Event) -> Option<NewEvent> {
    use delivery::events::Outcome;
    let tenant = spool::tenant_of(e.auth_user.as_deref()?)?;
    let kind = match e.outcome {
        Outcome::Delivered => EventKind::Delivered,
        Outcome::Deferred => EventKind::Deferred,
        Outcome::Bounced => EventKind::Bounced,
        Outcome::Expired => EventKind::Expired,
        Outcome::Deleted => return None,
    };
    let mut detail = Map::new();
    detail.insert("response".into(), e.response.clone().into());
    if let Some(category) = e.category {
        detail.insert("category".into(), category.into());
    }
    detail.insert("attempt".into(), e.attempt.into());
    if let Some(host) = &e.remote_host {
        detail.insert("remote_host".into(), host.clone().into());
    }
    if let Some(ip) = e.remote_ip {
        detail.insert("remote_ip".into(), ip.to_string().into());
    }
    if let Some(tls) = &e.tls {
        detail.insert("tls".into(), tls.clone().into());
    }
    detail.insert("queued_ms".into(), e.queued_ms.into());
    if let Some(domain) = sending_domain_of(&e.sender) {
        detail.insert("sending_domain".into(), domain.into());
    }
    Some(event(
        tenant,
        e.time_ms as i64,
        kind,
        &e.message_id,
        &e.recipient,
        &attributes(e.attributes.as_deref()),
        detail,
    ))
}

/// The tenant's sending domain a return path of ours names (`...@bounce.<domain>`), for
/// the events' `sending_domain` (dashboards count per sending domain from it).
pub fn sending_domain_of(return_path: &str) -> Option<String> {
    let (_, host) = return_path.rsplit_once('@')?;
    let host = host.to_ascii_lowercase();
    host.strip_prefix("bounce.")
        .filter(|d| !d.is_empty())
        .map(str::to_string)
}

/// `accepted` for each recipient of a message just spooled, and `suppressed` for each one
/// dropped because the tenant suppresses it. `via`: `api` or `smtp`.
pub fn admitted(
    tenant_id: &str,
    message_id: &str,
    queued: &[String],
    suppressed: &[String],
    attributes_json: Option<&str>,
    via: &str,
    sending_domain: &str,
) -> Vec<NewEvent> {
    let attrs = attributes(attributes_json);
    let now = now_ms();
    let mut out = Vec::with_capacity(queued.len() + suppressed.len());
    for rcpt in queued {
        let mut detail = Map::new();
        detail.insert("via".into(), via.into());
        detail.insert("sending_domain".into(), sending_domain.into());
        out.push(event(
            tenant_id,
            now,
            EventKind::Accepted,
            message_id,
            rcpt,
            &attrs,
            detail,
        ));
    }
    for rcpt in suppressed {
        let detail = json!({"via": via, "reason": "the recipient is on the suppression list",
            "sending_domain": sending_domain});
        let Value::Object(detail) = detail else {
            continue;
        };
        out.push(event(
            tenant_id,
            now,
            EventKind::Suppressed,
            message_id,
            rcpt,
            &attrs,
            detail,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_id_and_tags_are_columns_and_metadata_rides_in_the_detail() {
        let events = admitted(
            "t_1",
            "M1",
            &["Ann@X.test".into()],
            &["bob@x.test".into()],
            Some(
                r#"{"custom_id":"c-1","tags":["a","b"],"metadata":{"k":"v"},"event_payload":"p"}"#,
            ),
            "api",
            "acme.test",
        );
        assert_eq!(events.len(), 2);
        let accepted = &events[0];
        assert_eq!(
            (accepted.kind, accepted.recipient.as_str()),
            (EventKind::Accepted, "ann@x.test")
        );
        assert_eq!(accepted.custom_id.as_deref(), Some("c-1"));
        assert_eq!(accepted.tags.as_deref(), Some(r#"["a","b"]"#));
        let detail: Value = serde_json::from_str(accepted.detail.as_deref().unwrap()).unwrap();
        assert_eq!(
            detail,
            json!({"via":"api","sending_domain":"acme.test","metadata":{"k":"v"},"event_payload":"p"})
        );
        assert_eq!(events[1].kind, EventKind::Suppressed);
    }

    #[test]
    fn only_tenants_delivery_events_are_kept() {
        let mut e = delivery::events::Event {
            time_ms: 5,
            outcome: delivery::events::Outcome::Bounced,
            message_id: "M1".into(),
            sender: "bounces+M1.tag@bounce.acme.test".into(),
            recipient: "ann@x.test".into(),
            site: "mx".into(),
            attempt: 1,
            remote_host: Some("mx.x.test".into()),
            remote_ip: None,
            response: "550 5.1.1 no such user".into(),
            category: Some("invalid_recipient"),
            tls: None,
            attempt_ms: 1,
            queued_ms: 2,
            auth_user: Some("alice".into()),
            attributes: None,
        };
        assert!(from_delivery(&e).is_none(), "the operator's own mail");
        e.auth_user = Some("tenant:t_1".into());
        let stored = from_delivery(&e).expect("a tenant's");
        assert_eq!(
            (stored.tenant_id.as_str(), stored.kind),
            ("t_1", EventKind::Bounced)
        );
        let detail: Value = serde_json::from_str(stored.detail.as_deref().unwrap()).unwrap();
        assert_eq!(detail["category"], "invalid_recipient");
        assert_eq!(detail["remote_host"], "mx.x.test");
        assert_eq!(
            detail["sending_domain"], "acme.test",
            "from the return path"
        );
    }
}
