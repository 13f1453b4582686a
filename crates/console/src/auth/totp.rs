//! Time-based one-time passwords (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), the
//! optional second factor, as authenticator apps expect them.

use aws_lc_rs::hmac;

const STEP_SECONDS: u64 = 30;
const DIGITS: u32 = 6;
/// Secret length in bytes (RFC 4226 recommends 160 bits).
pub const SECRET_BYTES: usize = 20;

/// A fresh random secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    rand::Rng::fill(&mut rand::rng(), secret.as_mut_slice());
    secret
}

/// The code for one time step (RFC 4226 §5.3 dynamic truncation).
fn code_at(secret: &[u8], step: u64) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let digest = tag.as_ref();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    binary % 10u32.pow(DIGITS)
}

/// The time step a code typed at `unix_seconds` matches, allowing one step of clock drift
/// either way; `None` when it matches none. The caller refuses a step already used.
pub fn verify(secret: &[u8], code: &str, unix_seconds: u64) -> Option<u64> {
    let code = code.trim().replace(' ', "");
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let now = unix_seconds / STEP_SECONDS;
    [now, now.saturating_sub(1), now + 1]
        .into_iter()
        .find(|&step| code_at(secret, step) == wanted)
}

/// RFC 4648 base32 without padding: how authenticator apps take a secret by hand.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u64 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u64::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://` URI an authenticator app reads (Key Uri Format).
pub fn uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let escape = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        escape(issuer),
        escape(account),
        base32(secret),
        escape(issuer)
    )
}

/// The current code (for tests and for the enrolment check).
pub fn current(secret: &[u8], unix_seconds: u64) -> String {
    format!("{:06}", code_at(secret, unix_seconds / STEP_SECONDS))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits there; the last 6 here).
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(current(secret, time), code, "at {time}");
            assert_eq!(verify(secret, code, time), Some(time / 30));
        }
    }

    #[test]
    fn drift_of_one_step_is_allowed_and_no_more() {
        let secret = new_secret();
        let code = current(&secret, 1_000_000);
        assert!(verify(&secret, &code, 1_000_000 + 30).is_some());
        assert!(verify(&secret, &code, 1_000_000 - 30).is_some());
        assert!(verify(&secret, &code, 1_000_000 + 90).is_none());
        assert!(verify(&secret, "12345", 1_000_000).is_none());
        assert!(verify(&secret, "abcdef", 1_000_000).is_none());
    }

    #[test]
    fn base32_matches_rfc_4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }
}
