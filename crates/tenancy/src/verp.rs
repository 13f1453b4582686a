//! Return paths (VERP): a tenant's message goes out with the envelope sender
//! `bounces+<message id>.<tag>@bounce.<sending domain>`, so a bounce that comes back names
//! the message it is about. The tag is an HMAC of the message id and domain under this
//! node's key: only addresses this node made are accepted as bounce addresses, so nobody
//! can forge bounces (and with them suppressions) for a tenant's messages by guessing ids.

use aws_lc_rs::hmac;

const PREFIX: &str = "bounces+";
const UNSUBSCRIBE_PREFIX: &str = "unsubscribe+";
/// Hex characters of the tag (64 bits).
const TAG_HEX: usize = 16;

/// What an address of ours is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Bounces and feedback reports.
    Bounce,
    /// Unsubscribe requests (the `mailto:` of List-Unsubscribe).
    Unsubscribe,
}

impl Purpose {
    fn prefix(self) -> &'static str {
        match self {
            Purpose::Bounce => PREFIX,
            Purpose::Unsubscribe => UNSUBSCRIBE_PREFIX,
        }
    }
}

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

fn tag(key: &hmac::Key, purpose: Purpose, message_id: &str, domain: &str) -> String {
    let mut context = hmac::Context::with_key(key);
    context.update(purpose.prefix().as_bytes());
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
        self.address_for(Purpose::Bounce, message_id, sending_domain)
    }

    /// The address of ours for `purpose` about a message sent from `sending_domain`.
    pub fn address_for(&self, purpose: Purpose, message_id: &str, sending_domain: &str) -> String {
        let domain = sending_domain.to_ascii_lowercase();
        let tag = tag(&self.key, purpose, message_id, &domain);
        format!(
            "{}{message_id}.{tag}@{}",
            purpose.prefix(),
            dkim::bounce_domain(&domain)
        )
    }

    /// The message id and sending domain a return path of ours names; `None` for any other
    /// address (including forged or altered ones).
    pub fn parse(&self, address: &str) -> Option<(String, String)> {
        match self.parse_any(address)? {
            (Purpose::Bounce, id, domain) => Some((id, domain)),
            _ => None,
        }
    }

    /// What an address of ours is for, with the message id and sending domain it names.
    pub fn parse_any(&self, address: &str) -> Option<(Purpose, String, String)> {
        let (local, host) = address.rsplit_once('@')?;
        let local = local.to_ascii_lowercase();
        let (purpose, rest) = [Purpose::Bounce, Purpose::Unsubscribe]
            .into_iter()
            .find_map(|p| Some((p, local.strip_prefix(p.prefix())?)))?;
        let (id, given) = rest.rsplit_once('.')?;
        let domain = host.to_ascii_lowercase();
        let sending = domain.strip_prefix("bounce.")?.to_string();
        // Message ids are upper case; local parts may have been lower-cased on the way.
        let id = id.to_ascii_uppercase();
        let expected = tag(&self.key, purpose, &id, &sending);
        let same = expected.len() == given.len()
            && expected
                .bytes()
                .zip(given.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        same.then_some((purpose, id, sending))
    }
}

/// What a one-click unsubscribe link names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub message_id: String,
    pub sending_domain: String,
    pub recipient: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

impl ReturnPaths {
    /// `payload` in hex and a 128-bit HMAC over it and `purpose`.
    fn seal(&self, purpose: &[u8], payload: &str) -> String {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(purpose);
        context.update(payload.as_bytes());
        let tag = context.sign();
        format!("{}.{}", hex(payload.as_bytes()), hex(&tag.as_ref()[..16]))
    }

    /// The payload of a token [`ReturnPaths::seal`] made for `purpose`, if it is one.
    fn open(&self, purpose: &[u8], token: &str) -> Option<String> {
        let (payload, tag) = token.split_once('.')?;
        let payload = String::from_utf8(unhex(payload)?).ok()?;
        let given = unhex(tag)?;
        let mut signed = purpose.to_vec();
        signed.extend_from_slice(payload.as_bytes());
        let full = hmac::sign(&self.key, &signed);
        let expected = &full.as_ref()[..16];
        let same = given.len() == expected.len()
            && given
                .iter()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        same.then_some(payload)
    }

    /// The token of a double opt-in confirmation link: the list, the contact, and until
    /// when it works (Unix ms), signed.
    pub fn confirmation_token(&self, list_id: &str, contact_id: i64, expires_ms: i64) -> String {
        self.seal(b"confirm|", &format!("{list_id}|{contact_id}|{expires_ms}"))
    }

    /// The list and contact a confirmation token names, if this node made it and it has
    /// not expired at `now_ms`.
    pub fn parse_confirmation(&self, token: &str, now_ms: i64) -> Option<(String, i64)> {
        let payload = self.open(b"confirm|", token)?;
        let mut parts = payload.splitn(3, '|');
        let list = parts.next()?.to_string();
        let contact = parts.next()?.parse().ok()?;
        let expires: i64 = parts.next()?.parse().ok()?;
        (now_ms < expires).then_some((list, contact))
    }

    /// The token of a one-click unsubscribe link (RFC 8058) for one recipient of a message:
    /// what it names, in hex, and a 128-bit HMAC over it, so only links this node made work.
    pub fn unsubscribe_token(
        &self,
        message_id: &str,
        sending_domain: &str,
        recipient: &str,
    ) -> String {
        let payload = format!(
            "{message_id}|{}|{}",
            sending_domain.to_ascii_lowercase(),
            recipient.to_ascii_lowercase()
        );
        self.seal(b"one-click|", &payload)
    }

