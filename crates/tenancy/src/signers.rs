//! Parsed DKIM keys by sending domain, so a key is parsed once, not per message. An entry
//! is keyed by domain, selector and creation time: a domain removed and added again (a new
//! key) gets a new entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use store::SendingDomain;

/// The cache.
#[derive(Default)]
pub struct Signers {
    by_domain: Mutex<HashMap<(String, String, i64), Arc<dkim::Signer>>>,
}

impl Signers {
    /// The signer for a domain's current key.
    pub fn get(&self, domain: &SendingDomain) -> std::io::Result<Arc<dkim::Signer>> {
        let key = (
            domain.domain.clone(),
            domain.selector.clone(),
            domain.created_ms,
        );
        if let Some(found) = self
            .by_domain
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(found.clone());
        }
        let algorithm = dkim::Algorithm::parse(&domain.algorithm).ok_or_else(|| {
            std::io::Error::other(format!("unknown DKIM algorithm {}", domain.algorithm))
        })?;
        let signer = Arc::new(
            dkim::Signer::new(
                &domain.domain,
                &domain.selector,
                algorithm,
                &domain.private_key,
            )
            .map_err(std::io::Error::other)?,
        );
        self.by_domain
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, signer.clone());
        Ok(signer)
    }
}
