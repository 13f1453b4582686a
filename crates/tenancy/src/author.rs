//! The author of received content: the one address of its From field. DKIM signs for the
//! From domain and DMARC judges alignment with it, so that is the domain a tenant must own.

use mail_parser::{HeaderName, MessageParser};

/// Why content has no single author.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorError {
    #[error("the message has no From field")]
    Missing,
    /// Several From fields, or several addresses in one (RFC 5322 allows it with a Sender
    /// field; mailbox providers reject it under DMARC).
    #[error("the message must have exactly one From address")]
    Several,
}

/// The lower-cased-domain address of the From field.
pub fn author(content: &[u8]) -> Result<String, AuthorError> {
    let message = MessageParser::new()
        .parse_headers(content)
        .ok_or(AuthorError::Missing)?;
    let mut fields = message
        .headers()
        .iter()
        .filter(|h| h.name == HeaderName::From);
    let Some(field) = fields.next() else {
        return Err(AuthorError::Missing);
    };
    if fields.next().is_some() {
        return Err(AuthorError::Several);
    }
    let addresses = field.value().as_address().ok_or(AuthorError::Missing)?;
    let mut all = addresses.iter();
    let address = all
        .next()
        .and_then(|a| a.address())
        .ok_or(AuthorError::Missing)?;
    if all.next().is_some() {
        return Err(AuthorError::Several);
    }
    Ok(match address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_ascii_lowercase()),
        None => address.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_from_address_is_the_author() {
        let found =
            author(b"Subject: x\r\nFrom: \"Acme\" <News@Acme.TEST>\r\n\r\nFrom: body@x\r\n");
        assert_eq!(found, Ok("News@acme.test".to_string()));
    }

    #[test]
    fn missing_or_several_authors_are_refused() {
        assert_eq!(
            author(b"Subject: x\r\n\r\nbody\r\n"),
            Err(AuthorError::Missing)
        );
        assert_eq!(
            author(b"From: a@x.test, b@y.test\r\n\r\n"),
            Err(AuthorError::Several)
        );
        assert_eq!(
            author(b"From: a@x.test\r\nFrom: b@y.test\r\n\r\n"),
            Err(AuthorError::Several)
        );
        assert_eq!(author(b""), Err(AuthorError::Missing));
    }
}
