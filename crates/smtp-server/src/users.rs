//! SMTP users: a small file of `name:argon2-PHC-hash` lines in the data directory. The CLI
//! edits it (atomically: temp file, fsync, rename) and the server reads it at each AUTH, so
//! `tsubame user add` takes effect without a restart.

use std::collections::BTreeMap;
use std::path::Path;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};

/// Why the user file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Reading or writing the file failed.
    #[error("user file: {0}")]
    Io(#[from] std::io::Error),
    /// A name that cannot be stored.
    #[error("invalid user name {0:?}: use 1-128 characters without ':' or whitespace")]
    InvalidName(String),
    /// Passwords must not be empty.
    #[error("password must not be empty")]
    EmptyPassword,
    /// Hashing failed.
    #[error("hashing password: {0}")]
    Hash(String),
}

/// Reads all users; a missing file means no users.
pub fn load(path: &Path) -> Result<BTreeMap<String, String>, UserError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(err) => return Err(err.into()),
    };
    Ok(text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, hash)| (name.to_string(), hash.to_string()))
        .collect())
}

fn store(path: &Path, users: &BTreeMap<String, String>) -> Result<(), UserError> {
    let text: String = users.iter().map(|(n, h)| format!("{n}:{h}\n")).collect();
    let tmp = path.with_extension("tmp");
    crate::tls::write_private(&tmp, text.as_bytes())?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.contains(':')
        && !name.chars().any(char::is_whitespace)
}

/// Adds or replaces a user.
pub fn add(path: &Path, name: &str, password: &str) -> Result<(), UserError> {
    if !valid_name(name) {
        return Err(UserError::InvalidName(name.to_string()));
    }
    if password.is_empty() {
        return Err(UserError::EmptyPassword);
    }
    let hash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| UserError::Hash(e.to_string()))?;
    let mut users = load(path)?;
    users.insert(name.to_string(), hash.to_string());
    store(path, &users)
}

/// Removes a user; returns whether it existed.
pub fn remove(path: &Path, name: &str) -> Result<bool, UserError> {
    let mut users = load(path)?;
    let existed = users.remove(name).is_some();
    if existed {
        store(path, &users)?;
    }
    Ok(existed)
}

/// A hash of a random password, verified against when the user does not exist so that a
/// failed login takes the same time whether or not the name is known.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8rVbQ1pYd0Q9eGqPIvPrXC0v9cW1O7a7ZmHzGmV0mBQ";

/// Checks a password. Slow on purpose (argon2): call from a blocking thread.
pub fn verify(path: &Path, name: &str, password: &str) -> Result<bool, UserError> {
    let users = load(path)?;
    let stored = users.get(name);
    let hash_text = stored.map_or(DECOY_HASH, String::as_str);
    let ok = match PasswordHash::new(hash_text) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    };
    Ok(ok && stored.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_verify_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("users");
        add(&path, "alice", "correct horse").expect("add");
        assert!(verify(&path, "alice", "correct horse").expect("verify"));
        assert!(!verify(&path, "alice", "wrong").expect("verify"));
        assert!(!verify(&path, "bob", "correct horse").expect("verify"));
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with("alice:$argon2id$") && !text.contains("correct horse"));
        assert!(remove(&path, "alice").expect("remove"));
        assert!(!verify(&path, "alice", "correct horse").expect("verify"));
        assert!(matches!(
            add(&path, "a:b", "x"),
            Err(UserError::InvalidName(_))
        ));
    }
}
