//! Command-line framing: finds the next CRLF-terminated command in the input buffer.
//!
//! Commands must end in CRLF. A bare LF or bare CR inside a command line is a protocol error
//! rather than a line end: accepting it is how SMTP smuggling and command injection begin.

/// What the framer found at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line of this many bytes, CRLF included.
    Line(usize),
    /// No complete line yet; the bytes so far are within the limit.
    Incomplete,
    /// The line exceeds the limit; this many bytes should be dropped. When `complete` is false,
    /// the rest of the over-long line has not arrived yet and must be skipped as it does.
    TooLong { skip: usize, complete: bool },
    /// A line of this many bytes (terminator included) ended in a bare LF or held a bare CR.
    BareLineEnding(usize),
}

/// Finds the first line in `buf`, enforcing `max_bytes` (CRLF included).
pub fn frame(buf: &[u8], max_bytes: usize) -> Frame {
    let Some(lf) = memchr::memchr(b'\n', buf) else {
        if buf.len() > max_bytes {
            return Frame::TooLong {
                skip: buf.len(),
                complete: false,
            };
        }
        return Frame::Incomplete;
    };
    let len = lf + 1;
    if len > max_bytes {
        return Frame::TooLong {
            skip: len,
            complete: true,
        };
    }
    let body = &buf[..lf];
    let Some((&last, rest)) = body.split_last() else {
        return Frame::BareLineEnding(len);
    };
    if last != b'\r' || memchr::memchr(b'\r', rest).is_some() {
        return Frame::BareLineEnding(len);
    }
    Frame::Line(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_crlf_lines() {
        assert_eq!(frame(b"NOOP\r\nQUIT\r\n", 512), Frame::Line(6));
        assert_eq!(frame(b"NOOP\r", 512), Frame::Incomplete);
    }

    #[test]
    fn bare_lf_and_cr_are_errors() {
        assert_eq!(frame(b"NOOP\n", 512), Frame::BareLineEnding(5));
        assert_eq!(frame(b"NO\rOP\r\n", 512), Frame::BareLineEnding(7));
        assert_eq!(frame(b"\n", 512), Frame::BareLineEnding(1));
    }

    #[test]
    fn limit_counts_the_terminator() {
        assert_eq!(frame(b"ABCD\r\n", 6), Frame::Line(6));
        assert_eq!(
            frame(b"ABCDE\r\n", 6),
            Frame::TooLong {
                skip: 7,
                complete: true
            }
        );
        assert_eq!(
            frame(b"ABCDEFG", 6),
            Frame::TooLong {
                skip: 7,
                complete: false
            }
        );
    }
}
