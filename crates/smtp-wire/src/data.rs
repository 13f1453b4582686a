//! Message content receivers for DATA (dot-stuffed, CRLF.CRLF-terminated) and BDAT (counted).
//!
//! Only `CRLF . CRLF` ends DATA. A bare CR or bare LF anywhere in the content poisons the
//! message: the receiver keeps reading to the real terminator and the session rejects the
//! whole message, so `<LF>.<CR><LF>` and its relatives can never split one message into two
//! (SMTP smuggling, CVE-2023-51764/51765/51766).

/// Outcome of feeding bytes to a content receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// All given bytes were consumed; more are needed.
    NeedMore,
    /// The content ended after consuming this many of the given bytes.
    Done(usize),
}

/// Problems found in the content; the session turns them into a rejection once it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContentFlaws {
    /// A CR not followed by LF, or an LF not preceded by CR, was seen.
    pub bare_line_ending: bool,
    /// The content grew past the size limit; the excess was discarded.
    pub too_big: bool,
    /// A NUL byte was seen. RFC 5322 text never holds one, receivers handle it badly
    /// (some truncate there, so what they show differs from what was signed and checked),
    /// and it cannot be relayed as it is.
    pub nul: bool,
}

impl ContentFlaws {
    /// True when the content will be refused whatever follows, so it need not be kept.
    fn poisoned(&self) -> bool {
        self.too_big || self.bare_line_ending || self.nul
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line: the previous bytes were a real CRLF (or the DATA command).
    LineStart,
    /// The line began with a dot that was removed (dot-unstuffing).
    AfterDot,
    /// A line consisting of a single dot so far, then CR: LF here ends the content.
    DotCr,
    /// Inside a line.
    InLine,
    /// Inside a line, just after a CR.
    SawCr,
}

/// Receives DATA content, undoing dot-stuffing, into a caller-owned buffer.
#[derive(Debug)]
pub struct DataReceiver {
    state: State,
    max_bytes: usize,
    received_bytes: usize,
    flaws: ContentFlaws,
}

impl DataReceiver {
    /// A receiver that keeps at most `max_bytes` of content.
    pub fn new(max_bytes: usize) -> Self {
        DataReceiver {
            state: State::LineStart,
            max_bytes,
            received_bytes: 0,
            flaws: ContentFlaws::default(),
        }
    }

    /// What was wrong with the content so far.
    pub fn flaws(&self) -> ContentFlaws {
        self.flaws
    }

    /// Total content bytes seen, including any discarded past the limit.
    pub fn received_bytes(&self) -> usize {
        self.received_bytes
    }

    fn push(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        self.received_bytes += bytes.len();
        if self.flaws.poisoned() {
            return;
        }
        if memchr::memchr(0, bytes).is_some() {
            self.flaws.nul = true;
            *out = Vec::new();
            return;
        }
        if out.len() + bytes.len() > self.max_bytes {
            self.flaws.too_big = true;
            // The content will be rejected; free the memory now rather than at the end.
            *out = Vec::new();
            return;
        }
        out.extend_from_slice(bytes);
    }

    fn bare(&mut self, out: &mut Vec<u8>) {
        self.flaws.bare_line_ending = true;
        *out = Vec::new();
    }

