//! SIGTERM: stop accepting, let transactions in flight finish, exit 0, lose nothing.

use std::time::Duration;

use crate::harness::{RawClient, TestServer};

#[test]
fn sigterm_finishes_transactions_in_flight() {
    let mut server = TestServer::start("");
    let mut idle = RawClient::connect(server.smtp);
    idle.reply();
    idle.cmd("EHLO idle");
    let mut busy = RawClient::connect(server.smtp);
    busy.start_data("a@example.org", "b@example.com");
    busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n");

    let pid = server.pid();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        idle.reply().starts_with("421 4.3.2"),
        "idle session is told to go"
    );
    assert!(
        std::net::TcpStream::connect(server.smtp).is_err(),
        "no new connections after SIGTERM"
    );

    busy.send(b"second half\r\n.\r\n");
    let reply = busy.reply();
    assert!(reply.starts_with("250 2.0.0 Ok: queued as"), "{reply}");
    let id = reply.trim().rsplit(' ').next().expect("id").to_string();
    let status = server.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");

    server.spawn(&[]);
    let stored = server
        .stored_content(&id)
        .expect("message survives the restart");
    assert!(stored.ends_with(b"first half\r\nsecond half\r\n"));
}
