//! Console passwords: argon2id (the crate's defaults, OWASP's minimum parameters), checked on
//! the blocking pool because a check is tens of milliseconds of CPU on purpose.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};

/// Shortest password accepted.
pub const PASSWORD_CHARS_MIN: usize = 10;
/// Longest: argon2 would take any length; a bound keeps a request from costing more.
pub const PASSWORD_BYTES_MAX: usize = 1024;

/// A hash of a random password, verified against when the address is unknown so that a
/// failed sign-in takes the same time whether or not the login exists.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8rVbQ1pYd0Q9eGqPIvPrXC0v9cW1O7a7ZmHzGmV0mBQ";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must be at least {PASSWORD_CHARS_MIN} characters")]
    TooShort,
    #[error("the password must be at most {PASSWORD_BYTES_MAX} bytes")]
    TooLong,
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// Checks the policy and hashes. Slow: call from a blocking thread.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < PASSWORD_CHARS_MIN {
        return Err(PasswordError::TooShort);
    }
    if password.len() > PASSWORD_BYTES_MAX {
        return Err(PasswordError::TooLong);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches `stored` (`None`: no such login; the decoy is checked so the
/// answer takes as long). Slow: call from a blocking thread.
pub fn verify(stored: Option<&str>, password: &str) -> bool {
    if password.len() > PASSWORD_BYTES_MAX {
        return false;
    }
    let ok = PasswordHash::new(stored.unwrap_or(DECOY_HASH)).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    });
    ok && stored.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_the_policy_holds() {
        let stored = hash("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify(Some(&stored), "correct horse battery"));
        assert!(!verify(Some(&stored), "correct horse battery "));
        assert!(!verify(None, "correct horse battery"));
        assert_eq!(hash("short"), Err(PasswordError::TooShort));
        assert_eq!(hash(&"x".repeat(2000)), Err(PasswordError::TooLong));
    }
}
