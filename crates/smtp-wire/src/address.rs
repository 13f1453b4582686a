//! Envelope address checks beyond what the command parser enforces: lengths (RFC 5321
//! §4.5.3.1), a domain part, and ASCII unless SMTPUTF8 was declared (RFC 6531).

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressError {
    /// Not `local@domain`, or a part is empty or too long, or the domain has bad characters.
    Syntax,
    /// Non-ASCII characters without SMTPUTF8.
    NeedsSmtpUtf8,
}

/// Longest local part (RFC 5321 §4.5.3.1.1).
pub const LOCAL_PART_BYTES_MAX: usize = 64;
/// Longest domain (RFC 5321 §4.5.3.1.2).
pub const DOMAIN_BYTES_MAX: usize = 255;

/// Checks a non-empty mailbox address.
pub fn check_mailbox(address: &str, smtputf8: bool) -> Result<(), AddressError> {
    let (local, domain) = address.rsplit_once('@').ok_or(AddressError::Syntax)?;
    if local.is_empty() || domain.is_empty() {
        return Err(AddressError::Syntax);
    }
    if local.len() > LOCAL_PART_BYTES_MAX || domain.len() > DOMAIN_BYTES_MAX {
        return Err(AddressError::Syntax);
    }
    if address.chars().any(|c| c.is_control() || c == ' ') {
        return Err(AddressError::Syntax);
    }
    if !address.is_ascii() && !smtputf8 {
        return Err(AddressError::NeedsSmtpUtf8);
    }
    if domain.starts_with('[') {
        return if address_literal(domain).is_some() {
            Ok(())
        } else {
            Err(AddressError::Syntax)
        };
    }
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    });
    if labels_ok {
        Ok(())
    } else {
        Err(AddressError::Syntax)
    }
}

/// The IP address of an address literal domain (`[192.0.2.1]`, `[IPv6:2001:db8::1]`,
/// RFC 5321 §4.1.3), or `None` when `domain` is not one. General address literals (other
/// tags) name no address we could deliver to and are not accepted.
pub fn address_literal(domain: &str) -> Option<std::net::IpAddr> {
    let inner = domain.strip_prefix('[')?.strip_suffix(']')?;
    match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("ipv6:") => inner[5..]
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(std::net::IpAddr::V6),
        _ => inner
            .parse::<std::net::Ipv4Addr>()
            .ok()
            .map(std::net::IpAddr::V4),
    }
}

/// The domain part of an address, lower-cased ASCII (as given otherwise).
pub fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_and_literal() {
        assert_eq!(check_mailbox("a@example.com", false), Ok(()));
        assert_eq!(check_mailbox("a+b.c@sub-1.example.co.jp", false), Ok(()));
        assert_eq!(check_mailbox("a@[127.0.0.1]", false), Ok(()));
        assert_eq!(check_mailbox("a@[IPv6:2001:db8::1]", false), Ok(()));
        assert_eq!(check_mailbox("a@[ipv6:::1]", false), Ok(()));
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "a",
            "@x.com",
            "a@",
            "a@-x.com",
            "a@x..com",
            "a@x .com",
            "a@[1.2.3]",
            "a@[300.1.1.1]",
            "a@[IPv6:1.2.3.4]",
            "a@[x:y]",
            "a@[127.0.0.1",
        ] {
            assert_eq!(
                check_mailbox(bad, false),
                Err(AddressError::Syntax),
                "{bad}"
            );
        }
        let long_local = format!("{}@x.com", "a".repeat(65));
        assert_eq!(check_mailbox(&long_local, false), Err(AddressError::Syntax));
    }

    #[test]
    fn utf8_needs_smtputf8() {
        assert_eq!(
            check_mailbox("用户@例子.中国", false),
            Err(AddressError::NeedsSmtpUtf8)
        );
        assert_eq!(check_mailbox("用户@例子.中国", true), Ok(()));
    }
}