    /// Feeds `input`; appends unstuffed content to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Progress {
        let mut pos = 0;
        // Below this position the careful path runs: the fast path found something there.
        let mut careful_until = 0;
        while pos < input.len() {
            let byte = input[pos];
            match self.state {
                State::LineStart => {
                    if byte == b'.' {
                        self.state = State::AfterDot;
                        pos += 1;
                    } else {
                        self.state = State::InLine;
                    }
                }
                State::AfterDot => {
                    if byte == b'\r' {
                        self.state = State::DotCr;
                        pos += 1;
                    } else {
                        self.state = State::InLine;
                    }
                }
                State::DotCr => {
                    if byte == b'\n' {
                        return Progress::Done(pos + 1);
                    }
                    // "." CR x: the CR was bare; the dot line is content, not a terminator.
                    self.bare(out);
                    self.state = State::InLine;
                }
                State::InLine => {
                    if pos >= careful_until {
                        match clean_lines(&input[pos..]) {
                            Ok(len) => {
                                self.push(out, &input[pos..pos + len]);
                                pos += len;
                                self.state = State::LineStart;
                                continue;
                            }
                            // Line by line up to the end of that window, so that a hostile
                            // message cannot make every line pay for another scan.
                            Err(window) => careful_until = pos + window,
                        }
                    }
                    let rest = &input[pos..];
                    match memchr::memchr2(b'\r', b'\n', rest) {
                        None => {
                            self.push(out, rest);
                            pos = input.len();
                        }
                        Some(i) => {
                            self.push(out, &rest[..i]);
                            if rest[i] == b'\n' {
                                // A bare LF is content of a poisoned message, never a line end:
                                // staying InLine is what keeps "<LF>.<CR><LF>" from ending DATA.
                                self.bare(out);
                                self.received_bytes += 1;
                            } else {
                                self.state = State::SawCr;
                            }
                            pos += i + 1;
                        }
                    }
                }
                State::SawCr => {
                    if byte == b'\n' {
                        self.push(out, b"\r\n");
                        self.state = State::LineStart;
                        pos += 1;
                    } else {
                        self.bare(out);
                        self.received_bytes += 1;
                        self.state = State::InLine;
                    }
                }
            }
        }
        Progress::NeedMore
    }
}

/// Most bytes the fast path looks at in one go.
const CLEAN_WINDOW_BYTES: usize = 16 * 1024;

/// The fast path of [`DataReceiver::feed`] inside a line: the whole lines at the start of
/// `rest` (up to [`CLEAN_WINDOW_BYTES`], and up to the first line that starts with a dot) when
/// every one ends in CRLF and none holds a bare CR or LF: exactly the bytes the line-by-line
/// path would copy unchanged, checked in one vectorisable pass instead of one search per
/// line. `Err` carries the run's length when the careful path must take it.
fn clean_lines(rest: &[u8]) -> Result<usize, usize> {
    let mut window = &rest[..rest.len().min(CLEAN_WINDOW_BYTES)];
    // Stop before the first line that opens with a dot (the end of DATA, or a stuffed dot):
    // the line-by-line path takes it from there. Every search here is bounded by the run it
    // returns, so a message of short dot lines costs no more than its length.
    if let Some(dot) = memchr::memmem::find(window, b"\n.") {
        window = &window[..=dot];
    }
    let Some(last_lf) = memchr::memrchr(b'\n', window) else {
        return Err(window.len());
    };
    let lines = &window[..=last_lf];
    // Inside a line the byte before `lines` was not a CR, so a leading LF is bare.
    if lines[0] == b'\n' {
        return Err(lines.len());
    }
    // A CR not followed by LF, or an LF not preceded by CR, anywhere in the run.
    let bare = lines.iter().zip(&lines[1..]).fold(0u8, |bare, (&a, &b)| {
        bare | (u8::from(a == b'\r') ^ u8::from(b == b'\n'))
    });
    if bare == 0 {
        Ok(lines.len())
    } else {
        Err(lines.len())
    }
}

/// Receives BDAT chunks: counted bytes, no dot-stuffing, same line-ending and size rules.
#[derive(Debug)]
pub struct BdatReceiver {
    max_bytes: usize,
    received_bytes: usize,
    last_was_cr: bool,
    flaws: ContentFlaws,
}

impl BdatReceiver {
    /// A receiver that keeps at most `max_bytes` of content across all chunks.
    pub fn new(max_bytes: usize) -> Self {
        BdatReceiver {
            max_bytes,
            received_bytes: 0,
            last_was_cr: false,
            flaws: ContentFlaws::default(),
        }
    }

    /// What was wrong with the content so far; call [`BdatReceiver::finish`] at LAST first.
    pub fn flaws(&self) -> ContentFlaws {
        self.flaws
    }

    /// Total bytes received over all chunks.
    pub fn received_bytes(&self) -> usize {
        self.received_bytes
    }

