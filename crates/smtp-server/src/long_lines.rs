//! Lines longer than SMTP allows (998 octets before the CRLF, RFC 5321 §4.5.3.1.6) are
//! accepted, as Postfix accepts them, but never stored or sent as they are: a strict
//! receiver answers `500 Line too long` and the mail bounces. The message is rewritten
//! before it is signed and spooled, keeping its meaning where MIME allows:
//!
//! - a header field is folded at whitespace (unfolding gives the same value back);
//! - a text part sent as 7bit/8bit/binary is re-encoded as quoted-printable (its
//!   `Content-Transfer-Encoding` changed, `MIME-Version` added to a plain message);
//! - base64 and quoted-printable bodies are re-wrapped (decoders ignore the breaks);
//! - anything left (a nested message, a preamble, a field without whitespace) is broken
//!   with CRLF and a space, as Postfix's `smtp_line_length_limit` does.

use std::ops::Range;

use mail_parser::{Encoding, MessageParser, PartType};

/// Longest line SMTP allows, without its CRLF.
pub const LINE_BYTES_MAX: usize = 998;

/// Quoted-printable and base64 lines are kept to RFC 2045's 76 characters.
const ENCODED_LINE_BYTES: usize = 76;

/// True when some line of `bytes` is longer than [`LINE_BYTES_MAX`].
pub fn present(bytes: &[u8]) -> bool {
    let mut line_start = 0;
    for at in memchr::memchr_iter(b'\n', bytes) {
        let end = if at > 0 && bytes[at - 1] == b'\r' {
            at - 1
        } else {
            at
        };
        if end - line_start > LINE_BYTES_MAX {
            return true;
        }
        line_start = at + 1;
    }
    bytes.len() - line_start > LINE_BYTES_MAX
}

/// `content` (CRLF line endings) with every line at most [`LINE_BYTES_MAX`] octets.
pub fn rewrite(content: &[u8]) -> Vec<u8> {
    let edits = MessageParser::default()
        .parse(content)
        .map(|message| {
            let mut edits = Vec::new();
            for (index, part) in message.parts.iter().enumerate() {
                part_edits(content, index == 0, part, &mut edits);
            }
            edits
        })
        .unwrap_or_default();
    let mut out = Vec::with_capacity(content.len() + content.len() / 16);
    let mut at = 0;
    let mut edits = edits;
    edits.sort_by_key(|(range, _)| range.start);
    for (range, replacement) in edits {
        if range.start < at || range.end > content.len() {
            continue;
        }
        out.extend_from_slice(&content[at..range.start]);
        out.extend_from_slice(&replacement);
        at = range.end;
    }
    out.extend_from_slice(&content[at..]);
    break_long_lines(&out)
}

/// The edits one MIME part needs: its header block, and its body when it is a leaf.
fn part_edits(
    content: &[u8],
    top: bool,
    part: &mail_parser::MessagePart<'_>,
    edits: &mut Vec<(Range<usize>, Vec<u8>)>,
) {
    let header = part.offset_header as usize..part.offset_body as usize;
    let body = part.offset_body as usize..part.offset_end as usize;
    if header.start > header.end || body.start > body.end || body.end > content.len() {
        return;
    }
    let leaf = matches!(
        part.body,
        PartType::Text(_) | PartType::Html(_) | PartType::Binary(_) | PartType::InlineBinary(_)
    );
    let mut new_header = None;
    if leaf && present(&content[body.clone()]) {
        let raw = &content[body.clone()];
        let replacement = match part.encoding {
            Encoding::Base64 => rewrap_base64(raw),
            Encoding::QuotedPrintable => rewrap_quoted_printable(raw),
            Encoding::None => {
                new_header = Some(with_quoted_printable(&content[header.clone()], top));
                encode_quoted_printable(raw)
            }
        };
        edits.push((body, replacement));
    }
    match new_header {
        Some(block) => edits.push((header, fold_header_block(&block))),
        None if present(&content[header.clone()]) => {
            let folded = fold_header_block(&content[header.clone()]);
            edits.push((header, folded));
        }
        None => {}
    }
}

/// The header block with `Content-Transfer-Encoding: quoted-printable` in place of any
/// other, and `MIME-Version: 1.0` when a top-level header has none.
fn with_quoted_printable(block: &[u8], top: bool) -> Vec<u8> {
    let fields = split_fields(block);
    let mut out = Vec::with_capacity(block.len() + 64);
    let mut has_mime_version = false;
    for field in &fields {
        let name = field_name(field);
        if name.eq_ignore_ascii_case(b"content-transfer-encoding") {
            continue;
        }
        has_mime_version |= name.eq_ignore_ascii_case(b"mime-version");
        out.extend_from_slice(field);
    }
    if top && !has_mime_version {
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    }
    out.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\r\n");
    // What followed the fields: the empty line that ends the header block.
    out.extend_from_slice(&block[fields.iter().map(|f| f.len()).sum::<usize>()..]);
    out
}

