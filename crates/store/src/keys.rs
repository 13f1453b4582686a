//! API keys: `tsb_<id>_<secret>`, with a 12-character public id for lookup and listing and a
//! 256-bit random secret. Only SHA-256 of the secret is stored. A fast hash is right here and
//! argon2 is not: the secret is random with 256 bits of entropy, so no guessing attack gains
//! from a slow hash, while every API call must check its key in microseconds.

use base64::Engine as _;
use rand::RngCore;
use subtle::ConstantTimeEq;

/// How every API key begins.
pub const TOKEN_PREFIX: &str = "tsb_";
const ID_BYTES: usize = 6;
const SECRET_BYTES: usize = 32;

/// A key token that is not one of ours.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not a tsubame API key")]
    Malformed,
    #[error("unknown scope {0:?} (send, read, manage)")]
    UnknownScope(String),
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Submit messages.
    Send,
    /// Read messages, events and statistics.
    Read,
    /// Change domains, keys, webhooks and settings.
    Manage,
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes {
    pub send: bool,
    pub read: bool,
    pub manage: bool,
}

impl Scopes {
    /// Parses `send,read,manage` (any subset, any order; `all` for every scope).
    pub fn parse(text: &str) -> Result<Scopes, KeyError> {
        let mut scopes = Scopes::default();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "send" => scopes.send = true,
                "read" => scopes.read = true,
                "manage" => scopes.manage = true,
                "all" => {
                    scopes = Scopes {
                        send: true,
                        read: true,
                        manage: true,
                    }
                }
                other => return Err(KeyError::UnknownScope(other.to_string())),
            }
        }
        Ok(scopes)
    }

    pub fn allows(&self, scope: Scope) -> bool {
        match scope {
            Scope::Send => self.send,
            Scope::Read => self.read,
            Scope::Manage => self.manage,
        }
    }

    /// The stored and printed form: `send,read,manage` in that order.
    pub fn to_text(self) -> String {
        [
            (self.send, "send"),
            (self.read, "read"),
            (self.manage, "manage"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
    }
}

/// A fresh key: (public id, full token, SHA-256 of the secret).
pub(crate) fn generate() -> (String, String, Vec<u8>) {
    let mut id = [0u8; ID_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    let mut rng = rand::rng();
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let token = format!("{TOKEN_PREFIX}{id}_{secret}");
    let hash = digest(&secret);
    (id, token, hash)
}

/// Splits a presented token into its id and the SHA-256 of its secret.
pub(crate) fn parse(token: &str) -> Result<(&str, Vec<u8>), KeyError> {
    let rest = token
        .strip_prefix(TOKEN_PREFIX)
        .ok_or(KeyError::Malformed)?;
    let (id, secret) = rest.split_once('_').ok_or(KeyError::Malformed)?;
    let id_ok = id.len() == ID_BYTES * 2 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !id_ok || secret.len() != 43 {
        return Err(KeyError::Malformed);
    }
    Ok((id, digest(secret)))
}

/// Constant-time comparison of two digests.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn digest(secret: &str) -> Vec<u8> {
    sha256(secret.as_bytes())
}

/// SHA-256 of some bytes (request fingerprints for idempotency keys, too).
pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_carry_256_bits() {
        let (id, token, hash) = generate();
        assert!(token.starts_with("tsb_"));
        let (parsed_id, parsed_hash) = parse(&token).expect("parse");
        assert_eq!(parsed_id, id);
        assert!(same(&parsed_hash, &hash));
        // 32 random bytes → 43 base64url characters (which may include '_').
        assert_eq!(token.len(), "tsb_".len() + 12 + 1 + 43);
        let (_, other, _) = generate();
        assert_ne!(token, other);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in ["", "tsb_", "abc", "tsb_zzzzzzzzzzzz_x", "Bearer tsb_00"] {
            assert_eq!(parse(bad), Err(KeyError::Malformed), "{bad}");
        }
    }

    #[test]
    fn scopes_parse_and_print() {
        let s = Scopes::parse("read, send").expect("scopes");
        assert!(s.allows(Scope::Send) && s.allows(Scope::Read) && !s.allows(Scope::Manage));
        assert_eq!(s.to_text(), "send,read");
        assert_eq!(
            Scopes::parse("all").expect("all").to_text(),
            "send,read,manage"
        );
        assert_eq!(
            Scopes::parse("admin"),
            Err(KeyError::UnknownScope("admin".into()))
        );
    }
}
