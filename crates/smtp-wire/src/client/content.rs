//! Outbound content: every line ending becomes CRLF (a bare CR or LF is never emitted,
//! whatever the stored content holds), and no line is longer than SMTP allows (998 octets):
//! the ingress re-encodes such mail before storing it, so a longer line here (a bounce
//! quoting such a message, a record from an older version) is broken with CRLF and a
//! space, as Postfix does. For DATA, lines starting with "." are dot-stuffed and the `.`
//! line ends it; for BDAT the content goes as it is, length-delimited.

/// Longest line sent, without its CRLF (RFC 5321 §4.5.3.1.6).
pub const LINE_BYTES_MAX: usize = 998;

/// Appends `content` to `out` ready for DATA, followed by the terminating `.` line.
pub fn encode_data(content: &[u8], out: &mut Vec<u8>) {
    encode(content, true, out);
    out.extend_from_slice(b".\r\n");
}

/// `content` as one `BDAT n LAST` chunk: borrowed when it is already canonical (every line
/// ending CRLF, ending with one), which is how the spool holds what our ingress accepted.
pub fn bdat_chunk(content: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if is_canonical(content) {
        return std::borrow::Cow::Borrowed(content);
    }
    let mut out = Vec::with_capacity(content.len() + content.len() / 64 + 2);
    encode(content, false, &mut out);
    std::borrow::Cow::Owned(out)
}

/// True when every CR and LF belongs to a CRLF, the content ends with one (or is empty)
/// and no line is too long: what [`encode`] would produce for BDAT anyway.
pub fn is_canonical(content: &[u8]) -> bool {
    if content.is_empty() {
        return true;
    }
    if !content.ends_with(b"\r\n") {
        return false;
    }
    let mut line_feeds = 0usize;
    let mut line_start = 0;
    for at in memchr::memchr_iter(b'\n', content) {
        if at == 0 || content[at - 1] != b'\r' || at - 1 - line_start > LINE_BYTES_MAX {
            return false;
        }
        line_start = at + 1;
        line_feeds += 1;
    }
    memchr::memchr_iter(b'\r', content).count() == line_feeds
}

/// Appends one line's text (no line ending) to `out`, broken with CRLF and a space where
/// it is longer than [`LINE_BYTES_MAX`] (counting the dot already stuffed before it).
pub fn push_line_text(text: &[u8], stuffed: bool, out: &mut Vec<u8>) {
    let mut rest = text;
    let mut width = LINE_BYTES_MAX - usize::from(stuffed);
    while rest.len() > width {
        out.extend_from_slice(&rest[..width]);
        out.extend_from_slice(b"\r\n ");
        rest = &rest[width..];
        // A continuation line starts with its space.
        width = LINE_BYTES_MAX - 1;
    }
    out.extend_from_slice(rest);
}

fn encode(content: &[u8], stuff_dots: bool, out: &mut Vec<u8>) {
    out.reserve(content.len() + content.len() / 64 + 5);
    let mut line_start = true;
    let mut i = 0;
    while i < content.len() {
        let stuffed = stuff_dots && line_start && content[i] == b'.';
        if stuffed {
            out.push(b'.');
        }
        match memchr::memchr2(b'\r', b'\n', &content[i..]) {
            None => {
                push_line_text(&content[i..], stuffed, out);
                i = content.len();
                line_start = false;
            }
            Some(offset) => {
                push_line_text(&content[i..i + offset], stuffed, out);
                out.extend_from_slice(b"\r\n");
                let at = i + offset;
                // CRLF counts once; a bare CR or bare LF each end a line of their own.
                i = if content[at] == b'\r' && content.get(at + 1) == Some(&b'\n') {
                    at + 2
                } else {
                    at + 1
                };
                line_start = true;
            }
        }
    }
    if !line_start {
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_data(content, &mut out);
        out
    }

    #[test]
    fn bdat_content_is_normalised_but_not_stuffed() {
        assert_eq!(&bdat_chunk(b"a\n.b\rc")[..], b"a\r\n.b\r\nc\r\n");
    }

    #[test]
    fn bdat_chunks_borrow_canonical_content_and_normalise_the_rest() {
        for canonical in [&b""[..], b"a\r\n", b"a\r\n\r\n.b\r\n"] {
            let chunk = bdat_chunk(canonical);
            assert!(matches!(chunk, std::borrow::Cow::Borrowed(_)));
            assert_eq!(&chunk[..], canonical);
        }
        for (raw, expected) in [
            (&b"a"[..], &b"a\r\n"[..]),
            (b"a\nb\r\n", b"a\r\nb\r\n"),
            (b"a\rb\r\n", b"a\r\nb\r\n"),
            (b"\na\r\n", b"\r\na\r\n"),
            (b"a\r\r\n", b"a\r\n\r\n"),
            (b"a\r\nb\r", b"a\r\nb\r\n"),
        ] {
            let chunk = bdat_chunk(raw);
            assert!(matches!(chunk, std::borrow::Cow::Owned(_)), "{raw:?}");
            assert_eq!(&chunk[..], expected, "{raw:?}");
        }
    }

    /// A line over 998 octets is never sent as it is: it is broken with CRLF and a space,
    /// by DATA (counting a stuffed dot) and by BDAT, and canonical content with such a line
    /// is not borrowed as it is.
    #[test]
    fn long_lines_are_broken() {
        let long = [&b"x".repeat(2500)[..], b"\r\n"].concat();
        let sent = encoded(&long);
        let text = String::from_utf8(sent.clone()).expect("ascii");
        assert!(text.lines().all(|l| l.len() <= LINE_BYTES_MAX), "DATA");
        assert_eq!(
            text.trim_end_matches("\r\n.\r\n").replace("\r\n ", ""),
            "x".repeat(2500)
        );
        let dotted = [&b"."[..], &b"y".repeat(997)[..], b"\r\n"].concat();
        let sent = String::from_utf8(encoded(&dotted)).expect("ascii");
        assert!(sent.lines().all(|l| l.len() <= LINE_BYTES_MAX), "{sent}");
        assert!(!is_canonical(&long));
        let chunk = bdat_chunk(&long);
        assert!(matches!(chunk, std::borrow::Cow::Owned(_)));
        let text = String::from_utf8(chunk.to_vec()).expect("ascii");
        assert!(text.lines().all(|l| l.len() <= LINE_BYTES_MAX), "BDAT");
        let exact = [&b"z".repeat(LINE_BYTES_MAX)[..], b"\r\n"].concat();
        assert!(is_canonical(&exact));
    }

    proptest::proptest! {
        #[test]
        fn bdat_chunk_matches_the_general_encoder(
            content in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'.', b'\r', b'\n']), 0..40)
        ) {
            let mut encoded = Vec::new();
            encode(&content, false, &mut encoded);
            proptest::prop_assert_eq!(&bdat_chunk(&content)[..], &encoded[..]);
        }
    }

    #[test]
    fn stuffing_and_line_endings() {
        assert_eq!(encoded(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(encoded(b"a\nb\rc"), b"a\r\nb\r\nc\r\n.\r\n");
        assert_eq!(encoded(b".\r\n"), b"..\r\n.\r\n");
        assert_eq!(encoded(b""), b".\r\n");
        assert_eq!(
            encoded(b"x\n.\r\nsmuggled"),
            b"x\r\n..\r\nsmuggled\r\n.\r\n"
        );
    }
}
