//! A campaign's content prepared once and composed per recipient: the frozen template
//! version (or the campaign's own subject and bodies) rendered with the contact's
//! properties, then the same composition, return path, List-Unsubscribe and DKIM signature
//! as API mail. The campaign's id rides in the message's attributes, so every event of the
//! message names it.

use std::sync::Arc;

use campaigns::documents::{Body, Content};
use campaigns::expand::{Addressee, Admission, Composed, Prepared, SendError, Sending};
use serde_json::{Map, Value, json};
use spool::MessageId;
use store::{Campaign, SendingDomain};

use crate::ApiState;
use crate::compose;
use crate::native::{Mailbox, Message};

use super::CampaignsStore;

/// Accepted events a campaign may leave unwritten before it waits for the writer.
const EVENTS_BACKLOG_MAX: usize = 100_000;
/// Longest a batch waits for the event writer.
const EVENTS_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// Prepares campaigns for the expansion.
pub struct Composer<S> {
    pub state: Arc<ApiState<S>>,
}

/// What every message of one campaign shares.
pub struct PreparedCampaign<S> {
    state: Arc<ApiState<S>>,
    tenant_id: String,
    campaign_id: String,
    reply_to: Option<Mailbox>,
    /// The campaign's content, or each A/B variant's (in order).
    pub(crate) variants: Vec<VariantParts>,
    domain: SendingDomain,
    signer: Arc<dkim::Signer>,
    /// The tracking host's base URL (`https://track.<domain>`) and the key, when the
    /// platform has a public URL to be reached at.
    tracking: Option<(String, tracking::token::TrackingKey)>,
    /// The tenant's mode says to keep whole client addresses.
    full_address: bool,
    /// The tenant's zone, for recipients whose own zone and country say nothing.
    tenant_zone: Option<String>,
    /// The campaign's lists (ids): its one-click unsubscribe leaves these.
    lists: Vec<String>,
    /// `List-Id` (RFC 2919) of the campaign's first list.
    list_id: Option<String>,
}

/// One content of a campaign (its only one, or an A/B variant's).
pub(crate) struct VariantParts {
    /// The variant's name (`None` without an A/B test).
    pub(crate) name: Option<String>,
    from: Mailbox,
    /// The subject and bodies, parsed once for every recipient.
    parts: templates::compiled::Compiled,
    /// The template version's test data, for test sends to addresses that are no contact.
    pub(crate) test_data: Value,
}

/// One message to compose.
pub(crate) struct Recipient<'a> {
    pub(crate) address: &'a str,
    /// The personalisation data.
    pub(crate) data: &'a Value,
    pub(crate) id: MessageId,
    pub(crate) not_before_ms: u64,
    /// The recipient's zone (reports count per zone).
    pub(crate) zone: Option<&'a str>,
    /// The A/B variant (0 without a test).
    pub(crate) variant: usize,
    /// A test send: subject marked, not tracked, left out of reports.
    pub(crate) test: bool,
}

/// The campaign's A/B test, if it has one.
pub(crate) fn ab_of(campaign: &Campaign) -> Result<Option<campaigns::ab::AbTest>, SendError> {
    let Some(text) = campaign.draft.ab_test.as_deref() else {
        return Ok(None);
    };
    let value: Value =
        serde_json::from_str(text).map_err(|_| campaigns::documents::DocumentError {
            field: "ab".into(),
            message: "is not JSON".into(),
        })?;
    let content: Value = serde_json::from_str(&campaign.draft.content).unwrap_or(Value::Null);
    Ok(Some(campaigns::ab::AbTest::read(&value, Some(&content))?))
}

/// The campaign's content document, read.
pub(crate) fn content_of(campaign: &Campaign) -> Result<Content, SendError> {
    let value: Value = serde_json::from_str(&campaign.draft.content).map_err(|_| {
        campaigns::documents::DocumentError {
            field: "content".into(),
            message: "is not JSON".into(),
        }
    })?;
    Ok(Content::read(&value)?)
}

