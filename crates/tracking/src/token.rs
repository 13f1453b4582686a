//! Tracking tokens: `base64url(payload ‖ tag)`, the tag being the first 16 bytes of
//! HMAC-SHA256 over a purpose label and the payload. The payload is binary:
//!
//! ```text
//! version(1) kind(1) flags(1) message id(16) sent at, Unix s(4) link(2)
//! tenant(len u8 + bytes) recipient(len u8 + bytes) campaign(len u8 + bytes)
//! variant(1: 0 none, n + 1 for variant n) zone(len u8 + bytes) url(rest)
//! ```
//!
//! Version 1 tokens (without variant and zone) still open: links in mail already
//! delivered keep working.
//!
//! Everything an event needs travels in the link, so a click or open costs one HMAC and no
//! lookup. The comparison of tags is constant-time.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const VERSION: u8 = 2;
/// Tokens before variants and zones rode in them.
const VERSION_1: u8 = 1;
const TAG_BYTES: usize = 16;
const PURPOSE: &[u8] = b"tsubame tracking v1|";
/// Longest target URL a click link carries.
pub const URL_BYTES_MAX: usize = 4096;

/// What a tracking link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Open,
    Click,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Open => b'o',
            Kind::Click => b'c',
        }
    }
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub message_id: u128,
    /// When the message was due to go out (Unix seconds): machine clicks come within
    /// seconds of it.
    pub sent_s: u32,
    /// The link's number in the message (1-based); 0 for the open pixel.
    pub link: u16,
    pub tenant: String,
    pub recipient: String,
    pub campaign: String,
    /// Where a click goes; empty for an open.
    pub url: String,
    /// The tenant records whole client addresses (otherwise truncated).
    pub full_address: bool,
    /// The A/B variant the recipient got (0-based).
    pub variant: Option<u8>,
    /// The recipient's time zone (IANA name; empty when unknown).
    pub zone: String,
}

const FLAG_FULL_ADDRESS: u8 = 1;

/// The key tokens are signed with.
#[derive(Clone)]
pub struct TrackingKey {
    key: hmac::Key,
}

impl std::fmt::Debug for TrackingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrackingKey(..)")
    }
}

fn short(out: &mut Vec<u8>, text: &str) -> Option<()> {
    let len = u8::try_from(text.len()).ok()?;
    out.push(len);
    out.extend_from_slice(text.as_bytes());
    Some(())
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if bytes.len() < n {
        return None;
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Some(head)
}

fn take_short(bytes: &mut &[u8]) -> Option<String> {
    let len = *take(bytes, 1)?.first()? as usize;
    String::from_utf8(take(bytes, len)?.to_vec()).ok()
}

impl TrackingKey {
    /// A key from this node's 32-byte secret.
    pub fn new(secret: &[u8; 32]) -> TrackingKey {
        TrackingKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    fn tag(&self, payload: &[u8]) -> [u8; TAG_BYTES] {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(PURPOSE);
        context.update(payload);
        let full = context.sign();
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&full.as_ref()[..TAG_BYTES]);
        tag
    }

    /// The token for `token`; `None` when a field is too long to carry (tenant, recipient
    /// or campaign over 255 bytes, a URL over [`URL_BYTES_MAX`]).
    pub fn seal(&self, token: &Token) -> Option<String> {
        if token.url.len() > URL_BYTES_MAX {
            return None;
        }
        let mut payload = Vec::with_capacity(64 + token.url.len());
        payload.push(VERSION);
        payload.push(token.kind.byte());
        payload.push(if token.full_address {
            FLAG_FULL_ADDRESS
        } else {
            0
        });
        payload.extend_from_slice(&token.message_id.to_be_bytes());
        payload.extend_from_slice(&token.sent_s.to_be_bytes());
        payload.extend_from_slice(&token.link.to_be_bytes());
        short(&mut payload, &token.tenant)?;
        short(&mut payload, &token.recipient)?;
        short(&mut payload, &token.campaign)?;
        payload.push(match token.variant {
            None => 0,
            Some(n) => n.checked_add(1)?,
        });
        short(&mut payload, &token.zone)?;
        payload.extend_from_slice(token.url.as_bytes());
        let tag = self.tag(&payload);
        payload.extend_from_slice(&tag);
        Some(URL_SAFE_NO_PAD.encode(payload))
    }

    /// What a token says, if this key made it for `kind`; `None` for anything forged,
    /// altered, truncated or of the other kind.
    pub fn open(&self, kind: Kind, text: &str) -> Option<Token> {
        if text.len() > (URL_BYTES_MAX + 1024) * 4 / 3 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let split = bytes.len().checked_sub(TAG_BYTES)?;
        let (payload, given) = bytes.split_at(split);
        let expected = self.tag(payload);
        let same = given
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        if !same {
            return None;
        }
        let mut rest = payload;
        let head = take(&mut rest, 3)?;
        let version = head[0];
        if !(version == VERSION || version == VERSION_1) || head[1] != kind.byte() {
            return None;
        }
        let full_address = head[2] & FLAG_FULL_ADDRESS != 0;
        let id: [u8; 16] = take(&mut rest, 16)?.try_into().ok()?;
        let sent: [u8; 4] = take(&mut rest, 4)?.try_into().ok()?;
        let link: [u8; 2] = take(&mut rest, 2)?.try_into().ok()?;
        let tenant = take_short(&mut rest)?;
        let recipient = take_short(&mut rest)?;
        let campaign = take_short(&mut rest)?;
        let (variant, zone) = if version == VERSION {
            let variant = take(&mut rest, 1)?[0].checked_sub(1);
            (variant, take_short(&mut rest)?)
        } else {
            (None, String::new())
        };
        let url = String::from_utf8(rest.to_vec()).ok()?;
        Some(Token {
            kind,
            message_id: u128::from_be_bytes(id),
            sent_s: u32::from_be_bytes(sent),
            link: u16::from_be_bytes(link),
            tenant,
            recipient,
            campaign,
            url,
            full_address,
            variant,
            zone,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link in mail delivered before variants and zones rode in tokens still opens.
    #[test]
    fn version_1_tokens_still_open() {
        let key = TrackingKey::new(&[3; 32]);
        let mut payload = vec![VERSION_1, b'c', 0];
        payload.extend_from_slice(&7u128.to_be_bytes());
        payload.extend_from_slice(&1_796_000_000u32.to_be_bytes());
        payload.extend_from_slice(&2u16.to_be_bytes());
        for text in ["t_1", "ann@example.com", "cp_1"] {
            short(&mut payload, text).expect("short");
        }
        payload.extend_from_slice(b"https://shop.example/");
        let tag = key.tag(&payload);
        payload.extend_from_slice(&tag);
        let text = URL_SAFE_NO_PAD.encode(payload);
        let token = key.open(Kind::Click, &text).expect("opens");
        assert_eq!(token.campaign, "cp_1");
        assert_eq!(token.url, "https://shop.example/");
        assert_eq!((token.variant, token.zone.as_str()), (None, ""));
    }
}
