//! Configuration checking from the command line, and the zero-configuration start.

use std::process::Command;
use std::time::Duration;

use crate::harness::{BIN, RawClient, http_get};

fn check(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).expect("write");
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&path)
        .output()
        .expect("run");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn config_check_names_the_bad_key() {
    let (ok, out) = check("[smtp]\nlisten = [\"127.0.0.1:2526\"]\nrecipients_max = 500\n");
    assert!(ok && out.contains("OK"), "{out}");
    let (ok, out) = check("[smtp]\nmax_rcpt = 5\n");
    assert!(!ok && out.contains("max_rcpt"), "{out}");
    let (ok, out) = check("[smtp]\ndata_idle_timeout = \"forever\"\n");
    assert!(!ok && out.contains("smtp.data_idle_timeout"), "{out}");
    let (ok, out) = check("[smtp]\nlisten = [\"nowhere\"]\n");
    assert!(!ok && out.contains("smtp.listen"), "{out}");
    let (ok, out) = check("[http]\nlisten = \"127.0.0.1:8025\"\nport = 1\n");
    assert!(!ok && out.contains("port"), "{out}");
    let (ok, out) = check("this is not toml");
    assert!(!ok, "{out}");

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[spool]\nsegment_bytes_max = 1\n").expect("write");
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("spool.segment_bytes_max"));
}

/// `tsubame serve` with no arguments: ./tsubame-data, SMTP 127.0.0.1:2525, HTTP 127.0.0.1:8025.
#[test]
fn zero_configuration_start_and_sigterm_exit_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let addr = "127.0.0.1:2525".parse().expect("addr");
    let http = "127.0.0.1:8025".parse().expect("addr");
    let mut ready = false;
    for _ in 0..200 {
        if http_get(http, "/health", None).is_ok() {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        ready,
        "default ports did not come up (is something else on 2525/8025?)"
    );
    let mut client = RawClient::connect(addr);
    assert!(client.reply().starts_with("220 "));
    assert!(
        client.cmd("EHLO c").contains("STARTTLS"),
        "self-signed TLS is on by default"
    );
    client.cmd("QUIT");
    assert!(dir.path().join("tsubame-data/spool").is_dir());
    assert!(dir.path().join("tsubame-data/tls/cert.pem").is_file());
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}");
}