fn refusal(field: &str, message: impl Into<String>) -> SendError {
    SendError::Document(campaigns::documents::DocumentError {
        field: field.into(),
        message: message.into(),
    })
}

/// The personalisation data for a contact: its properties, with `email`, `country`,
/// `locale` and `timezone` beside them.
pub(crate) fn contact_data(address: &str, contact: Option<&store::Contact>) -> Value {
    let mut data = Map::new();
    if let Some(contact) = contact {
        data.extend(contact.properties.clone());
        for (name, value) in [
            ("country", &contact.country),
            ("locale", &contact.locale),
            ("timezone", &contact.timezone),
        ] {
            if let Some(value) = value {
                data.insert(name.into(), Value::from(value.as_str()));
            }
        }
    }
    data.insert("email".into(), Value::from(address));
    Value::Object(data)
}

impl<S: CampaignsStore> Composer<S> {
    /// The campaign's content, template and sending domain checked against the tenant.
    pub(crate) async fn prepared(
        &self,
        campaign: &Campaign,
    ) -> Result<PreparedCampaign<S>, SendError> {
        let content = content_of(campaign)?;
        let store = &self.state.tenancy.store;
        let mut variants = Vec::new();
        match ab_of(campaign)? {
            None => variants.push(self.parts_of(campaign, &content, None).await?),
            Some(test) => {
                let base: Value =
                    serde_json::from_str(&campaign.draft.content).unwrap_or(Value::Null);
                for (n, variant) in test.variants.iter().enumerate() {
                    let own = test.content(&base, n)?;
                    let prefix = format!("ab.variants[{n}]");
                    variants.push(
                        self.parts_of(campaign, &own, Some((variant.name.clone(), prefix)))
                            .await?,
                    );
                }
            }
        }
        let domain = self
            .state
            .tenancy
            .sending_domain(&campaign.tenant_id, &content.from)
            .await
            .map_err(|err| SendError::Compose(err.to_string()))?
            .ok_or_else(|| {
                refusal(
                    "content.from",
                    format!(
                        "{} is not a sending domain of this account; add it with `tsubame domain add`",
                        content.from.rsplit_once('@').map_or("", |(_, d)| d)
                    ),
                )
            })?;
        let signer = self
            .state
            .tenancy
            .signers
            .get(&domain)
            .map_err(|err| SendError::Compose(err.to_string()))?;
        let (lists, list_id) = self.lists_of(campaign, &domain.domain).await?;
        let mode = store.tracking_mode(&campaign.tenant_id).await?;
        let tenant_zone = store.tenant_zone(&campaign.tenant_id).await?;
        let tracking = match (&self.state.public_url, self.state.tracking.get()) {
            _ if mode == store::TrackingMode::Off => None,
            (Some(public), Some(key)) => {
                let scheme = if public.starts_with("http://") {
                    "http"
                } else {
                    "https"
                };
                Some((
                    format!("{scheme}://{}", dkim::tracking_domain(&domain.domain)),
                    key.clone(),
                ))
            }
            _ => None,
        };
        Ok(PreparedCampaign {
            tracking,
            full_address: mode == store::TrackingMode::Full,
            tenant_zone,
            lists,
            list_id,
            state: self.state.clone(),
            tenant_id: campaign.tenant_id.clone(),
            campaign_id: campaign.id.clone(),
            variants,
            reply_to: content.reply_to.as_ref().map(|email| Mailbox {
                email: email.clone(),
                name: None,
            }),
            domain,
            signer,
        })
    }

