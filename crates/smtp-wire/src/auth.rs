//! SASL PLAIN (RFC 4616) and LOGIN decoding. Verifying the password is the driver's job: it
//! is slow on purpose (argon2) and must not run inside the sans-IO core.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Credentials extracted from a SASL exchange.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The authentication identity (user name).
    pub username: String,
    /// The password as sent; dropped as soon as it is verified.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Passwords must never reach a log line through a derived Debug.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Why a SASL response could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The response was not valid base64.
    #[error("invalid base64")]
    Base64,
    /// The decoded response did not have the mechanism's shape, or was not UTF-8.
    #[error("malformed SASL response")]
    Malformed,
}

/// Decodes one base64 SASL response line (without CRLF).
pub fn decode_response(line: &str) -> Result<Vec<u8>, SaslError> {
    STANDARD.decode(line.trim()).map_err(|_| SaslError::Base64)
}

/// Parses a PLAIN response: `authzid NUL authcid NUL password`. An authorization identity
/// different from the authentication identity is refused: we do not support proxy logins.
pub fn parse_plain(decoded: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = decoded.split(|&b| b == 0);
    let (Some(authz), Some(user), Some(pass), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    if user.is_empty() || (!authz.is_empty() && authz != user) {
        return Err(SaslError::Malformed);
    }
    let username = String::from_utf8(user.to_vec()).map_err(|_| SaslError::Malformed)?;
    let password = String::from_utf8(pass.to_vec()).map_err(|_| SaslError::Malformed)?;
    Ok(Credentials { username, password })
}

/// Decodes one LOGIN step (user name or password) to UTF-8.
pub fn parse_login_field(decoded: Vec<u8>) -> Result<String, SaslError> {
    String::from_utf8(decoded).map_err(|_| SaslError::Malformed)
}

/// Base64 of a LOGIN prompt.
pub fn encode_prompt(text: &str) -> String {
    STANDARD.encode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_roundtrip() {
        let creds = parse_plain(b"\0alice\0s3cret").expect("valid PLAIN");
        assert_eq!(creds.username, "alice");
        assert_eq!(creds.password, "s3cret");
        assert!(parse_plain(b"alice\0alice\0pw").is_ok());
        assert_eq!(parse_plain(b"bob\0alice\0pw"), Err(SaslError::Malformed));
        assert_eq!(parse_plain(b"\0alice"), Err(SaslError::Malformed));
        assert_eq!(parse_plain(b"\0\0pw"), Err(SaslError::Malformed));
    }

    #[test]
    fn debug_hides_password() {
        let creds = Credentials {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{creds:?}").contains("hunter2"));
    }
}
