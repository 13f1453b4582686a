//! What a tenant may send, the same for every way mail comes in (HTTP API and SMTP AUTH):
//! which credentials name the tenant, which sending domains it has added (and their DKIM
//! signers), and how much it may send (rate and daily quota).
//!
//! # Layout
//! - [`Tenancy`] (this file): the shared state and the checks every ingress asks.
//! - [`quota`]: per-tenant rate limits and daily quotas, counted in memory, saved each second.
//! - [`signers`]: parsed DKIM keys by sending domain.
//! - [`author`]: the From address of received content, for SMTP.
//! - [`verp`]: signed return paths, so bounces name their message.

pub mod author;
pub mod quota;
pub mod signers;
pub mod verp;

use std::sync::Arc;
use std::time::Duration;

use store::{ApiKey, ControlStore, EventStore, Scope, SendingDomain};

pub use author::{AuthorError, author};
pub use quota::Quotas;
pub use signers::Signers;
pub use verp::ReturnPaths;

/// Why a tenant's message is not taken now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Over the rate limit or the daily quota: come back later.
    #[error("{message}")]
    Limited {
        message: String,
        retry_after_secs: u64,
    },
    /// The platform suspended the tenant (the reason its operators gave).
    #[error("the account is suspended: {0}")]
    Suspended(String),
    /// The tenant was removed while its key was in use.
    #[error("unknown tenant")]
    UnknownTenant,
    /// The control plane did not answer.
    #[error("control plane unavailable")]
    Unavailable,
}

fn unavailable(err: store::StoreError) -> Refusal {
    tracing::error!(error = %err, "control plane unavailable");
    Refusal::Unavailable
}

/// The state every ingress shares, so a tenant's limits count API and SMTP mail together.
pub struct Tenancy<S> {
    pub store: S,
    pub quotas: Quotas,
    pub signers: Arc<Signers>,
    /// Signs and reads the return paths of tenants' mail.
    pub return_paths: ReturnPaths,
}

impl<S: ControlStore + 'static> Tenancy<S> {
    /// The state, with the task that saves daily counts once a second.
    pub fn new(store: S, return_paths: ReturnPaths) -> Arc<Tenancy<S>> {
        let tenancy = Arc::new(Tenancy {
            store,
            quotas: Quotas::default(),
            signers: Arc::default(),
            return_paths,
        });
        let weak = Arc::downgrade(&tenancy);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let Some(tenancy) = weak.upgrade() else {
                    return;
                };
                tenancy.quotas.flush(&tenancy.store).await;
            }
        });
        tenancy
    }
}

impl<S: ControlStore> Tenancy<S> {
    /// Admits `messages` for the tenant, or says why not.
    pub async fn admit(&self, tenant_id: &str, messages: usize) -> Result<(), Refusal> {
        self.quotas.admit(&self.store, tenant_id, messages).await
    }

    /// The tenant's sending domain for an address (`user@domain`), if it has added it.
    pub async fn sending_domain(
        &self,
        tenant_id: &str,
        address: &str,
    ) -> Result<Option<SendingDomain>, Refusal> {
        let Some((_, domain)) = address.rsplit_once('@') else {
            return Ok(None);
        };
        self.store
            .sending_domain(tenant_id, &domain.to_ascii_lowercase())
            .await
            .map_err(unavailable)
    }

    /// The live key with the `send` scope a token (from [`smtp_token`]) names, if any;
    /// [`Refusal::Suspended`] when its tenant is suspended.
    pub async fn smtp_login(&self, token: &str) -> Result<Option<ApiKey>, Refusal> {
        let key = self.store.authenticate(token).await.map_err(unavailable)?;
        let Some(key) = key.filter(|k| k.scopes.allows(Scope::Send)) else {
            return Ok(None);
        };
        match &key.tenant_suspended {
            Some(reason) => Err(Refusal::Suspended(reason.clone())),
            None => Ok(Some(key)),
        }
    }
}

impl<S: ControlStore + EventStore> Tenancy<S> {
    /// Which of `addresses` the tenant suppresses (lower-cased).
    pub async fn suppressed(
        &self,
        tenant_id: &str,
        addresses: &[String],
    ) -> Result<std::collections::HashSet<String>, Refusal> {
        let found = self
            .store
            .suppressed(tenant_id, addresses)
            .await
            .map_err(unavailable)?;
        Ok(found.into_iter().collect())
    }
}

/// A new sending domain for a tenant with a freshly made DKIM key (RSA key generation takes
/// tens of milliseconds: call off the async workers), ready for `ControlStore::add_domain`.
pub fn new_domain(
    tenant_id: &str,
    domain: String,
    algorithm: dkim::Algorithm,
    selector: Option<String>,
) -> Result<SendingDomain, dkim::DkimError> {
    let pair = dkim::generate(algorithm)?;
    Ok(SendingDomain {
        domain,
        tenant_id: tenant_id.to_string(),
        selector: selector.unwrap_or_else(dkim::default_selector),
        algorithm: algorithm.name().into(),
        private_key: pair.private_pkcs8,
        public_key: pair.public_b64,
        created_ms: 0,
    })
}

/// The DNS records a sending domain publishes (DKIM, SPF naming `mail_host`, DMARC,
/// return path), for the API, the CLI and the console alike.
pub fn domain_records(domain: &SendingDomain, mail_host: &str) -> Vec<dkim::DnsRecord> {
    dkim::Algorithm::parse(&domain.algorithm)
        .map(|algorithm| {
            dkim::records(
                &domain.domain,
                &domain.selector,
                algorithm,
                &domain.public_key,
                &format!("a:{mail_host}"),
                None,
                mail_host,
            )
        })
        .unwrap_or_default()
}

/// The API key that SMTP AUTH credentials carry, in the forms clients of other platforms
/// already use: user `apikey` and the key as password (SendGrid); the key's public part
/// `tsb_<id>` as user and the rest as password (Mailjet); or any user and the whole key as
/// password. `None`: these are not API-key credentials (a local SMTP user, perhaps).
pub fn smtp_token(user: &str, password: &str) -> Option<String> {
    if password.starts_with(store::keys::TOKEN_PREFIX) {
        return Some(password.to_string());
    }
    if user.starts_with(store::keys::TOKEN_PREFIX) && !password.is_empty() {
        return Some(format!("{user}_{password}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_credentials_in_every_known_form_name_the_key() {
        let token = "tsb_0123456789ab_secretpart";
        assert_eq!(smtp_token("apikey", token).as_deref(), Some(token));
        assert_eq!(smtp_token("anyone", token).as_deref(), Some(token));
        assert_eq!(
            smtp_token("tsb_0123456789ab", "secretpart").as_deref(),
            Some(token)
        );
        assert_eq!(smtp_token("alice", "correct horse"), None);
        assert_eq!(smtp_token("tsb_0123456789ab", ""), None);
    }
}