/// The fields of a header block, each with its continuation lines and final CRLF; stops at
/// the empty line.
fn split_fields(block: &[u8]) -> Vec<&[u8]> {
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at < block.len() {
        let end = memchr::memchr(b'\n', &block[at..]).map_or(block.len(), |i| at + i + 1);
        let line = &block[at..end];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation && at > start {
            fields.push(&block[start..at]);
            start = at;
        }
        at = end;
    }
    if at > start {
        fields.push(&block[start..at]);
    }
    fields
}

fn field_name(field: &[u8]) -> &[u8] {
    let colon = memchr::memchr(b':', field).unwrap_or(field.len());
    field[..colon].trim_ascii()
}

/// Folds header lines longer than allowed at their last whitespace before the limit (so
/// unfolding restores the value); a stretch with no whitespace is left to
/// [`break_long_lines`].
fn fold_header_block(block: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(block.len() + 16);
    for line in block.split_inclusive(|&b| b == b'\n') {
        let (mut text, ending) = match line.strip_suffix(b"\r\n") {
            Some(text) => (text, &b"\r\n"[..]),
            None => (line, &b""[..]),
        };
        while text.len() > LINE_BYTES_MAX {
            // Fold before a space or tab in the window that keeps this line within the
            // limit; never at the very start (a field name or an already folded line).
            let window = &text[1..=LINE_BYTES_MAX];
            let Some(at) = window.iter().rposition(|&b| b == b' ' || b == b'\t') else {
                break;
            };
            out.extend_from_slice(&text[..at + 1]);
            out.extend_from_slice(b"\r\n");
            text = &text[at + 1..];
        }
        out.extend_from_slice(text);
        out.extend_from_slice(ending);
    }
    out
}

