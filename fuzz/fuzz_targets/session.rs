//! Arbitrary bytes, split at arbitrary points, into a session with tight limits. The session
//! must never panic, and every reply line must be well formed.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use smtp_wire::{Event, PeerContext, Reply, Session, SessionConfig};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let config = Arc::new(SessionConfig {
        hostname: "mx.fuzz".into(),
        message_bytes_max: 512,
        recipients_max: 3,
        command_line_bytes_max: 128,
        bad_commands_max: 100,
        starttls_available: flags & 1 != 0,
        auth_plaintext_allowed: flags & 2 != 0,
        recipient_checks: flags & 16 != 0,
        local_checks: flags & 32 != 0,
    });
    let peer = PeerContext { relay_trusted: flags & 4 != 0, tls_active: flags & 8 != 0 };
    let mut session = Session::new(config, peer);
    // Bytes 0xF0..=0xFF mark chunk boundaries, so the fuzzer also explores how input is split.
    for chunk in rest.split(|&b| b >= 0xF0) {
        session.feed(chunk);
        loop {
            match session.advance() {
                Event::NeedInput | Event::StartTls => break,
                Event::Close => return,
                Event::Submit(txn) => {
                    assert!(!txn.recipients.is_empty());
                    assert!(txn.content.len() <= 512);
                    session.complete_submission(Reply::new(250, (2, 0, 0), "ok"));
                }
                Event::Authenticate(c) => session.complete_auth((c.username == "u").then(|| c.username)),
                Event::CheckRecipient(address) => session.complete_recipient(
                    address.starts_with('n').then(|| Reply::new(550, (5, 1, 1), "no such user")),
                ),
                Event::CheckLocal(address) => session.complete_local(address.starts_with('b')),
            }
        }
        for line in session.output().split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            assert!(line.ends_with(b"\r") && line.len() >= 5);
        }
        session.clear_output();
    }
});