    /// Feeds bytes that belong to the current chunk.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.received_bytes += chunk.len();
        if !self.flaws.bare_line_ending && has_bare_line_ending(chunk, &mut self.last_was_cr) {
            self.flaws.bare_line_ending = true;
            *out = Vec::new();
        }
        if !self.flaws.poisoned() && memchr::memchr(0, chunk).is_some() {
            self.flaws.nul = true;
            *out = Vec::new();
        }
        if self.flaws.poisoned() {
            return;
        }
        if out.len() + chunk.len() > self.max_bytes {
            self.flaws.too_big = true;
            *out = Vec::new();
            return;
        }
        out.extend_from_slice(chunk);
    }

    /// Marks the end of the content: a trailing CR is a bare CR.
    pub fn finish(&mut self) {
        if self.last_was_cr {
            self.flaws.bare_line_ending = true;
        }
    }
}

fn has_bare_line_ending(chunk: &[u8], last_was_cr: &mut bool) -> bool {
    let mut prev_cr = *last_was_cr;
    for &byte in chunk {
        match byte {
            b'\n' if !prev_cr => return true,
            _ if prev_cr && byte != b'\n' => return true,
            _ => {}
        }
        prev_cr = byte == b'\r';
    }
    *last_was_cr = prev_cr;
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> (Progress, Vec<u8>, ContentFlaws) {
        let mut rx = DataReceiver::new(1 << 20);
        let mut out = Vec::new();
        let progress = rx.feed(input, &mut out);
        (progress, out, rx.flaws())
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf_and_unstuffs() {
        let (p, out, flaws) = run(b"a\r\n..b\r\n.\r\nNEXT");
        assert_eq!(p, Progress::Done(11));
        assert_eq!(out, b"a\r\n.b\r\n");
        assert_eq!(flaws, ContentFlaws::default());
    }

    #[test]
    fn empty_message() {
        assert_eq!(run(b".\r\n").0, Progress::Done(3));
    }

    #[test]
    fn smuggling_sequences_never_terminate() {
        for attack in [
            &b"a\n.\r\n"[..],
            b"a\r.\r\n",
            b"a\n.\n",
            b"a\r\n.\n",
            b"a\r\n.\r",
            b"a\r\n.\rx",
        ] {
            let (p, _, flaws) = run(attack);
            assert_eq!(p, Progress::NeedMore, "{attack:?} must not end DATA");
            let (p2, _, _) = run(&[attack, b"\r\n.\r\n"].concat());
            assert!(matches!(p2, Progress::Done(_)));
            let mut rx = DataReceiver::new(1 << 20);
            let mut out = Vec::new();
            rx.feed(&[attack, b"\r\n.\r\n"].concat(), &mut out);
            assert!(
                rx.flaws().bare_line_ending || flaws.bare_line_ending,
                "{attack:?}"
            );
        }
    }

    #[test]
    fn byte_at_a_time_matches_whole() {
        let msg = b"Subject: x\r\n\r\n..dot\r\nbody\r\n.\r\n";
        let mut rx = DataReceiver::new(1 << 20);
        let mut out = Vec::new();
        let mut done = None;
        for (i, b) in msg.iter().enumerate() {
            if let Progress::Done(n) = rx.feed(std::slice::from_ref(b), &mut out) {
                assert_eq!(n, 1);
                done = Some(i);
            }
        }
        assert_eq!(done, Some(msg.len() - 1));
        assert_eq!(out, b"Subject: x\r\n\r\n.dot\r\nbody\r\n");
    }

    #[test]
    fn size_limit_discards() {
        let mut rx = DataReceiver::new(4);
        let mut out = Vec::new();
        assert_eq!(rx.feed(b"abcdef\r\n.\r\n", &mut out), Progress::Done(11));
        assert!(rx.flaws().too_big);
        assert!(out.is_empty());
    }

    /// The receiver as it was before the fast path: one search per line.
    fn reference_feed(rx: &mut DataReceiver, input: &[u8], out: &mut Vec<u8>) -> Progress {
        let mut pos = 0;
        while pos < input.len() {
            let byte = input[pos];
            match rx.state {
                State::LineStart => {
                    if byte == b'.' {
                        rx.state = State::AfterDot;
                        pos += 1;
                    } else {
                        rx.state = State::InLine;
                    }
                }
                State::AfterDot => {
                    if byte == b'\r' {
                        rx.state = State::DotCr;
                        pos += 1;
                    } else {
                        rx.state = State::InLine;
                    }
                }
                State::DotCr => {
                    if byte == b'\n' {
                        return Progress::Done(pos + 1);
                    }
                    rx.bare(out);
                    rx.state = State::InLine;
                }
                State::InLine => {
                    let rest = &input[pos..];
                    match memchr::memchr2(b'\r', b'\n', rest) {
                        None => {
                            rx.push(out, rest);
                            pos = input.len();
                        }
                        Some(i) => {
                            rx.push(out, &rest[..i]);
                            if rest[i] == b'\n' {
                                rx.bare(out);
                                rx.received_bytes += 1;
                            } else {
                                rx.state = State::SawCr;
                            }
                            pos += i + 1;
                        }
                    }
                }
                State::SawCr => {
                    if byte == b'\n' {
                        rx.push(out, b"\r\n");
                        rx.state = State::LineStart;
                        pos += 1;
                    } else {
                        rx.bare(out);
                        rx.received_bytes += 1;
                        rx.state = State::InLine;
                    }
                }
            }
        }
        Progress::NeedMore
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn fast_path_matches_the_line_by_line_receiver(
            bytes in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'.', b'\r', b'\n', b'\r', b'\n']), 0..200),
            cuts in proptest::collection::vec(0usize..200, 0..6),
            limit in 1usize..300,
        ) {
            // Mostly well-formed lines with the odd hostile byte, fed in random pieces.
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= bytes.len()).collect();
            cuts.push(0);
            cuts.push(bytes.len());
            cuts.sort_unstable();
            let (mut fast, mut reference) = (DataReceiver::new(limit), DataReceiver::new(limit));
            let (mut fast_out, mut reference_out) = (Vec::new(), Vec::new());
            for piece in cuts.windows(2) {
                let input = &bytes[piece[0]..piece[1]];
                let a = fast.feed(input, &mut fast_out);
                let b = reference_feed(&mut reference, input, &mut reference_out);
                proptest::prop_assert_eq!(a, b);
                proptest::prop_assert_eq!(&fast_out, &reference_out);
                proptest::prop_assert_eq!(fast.flaws(), reference.flaws());
                proptest::prop_assert_eq!(fast.received_bytes(), reference.received_bytes());
                proptest::prop_assert_eq!(fast.state, reference.state);
                if matches!(a, Progress::Done(_)) {
                    break;
                }
            }
        }

        #[test]
        fn fast_path_matches_on_realistic_messages(
            lines in proptest::collection::vec(
                (proptest::sample::select(vec!["", ".", "..", "x", ".x", "Subject: y", "a\rb", "a\nb", "."]), 0usize..90),
                0..40),
        ) {
            let mut message = Vec::new();
            for (text, pad) in &lines {
                message.extend_from_slice(text.as_bytes());
                message.extend(std::iter::repeat_n(b'z', *pad));
                message.extend_from_slice(b"\r\n");
            }
            message.extend_from_slice(b".\r\nMAIL FROM:<next@example.org>\r\n");
            let (mut fast, mut reference) = (DataReceiver::new(1 << 20), DataReceiver::new(1 << 20));
            let (mut fast_out, mut reference_out) = (Vec::new(), Vec::new());
            let a = fast.feed(&message, &mut fast_out);
            let b = reference_feed(&mut reference, &message, &mut reference_out);
            proptest::prop_assert_eq!(a, b);
            proptest::prop_assert_eq!(fast_out, reference_out);
            proptest::prop_assert_eq!(fast.flaws(), reference.flaws());
            proptest::prop_assert_eq!(fast.received_bytes(), reference.received_bytes());
        }
    }

    #[test]
    fn bdat_detects_bare_endings_across_chunks() {
        let mut rx = BdatReceiver::new(100);
        let mut out = Vec::new();
        rx.feed(b"a\r", &mut out);
        rx.feed(b"\nb\r\n", &mut out);
        rx.finish();
        assert!(!rx.flaws().bare_line_ending);
        assert_eq!(out, b"a\r\nb\r\n");
        let mut rx = BdatReceiver::new(100);
        rx.feed(b"a\r", &mut out);
        rx.feed(b"b", &mut out);
        assert!(rx.flaws().bare_line_ending);
    }
}
