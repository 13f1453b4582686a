//! Return paths (VERP): a tenant's message goes out with the envelope sender
//! `bounces+<message id>.<tag>@bounce.<sending domain>`, so a bounce that comes back names
//! the message it is about. The tag is an HMAC of the message id and domain under this
//! node's key: only addresses this node made are accepted as bounce addresses, so nobody
//! can forge bounces (and with them suppressions) for a tenant's messages by guessing ids.

use aws_lc_rs::hmac;

const PREFIX: &str = "bounces+";
/// Hex characters of the tag (64 bits).
const TAG_HEX: usize = 16;

/// The key return paths are signed with.
#[derive(Clone)]
pub struct ReturnPaths {
    key: hmac::Key,
}

impl std::fmt::Debug for ReturnPaths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReturnPaths(..)")
    }
}

fn tag(key: &hmac::Key, message_id: &str, domain: &str) -> String {
    let mut context = hmac::Context::with_key(key);
    context.update(message_id.as_bytes());
    context.update(b"@");
    context.update(domain.as_bytes());
    let signed = context.sign();
    signed.as_ref()[..TAG_HEX / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ReturnPaths {
    pub fn new(secret: &[u8; 32]) -> ReturnPaths {
        ReturnPaths {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The return path of a message sent from `sending_domain`.
    pub fn address(&self, message_id: &str, sending_domain: &str) -> String {
        let domain = sending_domain.to_ascii_lowercase();
        let tag = tag(&self.key, message_id, &domain);
        format!(
            "{PREFIX}{message_id}.{tag}@{}",
            dkim::bounce_domain(&domain)
        )
    }

    /// The message id and sending domain a return path of ours names; `None` for any other
    /// address (including forged or altered ones).
    pub fn parse(&self, address: &str) -> Option<(String, String)> {
        let (local, host) = address.rsplit_once('@')?;
        let local = local.to_ascii_lowercase();
        let rest = local.strip_prefix(PREFIX)?;
        let (id, given) = rest.rsplit_once('.')?;
        let domain = host.to_ascii_lowercase();
        let sending = domain.strip_prefix("bounce.")?.to_string();
        // Message ids are upper case; local parts may have been lower-cased on the way.
        let id = id.to_ascii_uppercase();
        let expected = tag(&self.key, &id, &sending);
        let same = expected.len() == given.len()
            && expected
                .bytes()
                .zip(given.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        same.then_some((id, sending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_round_trip_and_forgeries_are_refused() {
        let paths = ReturnPaths::new(&[7; 32]);
        let address = paths.address("01KBZZ0000000000000000000A", "Acme.test");
        assert!(
            address.starts_with("bounces+01KBZZ0000000000000000000A."),
            "{address}"
        );
        assert!(address.ends_with("@bounce.acme.test"), "{address}");
        let expected = Some((
            "01KBZZ0000000000000000000A".to_string(),
            "acme.test".to_string(),
        ));
        assert_eq!(paths.parse(&address), expected);
        assert_eq!(paths.parse(&address.to_ascii_uppercase()), expected);
        // Another message, another domain, another key: all refused.
        let other = address.replace("000A.", "000B.");
        assert_eq!(paths.parse(&other), None);
        assert_eq!(
            paths.parse(&address.replace("acme.test", "evil.test")),
            None
        );
        assert_eq!(ReturnPaths::new(&[8; 32]).parse(&address), None);
        assert_eq!(paths.parse("postmaster@bounce.acme.test"), None);
    }
}
