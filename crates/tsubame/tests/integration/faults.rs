//! Injected storage faults against the real binary: fsync EIO (strace -e inject) and a full
//! disk (a size-limited tmpfs).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::{RawClient, TestServer, http_get};

fn send(server: &TestServer, body_bytes: usize) -> String {
    let mut client = RawClient::connect(server.smtp);
    client.start_data("a@example.org", "b@example.com");
    let mut data = b"Subject: fault\r\n\r\n".to_vec();
    for line in vec![b'z'; body_bytes].chunks(76) {
        data.extend_from_slice(line);
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b".\r\n");
    client.send(&data);
    let reply = client.reply();
    client.cmd("QUIT");
    reply
}

/// SIGKILLs the server, starts it again, and checks every acknowledged message survived.
fn restart_and_check(server: &mut TestServer, acked: &[String]) {
    server.kill9();
    server.spawn(&[]);
    for id in acked {
        assert!(
            server.stored_content(id).is_some(),
            "acknowledged {id} lost"
        );
    }
}

fn queue_id(reply: &str) -> String {
    reply.trim().rsplit(' ').next().expect("id").to_string()
}

#[test]
fn fsync_eio_gives_451_and_poisons_until_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::configure(dir.path(), &dir.path().join("data"), "");
    // The spool writer is the only caller of fdatasync: the 4th call fails with EIO.
    server.spawn(&[
        "strace",
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=fdatasync",
        "-e",
        "inject=fdatasync:error=EIO:when=4",
    ]);
    let mut acked = Vec::new();
    for _ in 0..3 {
        let reply = send(&server, 500);
        assert!(reply.starts_with("250 "), "{reply}");
        acked.push(queue_id(&reply));
    }
    assert_eq!(
        send(&server, 500),
        "451 4.3.0 Temporary local problem, try again later\r\n"
    );
    // fdatasync works again (when=4 hits once), but nothing is acknowledged after a failure.
    assert!(send(&server, 500).starts_with("451 4.3.0"));
    let (status, body) = http_get(server.http, "/health", None).expect("health");
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    restart_and_check(&mut server, &acked);
    assert!(send(&server, 500).starts_with("250 "), "a restart recovers");
}

struct Tmpfs<'a>(&'a Path);

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0).status();
    }
}

#[test]
fn disk_full_gives_452_and_accepts_again_when_space_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mount = dir.path().join("mnt");
    std::fs::create_dir(&mount).expect("mkdir");
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mount)
        .status()
        .expect("mount");
    assert!(status.success(), "mounting a tmpfs needs root, as CI has");
    let _unmount = Tmpfs(&mount);
    let ballast = mount.join("ballast");
    std::fs::write(&ballast, vec![0u8; 2 << 20]).expect("ballast");
    let mut server = TestServer::configure(
        dir.path(),
        &mount.join("data"),
        "[spool]\nsegment_bytes_max = 262144",
    );
    server.spawn(&[]);
    let mut acked = Vec::new();
    let mut full_reply = None;
    for _ in 0..200 {
        let reply = send(&server, 48 << 10);
        if reply.starts_with("250 ") {
            acked.push(queue_id(&reply));
        } else {
            full_reply = Some(reply);
            break;
        }
    }
    assert_eq!(
        full_reply.as_deref(),
        Some("452 4.3.1 Insufficient system storage, try again later\r\n")
    );
    assert!(!acked.is_empty());
    assert_eq!(
        http_get(server.http, "/health", None).expect("health").0,
        200,
        "ENOSPC must not poison"
    );
    std::fs::remove_file(&ballast).expect("free space");
    std::thread::sleep(Duration::from_millis(100));
    let reply = send(&server, 48 << 10);
    assert!(reply.starts_with("250 "), "{reply}");
    acked.push(queue_id(&reply));
    restart_and_check(&mut server, &acked);
}