    /// The token of a campaign message's preference link (and its RFC 8058 one-click
    /// unsubscribe): the tenant, the message, the recipient and the campaign's lists.
    pub fn preferences_token(
        &self,
        tenant_id: &str,
        message_id: &str,
        recipient: &str,
        lists: &[String],
    ) -> String {
        let payload = format!(
            "{tenant_id}|{message_id}|{}|{}",
            recipient.to_ascii_lowercase(),
            lists.join(",")
        );
        self.seal(b"preferences|", &payload)
    }

    /// What a preference token names, if this node made it.
    pub fn parse_preferences_token(&self, token: &str) -> Option<Preferences> {
        let payload = self.open(b"preferences|", token)?;
        let mut parts = payload.splitn(4, '|');
        Some(Preferences {
            tenant_id: parts.next()?.to_string(),
            message_id: parts.next()?.to_string(),
            recipient: parts.next()?.to_string(),
            lists: parts
                .next()?
                .split(',')
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }

    /// What a token names, if this node made it.
    pub fn parse_unsubscribe_token(&self, token: &str) -> Option<Unsubscribe> {
        let payload = self.open(b"one-click|", token)?;
        let mut parts = payload.splitn(3, '|');
        Some(Unsubscribe {
            message_id: parts.next()?.to_string(),
            sending_domain: parts.next()?.to_string(),
            recipient: parts.next()?.to_string(),
        })
    }
}

/// What a preference token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    pub tenant_id: String,
    pub message_id: String,
    pub recipient: String,
    /// The campaign's lists (ids): the one-click unsubscribe leaves these.
    pub lists: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_tokens_name_one_membership_expire_and_cannot_be_forged() {
        let paths = ReturnPaths::new(&[7; 32]);
        let token = paths.confirmation_token("ls_1", 42, 2_000);
        assert_eq!(
            paths.parse_confirmation(&token, 1_999),
            Some(("ls_1".into(), 42))
        );
        assert_eq!(paths.parse_confirmation(&token, 2_000), None, "expired");
        let other = ReturnPaths::new(&[8; 32]);
        assert_eq!(other.parse_confirmation(&token, 0), None, "another key");
        let (payload, tag) = token.split_once('.').unwrap();
        let forged = format!("{}.{tag}", hex(b"ls_1|43|2000"));
        assert_eq!(
            paths.parse_confirmation(&forged, 0),
            None,
            "another contact"
        );
        assert_eq!(paths.parse_confirmation(&format!("{payload}.00"), 0), None);
        // An unsubscribe token is not a confirmation token, and the other way round.
        let unsubscribe = paths.unsubscribe_token("M1", "acme.test", "ann@x.test");
        assert_eq!(paths.parse_confirmation(&unsubscribe, 0), None);
        assert_eq!(paths.parse_unsubscribe_token(&token), None);
    }

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
        // An unsubscribe address is not a bounce address, and its tag is its own.
        let unsubscribe = paths.address_for(
            Purpose::Unsubscribe,
            "01KBZZ0000000000000000000A",
            "acme.test",
        );
        assert_eq!(paths.parse(&unsubscribe), None);
        assert_eq!(
            paths.parse_any(&unsubscribe).map(|(p, _, _)| p),
            Some(Purpose::Unsubscribe)
        );
        let swapped = unsubscribe.replace("unsubscribe+", "bounces+");
        assert_eq!(paths.parse_any(&swapped), None);
    }

    #[test]
    fn one_click_tokens_name_one_recipient_and_cannot_be_altered() {
        let paths = ReturnPaths::new(&[7; 32]);
        let token =
            paths.unsubscribe_token("01KBZZ0000000000000000000A", "Acme.test", "Ann@X.test");
        assert_eq!(
            paths.parse_unsubscribe_token(&token),
            Some(Unsubscribe {
                message_id: "01KBZZ0000000000000000000A".into(),
                sending_domain: "acme.test".into(),
                recipient: "ann@x.test".into(),
            })
        );
        let other =
            paths.unsubscribe_token("01KBZZ0000000000000000000A", "acme.test", "bob@x.test");
        let (payload, _) = other.split_once('.').unwrap();
        let (_, tag) = token.split_once('.').unwrap();
        assert_eq!(
            paths.parse_unsubscribe_token(&format!("{payload}.{tag}")),
            None
        );
        assert_eq!(
            ReturnPaths::new(&[8; 32]).parse_unsubscribe_token(&token),
            None
        );
        assert_eq!(paths.parse_unsubscribe_token("zz.zz"), None);
    }

    #[test]
    fn preference_tokens_carry_the_lists_and_are_not_unsubscribe_tokens() {
        let paths = ReturnPaths::new(&[7; 32]);
        let lists = vec!["ls_1".to_string(), "ls_2".to_string()];
        let token =
            paths.preferences_token("t_1", "01KBZZ0000000000000000000A", "Ann@X.test", &lists);
        assert_eq!(
            paths.parse_preferences_token(&token),
            Some(Preferences {
                tenant_id: "t_1".into(),
                message_id: "01KBZZ0000000000000000000A".into(),
                recipient: "ann@x.test".into(),
                lists,
            })
        );
        assert_eq!(
            paths.parse_unsubscribe_token(&token),
            None,
            "another purpose"
        );
        let none = paths.preferences_token("t_1", "01KBZZ0000000000000000000A", "ann@x.test", &[]);
        assert_eq!(
            paths.parse_preferences_token(&none).map(|p| p.lists),
            Some(vec![])
        );
        assert_eq!(
            ReturnPaths::new(&[8; 32]).parse_preferences_token(&token),
            None
        );
    }
}
