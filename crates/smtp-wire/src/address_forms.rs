//! Envelope address forms that RFC 5321 allows but the command parser (smtp-proto) refuses:
//! `RCPT TO:<Postmaster>` without a domain (§4.1.1.3, which a server must accept) and
//! address literals such as `user@[192.0.2.1]` or `user@[IPv6:2001:db8::1]` (§4.1.3). The
//! line is rewritten into a form the parser takes, and the real address put back after it.

/// What [`for_parser`] changed in a command line.
pub(crate) enum Rewritten {
    /// The line had neither form; parse it as it is.
    Unchanged,
    /// Parse `line`; its address is the postmaster of this server (already in the line).
    Postmaster { line: Vec<u8> },
    /// Parse `line`; then use `address` (the literal form) instead of the placeholder.
    Literal { line: Vec<u8>, address: String },
}

/// The domain put in place of an address literal while the parser reads the line. `.invalid`
/// (RFC 2606) can never be a real destination, so a slip would fail safe.
const PLACEHOLDER: &[u8] = b"address-literal.invalid";

/// Rewrites a `MAIL FROM:` or `RCPT TO:` line with one of the forms for the parser.
/// Bare `Postmaster` becomes `postmaster@<hostname>`: the mailbox means the postmaster of
/// this server, as Postfix appends its own origin; relay rules then apply as to any address.
pub(crate) fn for_parser(line: &[u8], hostname: &str) -> Rewritten {
    let Some((verb, rest)) = verb_and_path(line) else {
        return Rewritten::Unchanged;
    };
    let Some(close) = rest.iter().position(|&b| b == b'>') else {
        return Rewritten::Unchanged;
    };
    let (path, tail) = (&rest[1..close], &rest[close..]);
    if verb == Verb::Rcpt && path.eq_ignore_ascii_case(b"postmaster") {
        let mut line = b"RCPT TO:<postmaster@".to_vec();
        line.extend_from_slice(hostname.as_bytes());
        line.extend_from_slice(tail);
        return Rewritten::Postmaster { line };
    }
    let Some(at) = path.iter().rposition(|&b| b == b'@') else {
        return Rewritten::Unchanged;
    };
    let domain = &path[at + 1..];
    if !(domain.starts_with(b"[") && domain.ends_with(b"]")) {
        return Rewritten::Unchanged;
    }
    let Ok(address) = std::str::from_utf8(path) else {
        return Rewritten::Unchanged;
    };
    let mut rewritten = line[..line.len() - rest.len()].to_vec();
    rewritten.push(b'<');
    rewritten.extend_from_slice(&path[..=at]);
    rewritten.extend_from_slice(PLACEHOLDER);
    rewritten.extend_from_slice(tail);
    Rewritten::Literal {
        line: rewritten,
        address: address.to_string(),
    }
}

#[derive(PartialEq, Eq)]
enum Verb {
    Mail,
    Rcpt,
}

/// The verb and what follows it from `<` on, for `MAIL FROM:` and `RCPT TO:` lines.
fn verb_and_path(line: &[u8]) -> Option<(Verb, &[u8])> {
    let (verb, rest) = if starts_with_ignore_case(line, b"MAIL FROM:") {
        (Verb::Mail, &line[10..])
    } else if starts_with_ignore_case(line, b"RCPT TO:") {
        (Verb::Rcpt, &line[8..])
    } else {
        return None;
    };
    let spaces = rest.iter().take_while(|&&b| b == b' ').count();
    let rest = &rest[spaces..];
    rest.starts_with(b"<").then_some((verb, rest))
}

fn starts_with_ignore_case(line: &[u8], prefix: &[u8]) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(line: &str) -> (String, Option<String>) {
        match for_parser(line.as_bytes(), "mx.test") {
            Rewritten::Unchanged => (line.to_string(), None),
            Rewritten::Postmaster { line } => (String::from_utf8(line).unwrap(), None),
            Rewritten::Literal { line, address } => {
                (String::from_utf8(line).unwrap(), Some(address))
            }
        }
    }

    #[test]
    fn postmaster_is_qualified_with_the_host_name() {
        assert_eq!(
            rewrite("rcpt to:<PostMaster> NOTIFY=NEVER\r\n").0,
            "RCPT TO:<postmaster@mx.test> NOTIFY=NEVER\r\n"
        );
        // Only as a recipient, and only the bare mailbox.
        assert_eq!(
            rewrite("MAIL FROM:<postmaster>\r\n").0,
            "MAIL FROM:<postmaster>\r\n"
        );
        assert_eq!(
            rewrite("RCPT TO:<postmasters>\r\n").0,
            "RCPT TO:<postmasters>\r\n"
        );
    }

    #[test]
    fn literals_are_replaced_by_a_placeholder_and_kept() {
        assert_eq!(
            rewrite("RCPT TO: <u@[192.0.2.1]> ORCPT=rfc822;u@x\r\n"),
            (
                "RCPT TO: <u@address-literal.invalid> ORCPT=rfc822;u@x\r\n".to_string(),
                Some("u@[192.0.2.1]".to_string())
            )
        );
        assert_eq!(
            rewrite("MAIL FROM:<a@[IPv6:2001:db8::1]> SIZE=10\r\n").1,
            Some("a@[IPv6:2001:db8::1]".to_string())
        );
        assert_eq!(rewrite("RCPT TO:<u@example.com>\r\n").1, None);
        assert_eq!(rewrite("RCPT TO:<u@[1.2.3.4\r\n").1, None);
    }
}