    /// One content's template (or own parts) loaded and parsed; `variant` names it and
    /// the field its errors start with.
    async fn parts_of(
        &self,
        campaign: &Campaign,
        content: &Content,
        variant: Option<(String, String)>,
    ) -> Result<VariantParts, SendError> {
        let store = &self.state.tenancy.store;
        let at = variant.as_ref().map_or("content", |(_, at)| at.as_str());
        let (dialect, subject, html, text, test_data) = match &content.body {
            Body::Inline {
                subject,
                html,
                text,
                dialect,
            } => (
                *dialect,
                subject.clone(),
                html.clone(),
                text.clone(),
                json!({}),
            ),
            Body::Template {
                id,
                version,
                subject: subject_over,
            } => {
                let template = store
                    .template(&campaign.tenant_id, id)
                    .await?
                    .ok_or_else(|| {
                        refusal(
                            &format!("{at}.template_id"),
                            format!("the tenant has no template {id:?}"),
                        )
                    })?;
                let number = version.or(template.active_version).ok_or_else(|| {
                    refusal(
                        &format!("{at}.template_id"),
                        "the template has no active version",
                    )
                })?;
                let found = store
                    .version(&campaign.tenant_id, &template.id, number)
                    .await?
                    .ok_or_else(|| {
                        refusal(
                            &format!("{at}.template_version"),
                            format!("the template has no version {number}"),
                        )
                    })?;
                (
                    template.dialect,
                    subject_over.clone().unwrap_or(found.content.subject),
                    found.content.html,
                    found.content.text,
                    serde_json::from_str(&found.content.test_data).unwrap_or_else(|_| json!({})),
                )
            }
        };
        let parts =
            templates::compiled::Compiled::new(dialect, &subject, html.as_deref(), text.as_deref())
                .map_err(|err| refusal(&format!("{at}.{}", err.part), err.message))?;
        Ok(VariantParts {
            name: variant.map(|(name, _)| name),
            from: Mailbox {
                email: content.from.clone(),
                name: content.from_name.clone(),
            },
            parts,
            test_data,
        })
    }
}

impl<S: CampaignsStore> Composer<S> {
    /// The campaign's lists (ids, in its order) and the `List-Id` of the first:
    /// `"News" <ls_....list-id.acme.example>` (the name only when it is plain ASCII).
    async fn lists_of(
        &self,
        campaign: &Campaign,
        domain: &str,
    ) -> Result<(Vec<String>, Option<String>), SendError> {
        let document: Value = serde_json::from_str(&campaign.draft.audience).unwrap_or(Value::Null);
        let Ok(audience) = campaigns::documents::Audience::read(&document) else {
            return Ok((Vec::new(), None));
        };
        let known = self.state.tenancy.store.lists(&campaign.tenant_id).await?;
        let lists: Vec<&store::ContactList> = audience
            .lists
            .iter()
            .filter_map(|name| known.iter().find(|l| &l.id == name || &l.name == name))
            .collect();
        let list_id = lists.first().map(|list| {
            let plain = list
                .name
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ');
            let id = format!(
                "<{}.list-id.{domain}>",
                list.id.to_ascii_lowercase().replace('_', "-")
            );
            if plain {
                format!("\"{}\" {id}", list.name)
            } else {
                id
            }
        });
        Ok((lists.iter().map(|l| l.id.clone()).collect(), list_id))
    }
}

impl<S: CampaignsStore> Sending for Composer<S> {
    type Prepared = PreparedCampaign<S>;

    async fn prepare(&self, campaign: &Campaign) -> Result<PreparedCampaign<S>, SendError> {
        self.prepared(campaign).await
    }

    fn queue(&self) -> Option<&dyn campaigns::expand::Withdraw> {
        self.state.queue.get().map(|q| &**q)
    }
}

impl<S: CampaignsStore> PreparedCampaign<S> {
    /// Variant `n`'s sender, subject and bodies rendered with `data`, untracked (for a
    /// preview); the part that fails is named.
    pub(crate) fn rendered(
        &self,
        n: usize,
        data: &Value,
    ) -> Result<(String, templates::Rendered), String> {
        let variant = self
            .variants
            .get(n)
            .ok_or_else(|| format!("the campaign has no variant {n}"))?;
        let from = match &variant.from.name {
            Some(name) => format!("{name} <{}>", variant.from.email),
            None => variant.from.email.clone(),
        };
        let rendered = variant
            .parts
            .render(data)
            .map_err(|err| format!("{}: {}", err.part, err.message))?;
        Ok((from, rendered))
    }

