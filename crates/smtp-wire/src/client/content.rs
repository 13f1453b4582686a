//! Outbound content: every line ending becomes CRLF (a bare CR or LF is never emitted,
//! whatever the stored content holds). For DATA, lines starting with "." are dot-stuffed and
//! the `.` line ends it; for BDAT the content goes as it is, length-delimited.

/// Appends `content` to `out` ready for DATA, followed by the terminating `.` line.
pub fn encode_data(content: &[u8], out: &mut Vec<u8>) {
    encode(content, true, out);
    out.extend_from_slice(b".\r\n");
}

/// Appends `content` to `out` for one `BDAT n LAST` chunk; returns the chunk's length.
pub fn encode_bdat(content: &[u8], out: &mut Vec<u8>) -> usize {
    let start = out.len();
    encode(content, false, out);
    out.len() - start
}

fn encode(content: &[u8], stuff_dots: bool, out: &mut Vec<u8>) {
    out.reserve(content.len() + content.len() / 64 + 5);
    let mut line_start = true;
    let mut i = 0;
    while i < content.len() {
        if stuff_dots && line_start && content[i] == b'.' {
            out.push(b'.');
        }
        match memchr::memchr2(b'\r', b'\n', &content[i..]) {
            None => {
                out.extend_from_slice(&content[i..]);
                i = content.len();
                line_start = false;
            }
            Some(offset) => {
                out.extend_from_slice(&content[i..i + offset]);
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
        let mut out = Vec::new();
        let n = encode_bdat(b"a\n.b\rc", &mut out);
        assert_eq!(out, b"a\r\n.b\r\nc\r\n");
        assert_eq!(n, out.len());
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
