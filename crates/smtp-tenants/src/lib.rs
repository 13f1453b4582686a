//! The control plane behind SMTP: tenants log in with their API keys, and each message is
//! checked against the tenant's sending domains and limits before it is signed and spooled.
//! Refusals are SMTP replies with enhanced status codes.

use std::sync::Arc;

use smtp_server::tenants::{Admitted, BoxFuture, Login, Tenants};
use smtp_wire::Reply;
use store::{ControlStore, EventStore};
use tenancy::{Refusal, Tenancy};

/// [`Tenants`] over the shared [`Tenancy`], recording what it takes as events.
pub struct SmtpTenants<S> {
    pub tenancy: Arc<Tenancy<S>>,
    pub events: events::EventSink,
    /// Categories for bounces that come back.
    pub classifier: Arc<delivery::outcome::classify::Classifier>,
    /// The objectives: refusals by our fault count against acceptance.
    pub slo: Arc<ops::tracker::Tracker>,
}

impl<S: ControlStore + EventStore + 'static> Tenants for SmtpTenants<S> {
    fn login<'a>(&'a self, user: &'a str, password: &'a str) -> BoxFuture<'a, Login> {
        Box::pin(async move {
            let Some(token) = tenancy::smtp_token(user, password) else {
                return Login::NotTenant;
            };
            match self.tenancy.smtp_login(&token).await {
                Ok(Some(key)) => Login::Tenant(key.tenant_id),
                Ok(None) => Login::Refused,
                Err(Refusal::Suspended(reason)) => Login::Suspended(reason),
                Err(_) => Login::Unavailable,
            }
        })
    }

    fn admit<'a>(
        &'a self,
        tenant_id: &'a str,
        message_id: &'a str,
        sender: &'a str,
        recipients: &'a [String],
        content: &'a [u8],
    ) -> BoxFuture<'a, Result<Admitted, Reply>> {
        Box::pin(async move {
            let result = self
                .admit_message(tenant_id, message_id, sender, recipients, content)
                .await;
            // Refused by our fault before the spool (control plane down, DKIM key
            // unusable): a refused offer for the acceptance objectives.
            if let Err(reply) = &result
                && reply.code == 451
                && reply.status == Some((4, 3, 0))
            {
                self.slo.offered(ops::clock::wall_ms(), 1, 1);
            }
            result
        })
    }

    fn is_return_path(&self, address: &str) -> bool {
        self.tenancy.return_paths.parse_any(address).is_some()
    }

    fn inbound<'a>(&'a self, recipients: &'a [String], content: &'a [u8]) -> BoxFuture<'a, Reply> {
        Box::pin(async move {
            use events::inbound::Mailbox;
            let messages: Vec<(Mailbox, String, String)> = recipients
                .iter()
                .filter_map(|r| self.tenancy.return_paths.parse_any(r))
                .map(|(purpose, id, domain)| {
                    let mailbox = match purpose {
                        tenancy::verp::Purpose::Bounce => Mailbox::Bounces,
                        tenancy::verp::Purpose::Unsubscribe => Mailbox::Unsubscribe,
                    };
                    (mailbox, id, domain)
                })
                .collect();
            let author = tenancy::author(content).ok();
            match events::inbound::take(
                &self.tenancy.store,
                &self.classifier,
                &messages,
                author.as_deref(),
                content,
            )
            .await
            {
                Ok(n) => Reply::new(250, (2, 0, 0), format!("Ok: report taken, {n} events")),
                Err(err) => {
                    tracing::error!(error = %err, "recording a report failed");
                    Reply::new(451, (4, 3, 0), "Temporary local problem, try again later")
                }
            }
        })
    }

    fn admitted(
        &self,
        tenant_id: &str,
        message_id: &str,
        return_path: &str,
        queued: &[String],
        suppressed: &[String],
    ) {
        let domain = events::convert::sending_domain_of(return_path).unwrap_or_default();
        self.events.record(events::convert::admitted(
            tenant_id, message_id, queued, suppressed, None, "smtp", &domain,
        ));
    }
}

impl<S: ControlStore + EventStore + 'static> SmtpTenants<S> {
    fn admit_message<'a>(
        &'a self,
        tenant_id: &'a str,
        message_id: &'a str,
        sender: &'a str,
        recipients: &'a [String],
        content: &'a [u8],
    ) -> BoxFuture<'a, Result<Admitted, Reply>> {
        Box::pin(async move {
            let author = tenancy::author(content)
                .map_err(|err| Reply::new(550, (5, 6, 0), format!("Message refused: {err}")))?;
            let domain = self
                .tenancy
                .sending_domain(tenant_id, &author)
                .await
                .map_err(refusal)?
                .ok_or_else(|| not_ours("From address", &author))?;
            // The envelope sender (where bounces go) must be the tenant's too; `<>` is fine,
            // and so is the From domain, already looked up.
            let sender_domain = sender.rsplit_once('@').map_or("", |(_, d)| d);
            if !sender.is_empty()
                && !sender_domain.eq_ignore_ascii_case(&domain.domain)
                && self
                    .tenancy
                    .sending_domain(tenant_id, sender)
                    .await
                    .map_err(refusal)?
                    .is_none()
            {
                return Err(not_ours("Sender address", sender));
            }
            let blocked = self
                .tenancy
                .suppressed(tenant_id, recipients)
                .await
                .map_err(refusal)?;
            let suppressed: Vec<usize> = recipients
                .iter()
                .enumerate()
                .filter(|(_, r)| blocked.contains(&r.to_ascii_lowercase()))
                .map(|(i, _)| i)
                .collect();
            // A message that goes to nobody does not count against the limits.
            if suppressed.len() < recipients.len() {
                self.tenancy.admit(tenant_id, 1).await.map_err(refusal)?;
            }
            let signer = self.tenancy.signers.get(&domain).map_err(|err| {
                tracing::error!(domain = %domain.domain, error = %err, "DKIM key unusable");
                Reply::new(451, (4, 3, 0), "Temporary local problem, try again later")
            })?;
            let return_path = self
                .tenancy
                .return_paths
                .address(message_id, &domain.domain);
            let unsubscribe = self.tenancy.return_paths.address_for(
                tenancy::verp::Purpose::Unsubscribe,
                message_id,
                &domain.domain,
            );
            Ok(Admitted {
                signer,
                suppressed,
                return_path,
                unsubscribe,
            })
        })
    }
}

fn not_ours(what: &str, address: &str) -> Reply {
    let domain = address.rsplit_once('@').map_or(address, |(_, d)| d);
    Reply::new(
        550,
        (5, 7, 1),
        format!("{what} rejected: {domain} is not a sending domain of this account"),
    )
}

fn refusal(refusal: Refusal) -> Reply {
    match refusal {
        Refusal::Limited {
            message,
            retry_after_secs,
        } => Reply::new(
            451,
            (4, 7, 1),
            format!("{message}; try again in {retry_after_secs} s"),
        ),
        Refusal::Suspended(reason) => suspended(&reason),
        Refusal::UnknownTenant => Reply::new(550, (5, 7, 1), "This account no longer exists"),
        Refusal::Unavailable => {
            Reply::new(451, (4, 3, 0), "Temporary local problem, try again later")
        }
    }
}

/// The reply for a suspended tenant's message: permanent, with the operators' reason.
fn suspended(reason: &str) -> Reply {
    Reply::new(
        550,
        (5, 7, 1),
        format!("This account is suspended: {reason}"),
    )
}
