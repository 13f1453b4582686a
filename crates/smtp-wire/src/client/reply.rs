//! Incremental reader of server replies (RFC 5321 §4.2): `ddd-text` continuation lines and a
//! final `ddd text` line, with the enhanced status code (RFC 3463) taken from the text when
//! present.

use crate::reply::Reply;

/// Longest reply line accepted, CRLF included (RFC 5321 allows 512; servers exceed it).
pub const REPLY_LINE_BYTES_MAX: usize = 4096;
/// Most lines in one reply (EHLO replies are the longest in practice).
pub const REPLY_LINES_MAX: usize = 128;

/// Why the server's bytes are not a valid reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A line without a three-digit code, or continuation lines with differing codes.
    #[error("malformed reply line")]
    Malformed,
    /// A line or a reply beyond the limits.
    #[error("reply too long")]
    TooLong,
}

/// Parses one reply from the front of `buf`: `Ok(Some((reply, consumed)))`, or `Ok(None)`
/// when more bytes are needed.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut pos = 0;
    let mut lines = Vec::new();
    let mut code = None;
    loop {
        let rest = &buf[pos..];
        let Some(lf) = memchr::memchr(b'\n', rest) else {
            if rest.len() > REPLY_LINE_BYTES_MAX {
                return Err(ReplyError::TooLong);
            }
            return Ok(None);
        };
        if lf + 1 > REPLY_LINE_BYTES_MAX || lines.len() >= REPLY_LINES_MAX {
            return Err(ReplyError::TooLong);
        }
        // Servers that end lines with a bare LF exist; accepting it costs nothing here.
        let line = rest[..lf].strip_suffix(b"\r").unwrap_or(&rest[..lf]);
        pos += lf + 1;
        let (this_code, last, text) = split_line(line)?;
        if *code.get_or_insert(this_code) != this_code {
            return Err(ReplyError::Malformed);
        }
        lines.push(text);
        if last {
            break;
        }
    }
    let code = code.ok_or(ReplyError::Malformed)?;
    Ok(Some((with_status(code, lines), pos)))
}

fn split_line(line: &[u8]) -> Result<(u16, bool, String), ReplyError> {
    let digits = line.get(..3).ok_or(ReplyError::Malformed)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return Err(ReplyError::Malformed);
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let (last, text) = match line.get(3) {
        None => (true, &[][..]),
        Some(b' ') => (true, &line[4..]),
        Some(b'-') => (false, &line[4..]),
        Some(_) => return Err(ReplyError::Malformed),
    };
    Ok((code, last, String::from_utf8_lossy(text).into_owned()))
}

/// Moves a leading enhanced status code ("5.1.1 ") out of the text into `status`.
fn with_status(code: u16, mut lines: Vec<String>) -> Reply {
    let class = (code / 100) as u8;
    let mut status = None;
    for (i, line) in lines.iter_mut().enumerate() {
        let (candidate, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let Some(found) = parse_status(candidate).filter(|s| s.0 == class) else {
            break;
        };
        if i == 0 {
            status = Some(found);
        }
        *line = rest.to_string();
    }
    Reply {
        code,
        status,
        lines,
    }
}

fn parse_status(text: &str) -> Option<(u8, u16, u16)> {
    let mut parts = text.split('.');
    let (Some(a), Some(b), Some(c), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let class: u8 = a.parse().ok()?;
    let subject: u16 = b.parse().ok().filter(|s| *s < 1000)?;
    let detail: u16 = c.parse().ok().filter(|d| *d < 1000)?;
    matches!(class, 2 | 4 | 5).then_some((class, subject, detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi_line() {
        let (reply, n) = parse(b"250 2.1.0 Ok\r\nNEXT")
            .expect("ok")
            .expect("complete");
        assert_eq!((reply.code, reply.status, n), (250, Some((2, 1, 0)), 14));
        assert_eq!(reply.lines, vec!["Ok"]);
        let (reply, _) = parse(b"250-mx.example\r\n250-PIPELINING\r\n250 SIZE 100\r\n")
            .expect("ok")
            .expect("complete");
        assert_eq!(reply.lines, vec!["mx.example", "PIPELINING", "SIZE 100"]);
        assert_eq!(reply.status, None);
        assert_eq!(parse(b"250-partial\r\n250").expect("ok"), None);
    }

    #[test]
    fn status_class_must_match_code() {
        let (reply, _) = parse(b"550 4.1.1 odd\r\n").expect("ok").expect("complete");
        assert_eq!(reply.status, None);
        assert_eq!(reply.lines, vec!["4.1.1 odd"]);
        let (reply, _) = parse(b"421-4.7.0 first\r\n421 4.7.0 second\r\n")
            .expect("ok")
            .expect("complete");
        assert_eq!(reply.status, Some((4, 7, 0)));
        assert_eq!(reply.lines, vec!["first", "second"]);
    }

    #[test]
    fn malformed_and_limits() {
        assert_eq!(parse(b"hello\r\n"), Err(ReplyError::Malformed));
        assert_eq!(parse(b"250-a\r\n251 b\r\n"), Err(ReplyError::Malformed));
        assert_eq!(parse(b"150 x\r\n"), Err(ReplyError::Malformed));
        assert_eq!(parse(&vec![b'2'; 5000]), Err(ReplyError::TooLong));
        assert!(
            parse(b"220\r\n").expect("ok").is_some(),
            "bare code is a valid reply"
        );
    }
}