/// `raw` (a 7bit/8bit/binary body) as quoted-printable (RFC 2045 §6.7), keeping its line
/// breaks as hard breaks and ending as it ended.
fn encode_quoted_printable(raw: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 8);
    let mut lines = raw.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut width = 0;
        for (i, &b) in line.iter().enumerate() {
            let at_end = i + 1 == line.len();
            let literal =
                matches!(b, b'!'..=b'<' | b'>'..=b'~') || (matches!(b, b' ' | b'\t') && !at_end);
            let size = if literal { 1 } else { 3 };
            // Room for a soft break ("=") after this character.
            if width + size > ENCODED_LINE_BYTES - 1 {
                out.extend_from_slice(b"=\r\n");
                width = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
            width += size;
        }
        if !last {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// A base64 body re-wrapped at 76 characters; decoders skip line breaks, so the data is
/// unchanged.
fn rewrap_base64(raw: &[u8]) -> Vec<u8> {
    let chars: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(chars.len() + chars.len() / 38 + 2);
    for line in chars.chunks(ENCODED_LINE_BYTES) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    if !raw.ends_with(b"\n") && out.ends_with(b"\r\n") {
        out.truncate(out.len() - 2);
    }
    out
}

/// A quoted-printable body whose lines are too long gets soft breaks (`=` CRLF), never
/// inside an `=XX` escape.
fn rewrap_quoted_printable(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let (mut text, ending) = match line.strip_suffix(b"\r\n") {
            Some(text) => (text, &b"\r\n"[..]),
            None => (line, &b""[..]),
        };
        while text.len() > ENCODED_LINE_BYTES {
            let mut cut = ENCODED_LINE_BYTES - 1;
            // Step back over an escape that the cut would split.
            if let Some(eq) = text[cut.saturating_sub(2)..cut]
                .iter()
                .position(|&b| b == b'=')
            {
                cut = cut.saturating_sub(2) + eq;
            }
            if cut == 0 {
                break;
            }
            out.extend_from_slice(&text[..cut]);
            out.extend_from_slice(b"=\r\n");
            text = &text[cut..];
        }
        out.extend_from_slice(text);
        out.extend_from_slice(ending);
    }
    out
}

/// The last resort: lines still too long are broken with CRLF and a space every
/// [`LINE_BYTES_MAX`] octets.
fn break_long_lines(content: &[u8]) -> Vec<u8> {
    if !present(content) {
        return content.to_vec();
    }
    let mut out = Vec::with_capacity(content.len() + content.len() / 256);
    for line in content.split_inclusive(|&b| b == b'\n') {
        let (text, ending) = match line.strip_suffix(b"\r\n") {
            Some(text) => (text, &b"\r\n"[..]),
            None => (line, &b""[..]),
        };
        // The same breaking as delivery's, which meets what this did not rewrite.
        smtp_wire::client::content::push_line_text(text, false, &mut out);
        out.extend_from_slice(ending);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MimeHeaders as _;

    fn longest_line(content: &[u8]) -> usize {
        content
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).len())
            .max()
            .unwrap_or(0)
    }

    fn words(n: usize) -> String {
        (0..n)
            .map(|i| format!("word{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A plain message with a 5,000-octet line becomes quoted-printable MIME whose decoded
    /// text is the original, and no line is over the limit.
    #[test]
    fn a_plain_body_becomes_quoted_printable_with_the_same_text() {
        let long = format!("{}é=end ", words(600));
        let content = format!("From: a@x.test\r\nSubject: s\r\n\r\nshort\r\n{long}\r\nlast\r\n");
        assert!(present(content.as_bytes()));
        let out = rewrite(content.as_bytes());
        assert!(
            longest_line(&out) <= ENCODED_LINE_BYTES,
            "{}",
            longest_line(&out)
        );
        assert!(!present(&out));
        let text = String::from_utf8(out.clone()).expect("ascii");
        assert!(
            text.contains("Content-Transfer-Encoding: quoted-printable\r\n"),
            "{text}"
        );
        assert!(text.contains("MIME-Version: 1.0\r\n"), "{text}");
        let parsed = MessageParser::default().parse(&out).expect("parses");
        let body = parsed.body_text(0).expect("text");
        assert_eq!(body, format!("short\r\n{long}\r\nlast\r\n"));
        assert_eq!(parsed.subject(), Some("s"));
    }

    /// In a multipart message each part is fixed its own way: a 7bit text part becomes
    /// quoted-printable (its old encoding header replaced), a one-line base64 attachment is
    /// re-wrapped; the decoded contents are unchanged, the other parts untouched.
    #[test]
    fn multipart_parts_are_fixed_their_own_way() {
        let long = words(400);
        let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let b64 = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(&data)
        };
        let content = format!(
            "From: a@x.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
             --b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{long}\r\n\
             --b1\r\nContent-Type: text/html\r\n\r\n<p>short</p>\r\n\
             --b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n\
             --b1--\r\n"
        );
        let out = rewrite(content.as_bytes());
        assert!(!present(&out));
        let text = String::from_utf8(out.clone()).expect("ascii");
        assert_eq!(
            text.matches("Content-Transfer-Encoding: 7bit").count(),
            0,
            "{text}"
        );
        assert_eq!(text.matches("MIME-Version").count(), 1, "{text}");
        let parsed = MessageParser::default().parse(&out).expect("parses");
        assert_eq!(parsed.body_text(0).expect("text"), long);
        let html = parsed
            .parts
            .iter()
            .find(|p| p.content_type().and_then(|c| c.subtype()) == Some("html"))
            .expect("html part");
        assert_eq!(html.text_contents(), Some("<p>short</p>"));
        let attachment = parsed.attachments().next().expect("attachment");
        assert_eq!(attachment.contents(), &data[..]);
    }

    /// A long header field is folded at whitespace: its unfolded value is unchanged.
    #[test]
    fn long_header_fields_fold_at_whitespace() {
        let references = words(300);
        let content =
            format!("From: a@x.test\r\nX-Refs: {references}\r\nSubject: s\r\n\r\nbody\r\n");
        let out = rewrite(content.as_bytes());
        assert!(!present(&out));
        let parsed = MessageParser::default().parse(&out).expect("parses");
        let value = parsed
            .header_raw("X-Refs")
            .expect("header")
            .replace("\r\n", "");
        assert_eq!(value.trim(), references);
        assert_eq!(parsed.body_text(0).expect("body"), "body\r\n");
    }

    /// Whatever MIME cannot fix (no whitespace to fold at, a nested message) is broken
    /// with CRLF and a space: never a line over the limit, never a bare CR or LF.
    #[test]
    fn what_mime_cannot_fix_is_broken_with_a_space() {
        let token = "x".repeat(2500);
        let content = format!("From: a@x.test\r\nX-Token: {token}\r\n\r\nok\r\n");
        let out = rewrite(content.as_bytes());
        assert!(!present(&out));
        assert!(longest_line(&out) <= LINE_BYTES_MAX);
        let unfolded = String::from_utf8(out).expect("ascii").replace("\r\n ", "");
        assert!(unfolded.contains(&token));
    }

    proptest::proptest! {
        /// Any CRLF content comes out CRLF-only with no line over the limit.
        #[test]
        fn output_never_has_a_long_line_or_a_bare_line_ending(
            lines in proptest::collection::vec((0usize..2500, proptest::sample::select(vec![b'a', b' ', b'=', 0xc3, b':'])), 1..8),
            header in proptest::bool::ANY,
        ) {
            let mut content = Vec::new();
            if header {
                content.extend_from_slice(b"Subject: x\r\n\r\n");
            }
            for (len, byte) in lines {
                content.extend(std::iter::repeat_n(byte, len));
                content.extend_from_slice(b"\r\n");
            }
            let out = rewrite(&content);
            proptest::prop_assert!(!present(&out));
            for (i, &b) in out.iter().enumerate() {
                if b == b'\n' {
                    proptest::prop_assert!(i > 0 && out[i - 1] == b'\r');
                }
                if b == b'\r' {
                    proptest::prop_assert_eq!(out.get(i + 1), Some(&b'\n'));
                }
            }
        }
    }
}