    /// The message for `address`, personalised with `data`; a test's subject is marked
    /// and its events say `campaign_test` (reports leave them out).
    pub(crate) fn message_for(&self, to: &Recipient<'_>) -> Result<Composed, String> {
        let variant = self
            .variants
            .get(to.variant)
            .ok_or_else(|| format!("the campaign has no variant {}", to.variant))?;
        let subject_prefix = match (&variant.name, to.test) {
            (_, false) => String::new(),
            (None, true) => "[Test] ".to_string(),
            (Some(name), true) => format!("[Test {name}] "),
        };
        let rendered = variant
            .parts
            .render(to.data)
            .map_err(|err| format!("{}: {}", err.part, err.message))?;
        let html = match (&self.tracking, rendered.html) {
            (Some((base, key)), Some(html)) if !to.test => Some(self.tracked(base, key, &html, to)),
            (_, html) => html,
        };
        let (address, id, not_before_ms) = (to.address, to.id, to.not_before_ms);
        let message = Message {
            from: variant.from.clone(),
            to: vec![Mailbox {
                email: address.to_string(),
                name: None,
            }],
            cc: Vec::new(),
            bcc: Vec::new(),
            reply_to: self.reply_to.clone(),
            subject: format!("{subject_prefix}{}", rendered.subject),
            text: rendered.text,
            html,
            headers: self
                .list_id
                .iter()
                .map(|id| ("List-Id".to_string(), id.clone()))
                .collect(),
            attachments: Arc::from(Vec::new()),
            custom_id: None,
            metadata: Vec::new(),
            tags: Vec::new(),
            event_payload: None,
            send_at_ms: (not_before_ms > 0).then_some(not_before_ms),
        };
        let state = &self.state;
        let text_id = id.to_string();
        let return_paths = &state.tenancy.return_paths;
        let addresses = compose::Addresses {
            return_path: return_paths.address(&text_id, &self.domain.domain),
            unsubscribe: return_paths.address_for(
                tenancy::verp::Purpose::Unsubscribe,
                &text_id,
                &self.domain.domain,
            ),
            one_click: state.public_url.as_ref().map(|base| {
                let base = base.trim_end_matches('/');
                if self.lists.is_empty() {
                    // A campaign to segments only: unsubscribing stops all of the
                    // tenant's mail to the address.
                    format!(
                        "{base}/v1/unsubscribe/{}",
                        return_paths.unsubscribe_token(&text_id, &self.domain.domain, address)
                    )
                } else {
                    format!(
                        "{base}/v1/preferences/{}",
                        return_paths.preferences_token(
                            &self.tenant_id,
                            &text_id,
                            address,
                            &self.lists
                        )
                    )
                }
            }),
        };
        let submitter = compose::Submitter {
            tenant_id: self.tenant_id.clone(),
            client_ip: "campaign".into(),
        };
        let composed = compose::compose(
            &message,
            &[address.to_string()],
            &addresses,
            id,
            &state.hostname,
            &submitter,
            &self.signer,
        )
        .map_err(|err| err.to_string())?;
        let mut envelope = composed.envelope;
        envelope.attributes = Some(self.attributes(to));
        Ok(Composed {
            envelope,
            prefix: composed.signature.into_bytes(),
            content: composed.content,
        })
    }

