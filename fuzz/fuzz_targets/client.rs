//! Arbitrary server bytes, split at arbitrary points, into the client session while it
//! delivers a message. It must never panic, and it must never emit a bare CR or LF.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_wire::client::{ClientEvent, ClientSession, Outbound, OutboundRecipient};

fuzz_target!(|data: &[u8]| {
    let message = Outbound {
        sender: "s@fuzz.test".into(),
        recipients: (0..3)
            .map(|i| OutboundRecipient { address: format!("r{i}@fuzz.test"), notify: None, orcpt: None })
            .collect(),
        dsn_ret: None,
        dsn_envid: None,
        body_8bit: false,
        smtputf8: false,
        content_canonical: false,
    };
    let mut client = ClientSession::new("fuzz.client");
    let mut sent = 0;
    for chunk in data.split(|&b| b >= 0xF0) {
        client.feed(chunk);
        loop {
            match client.poll() {
                ClientEvent::NeedInput => break,
                ClientEvent::Ready | ClientEvent::Transaction(_) if sent < 2 => {
                    sent += 1;
                    client.send(&message, b"line\nbare\rcr\r\n.dot\r\n");
                }
                ClientEvent::Closed | ClientEvent::Failed(_) => return,
                ClientEvent::TlsReady => client.tls_established(),
                _ => break,
            }
        }
        let out = client.output();
        for (i, &b) in out.iter().enumerate() {
            if b == b'\n' {
                assert!(i > 0 && out[i - 1] == b'\r', "bare LF emitted");
            }
            if b == b'\r' {
                assert!(out.get(i + 1) == Some(&b'\n'), "bare CR emitted");
            }
        }
        client.clear_output();
    }
});
