//! SMTP replies: a basic code, an enhanced status code (RFC 3463) and text.
//!
//! Every reply the server sends carries an enhanced status code, because senders and our own
//! bounce classification key off it rather than off free text.

use crate::decimal::Decimal;

/// One SMTP reply, possibly multi-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit basic code, 200..=599.
    pub code: u16,
    /// Enhanced status code as `(class, subject, detail)`; `None` only for the greeting and
    /// replies that RFC 2034 exempts (220 banner, 334 challenges).
    pub status: Option<(u8, u16, u16)>,
    /// One entry per line of text; never empty, never containing CR or LF.
    pub lines: Vec<String>,
}

impl Reply {
    /// A single-line reply with an enhanced status code.
    pub fn new(code: u16, status: (u8, u16, u16), text: impl Into<String>) -> Self {
        Reply {
            code,
            status: Some(status),
            lines: vec![text.into()],
        }
    }

    /// A reply without an enhanced status code (greeting, SASL challenges).
    pub fn bare(code: u16, text: impl Into<String>) -> Self {
        Reply {
            code,
            status: None,
            lines: vec![text.into()],
        }
    }

    /// True for 2xx and 3xx replies.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// True for 5xx replies.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// Renders the reply as wire bytes, CRLF-terminated on every line.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let last = self.lines.len().saturating_sub(1);
        let code = Decimal::new(u64::from(self.code));
        for (i, line) in self.lines.iter().enumerate() {
            out.extend_from_slice(code.as_bytes());
            out.push(if i == last { b' ' } else { b'-' });
            if self.status.is_some() {
                self.push_status(out);
                out.push(b' ');
            }
            // Defence in depth: reply text is built from our own strings, but a stray control
            // character must never let a peer inject a reply line.
            if line.chars().any(char::is_control) {
                let clean: String = line
                    .chars()
                    .map(|ch| if ch.is_control() { ' ' } else { ch })
                    .collect();
                out.extend_from_slice(clean.as_bytes());
            } else {
                out.extend_from_slice(line.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form as a string, mostly for logs and tests.
    pub fn to_wire_string(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Code, enhanced status and every line joined by spaces ("550 5.1.1 no such user here"),
    /// for events and queue views.
    pub fn one_line(&self) -> String {
        let mut out =
            Vec::with_capacity(16 + self.lines.iter().map(|l| l.len() + 1).sum::<usize>());
        out.extend_from_slice(Decimal::new(u64::from(self.code)).as_bytes());
        if self.status.is_some() {
            out.push(b' ');
            self.push_status(&mut out);
        }
        out.push(b' ');
        for (i, line) in self.lines.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(line.as_bytes());
        }
        // Only whole UTF-8 strings went in.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the enhanced status code ("5.1.1"), if any.
    fn push_status(&self, out: &mut Vec<u8>) {
        if let Some((class, subject, detail)) = self.status {
            out.extend_from_slice(Decimal::new(u64::from(class)).as_bytes());
            out.push(b'.');
            out.extend_from_slice(Decimal::new(u64::from(subject)).as_bytes());
            out.push(b'.');
            out.extend_from_slice(Decimal::new(u64::from(detail)).as_bytes());
        }
    }

    /// The first line without the trailing CRLF, for one-line logs.
    pub fn summary(&self) -> String {
        let wire = self.to_wire_string();
        wire.lines().last().unwrap_or_default().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_every_line() {
        let reply = Reply {
            code: 550,
            status: Some((5, 1, 1)),
            lines: vec!["no such".into(), "user here".into()],
        };
        assert_eq!(reply.one_line(), "550 5.1.1 no such user here");
        let plain = Reply {
            code: 421,
            status: None,
            lines: vec!["busy".into()],
        };
        assert_eq!(plain.one_line(), "421 busy");
    }

    #[test]
    fn multi_line_uses_dash_then_space() {
        let reply = Reply {
            code: 250,
            status: None,
            lines: vec!["mx.example".into(), "PIPELINING".into(), "SIZE 10".into()],
        };
        assert_eq!(
            reply.to_wire_string(),
            "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10\r\n"
        );
    }

    #[test]
    fn control_characters_in_text_are_neutralised() {
        let reply = Reply::new(550, (5, 1, 1), "bad\r\n250 injected");
        assert_eq!(reply.to_wire_string(), "550 5.1.1 bad  250 injected\r\n");
    }
}
