//! Property tests for the parsers: results must not depend on how the network splits the
//! bytes, and no input may panic the session or make it emit a malformed reply.

use std::sync::Arc;

use proptest::prelude::*;
use smtp_wire::data::{DataReceiver, Progress};
use smtp_wire::{Event, PeerContext, Reply, Session, SessionConfig};

fn feed_in_pieces(input: &[u8], cuts: &[usize]) -> (Option<usize>, Vec<u8>, bool) {
    let mut rx = DataReceiver::new(1 << 20);
    let mut out = Vec::new();
    let mut start = 0;
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    bounds.push(input.len());
    bounds.sort_unstable();
    for end in bounds {
        if end < start {
            continue;
        }
        if let Progress::Done(n) = rx.feed(&input[start..end], &mut out) {
            return (Some(start + n), out, rx.flaws().bare_line_ending);
        }
        start = end;
    }
    (None, out, rx.flaws().bare_line_ending)
}

/// Stuffs a body the way a correct client does.
fn dot_stuff(lines: &[String]) -> Vec<u8> {
    let mut wire = Vec::new();
    for line in lines {
        if line.starts_with('.') {
            wire.push(b'.');
        }
        wire.extend_from_slice(line.as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b".\r\n");
    wire
}

proptest! {
    #[test]
    fn data_receiver_is_split_invariant(input in proptest::collection::vec(
        prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'a')], 0..64),
        cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let whole = feed_in_pieces(&input, &[]);
        let pieces = feed_in_pieces(&input, &cuts);
        prop_assert_eq!(whole, pieces);
    }

    #[test]
    fn stuffed_bodies_roundtrip(lines in proptest::collection::vec("[.a-z ]{0,12}", 0..10)) {
        let wire = dot_stuff(&lines);
        let (end, out, bare) = feed_in_pieces(&wire, &[]);
        prop_assert_eq!(end, Some(wire.len()));
        prop_assert!(!bare);
        let expected: Vec<u8> = lines.iter().flat_map(|l| [l.as_bytes(), b"\r\n"].concat()).collect();
        prop_assert_eq!(out, expected);
    }

    #[test]
    fn only_crlf_dot_crlf_ends_data(body in proptest::collection::vec(
        prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'x')], 0..48)) {
        // If the receiver stops, the bytes consumed must end in CRLF.CRLF (or be ".\r\n" at the
        // very start), and a message containing bare CR/LF is flagged.
        let (end, _, bare) = feed_in_pieces(&body, &[]);
        if let Some(n) = end {
            let consumed = &body[..n];
            prop_assert!(consumed == b".\r\n" || consumed.ends_with(b"\r\n.\r\n"));
            let inner = &consumed[..n - 3];
            let has_bare = inner.windows(2).any(|w| (w[0] == b'\r') != (w[1] == b'\n'))
                || inner.first() == Some(&b'\n')
                || inner.last() == Some(&b'\r');
            if has_bare { prop_assert!(bare); }
        }
    }

    #[test]
    fn session_survives_arbitrary_input(chunks in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..200), 0..10), trusted in any::<bool>(),
        checks in any::<bool>()) {
        let config = Arc::new(SessionConfig {
            hostname: "mx.test".into(), message_bytes_max: 300, recipients_max: 2,
            command_line_bytes_max: 64, bad_commands_max: 50, starttls_available: true,
            auth_plaintext_allowed: true,
            recipient_checks: checks,
            local_checks: checks,
        });
        let mut session = Session::new(config, PeerContext { relay_trusted: trusted, tls_active: false });
        let mut output = session.output().to_vec();
        session.clear_output();
        'outer: for chunk in chunks {
            session.feed(&chunk);
            loop {
                match session.advance() {
                    Event::NeedInput | Event::StartTls => break,
                    Event::Close => break 'outer,
                    Event::Submit(_) => session.complete_submission(Reply::new(250, (2, 0, 0), "ok")),
                    Event::Authenticate(_) => session.complete_auth(None),
                    Event::CheckRecipient(address) => session.complete_recipient(
                        address.starts_with('n').then(|| Reply::new(550, (5, 1, 1), "no such user")),
                    ),
                    Event::CheckLocal(address) => session.complete_local(address.starts_with('b')),
                }
            }
            output.extend_from_slice(session.output());
            session.clear_output();
        }
        output.extend_from_slice(session.output());
        // Every reply line is "ddd[ -]text\r\n" with no stray CR or LF.
        for line in output.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            prop_assert!(line.ends_with(b"\r"));
            prop_assert!(line.len() >= 5 && line[..3].iter().all(u8::is_ascii_digit));
            prop_assert!(!line[..line.len() - 1].contains(&b'\r'));
        }
    }
}