    /// `html` with its links through the tracking host and an open pixel.
    fn tracked(
        &self,
        base: &str,
        key: &tracking::token::TrackingKey,
        html: &str,
        to: &Recipient<'_>,
    ) -> String {
        let sent_ms = to.not_before_ms.max(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        );
        let token = |kind, link: u16, url: &str| {
            key.seal(&tracking::token::Token {
                kind,
                message_id: to.id.0,
                sent_s: u32::try_from(sent_ms / 1000).unwrap_or(u32::MAX),
                link,
                tenant: self.tenant_id.clone(),
                recipient: to.address.to_string(),
                campaign: self.campaign_id.clone(),
                url: url.to_string(),
                full_address: self.full_address,
                variant: self.ab_variant(to),
                zone: to.zone.unwrap_or("").to_string(),
            })
        };
        let pixel = token(tracking::token::Kind::Open, 0, "").map(|t| {
            format!(
                "<img src=\"{base}/t/o/{t}.gif\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;width:1px;height:1px;border:0\">"
            )
        });
        tracking::rewrite::rewrite(html, pixel.as_deref(), |n, url| {
            token(tracking::token::Kind::Click, n, url).map(|t| format!("{base}/t/c/{t}"))
        })
    }

    /// The variant number a message carries (none without an A/B test).
    fn ab_variant(&self, to: &Recipient<'_>) -> Option<u8> {
        self.variants
            .get(to.variant)
            .and_then(|v| v.name.as_ref())
            .and_then(|_| u8::try_from(to.variant).ok())
    }

    /// What the message's events carry: the campaign, the recipient's zone and the A/B
    /// variant (reports count per zone and variant), and whether it is a test.
    fn attributes(&self, to: &Recipient<'_>) -> String {
        let mut attributes = json!({ "campaign_id": self.campaign_id });
        if let Some(zone) = to.zone {
            attributes["zone"] = Value::from(zone);
        }
        if let Some(variant) = self.ab_variant(to) {
            attributes["variant"] = Value::from(variant);
        }
        if to.test {
            attributes["campaign_test"] = Value::from(true);
        }
        attributes.to_string()
    }

    /// `accepted` events for spooled messages (id, recipient, the message's attributes).
    pub(crate) fn record_accepted(&self, spooled: &[(MessageId, String, Option<String>)]) {
        let mut events = Vec::with_capacity(spooled.len());
        for (id, address, attributes) in spooled {
            events.extend(events::convert::admitted(
                &self.tenant_id,
                &id.to_string(),
                std::slice::from_ref(address),
                &[],
                attributes.as_deref(),
                "campaign",
                &self.domain.domain,
            ));
        }
        self.state.events.record(events);
    }
}

impl<S: CampaignsStore> Prepared for PreparedCampaign<S> {
    async fn admit(&self, messages: usize) -> Admission {
        match self.state.tenancy.admit(&self.tenant_id, messages).await {
            Ok(()) => Admission::Granted,
            Err(tenancy::Refusal::Limited {
                message,
                retry_after_secs,
            }) => Admission::Wait(
                std::time::Duration::from_secs(retry_after_secs.max(1)),
                message,
            ),
            Err(tenancy::Refusal::Unavailable) => Admission::Wait(
                std::time::Duration::from_secs(5),
                "control plane unavailable".into(),
            ),
            Err(refusal) => Admission::Refused(refusal.to_string()),
        }
    }

    fn compose(&self, to: &Addressee<'_>) -> Result<Composed, String> {
        let data = contact_data(to.address, Some(to.contact));
        let (zone, _) = campaigns::zones::recipient_zone(
            to.contact.timezone.as_deref(),
            to.contact.country.as_deref(),
            self.tenant_zone.as_deref(),
        );
        let zone = zone.iana_name().unwrap_or("UTC");
        self.message_for(&Recipient {
            address: to.address,
            data: &data,
            id: to.id,
            not_before_ms: to.not_before_ms,
            zone: Some(zone),
            variant: to.variant,
            test: false,
        })
    }

    async fn recorded(&self, spooled: &[(MessageId, String, Option<String>)], _skipped: &[String]) {
        self.record_accepted(spooled);
        // Events are written in the background; a campaign must not outrun them by more
        // than a bounded backlog (memory), but never waits on them for long.
        let deadline = std::time::Instant::now() + EVENTS_WAIT_MAX;
        while self.state.events.pending() > EVENTS_BACKLOG_MAX
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
