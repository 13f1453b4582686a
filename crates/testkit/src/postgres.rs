//! A throwaway PostgreSQL server for tests: Debian's `postgresql` binaries (`initdb`,
//! `pg_ctl`) run as the `postgres` system user (they refuse root) on a fresh data
//! directory, listening on 127.0.0.1 at a free port with `fsync` and synchronous commit on
//! (as production would). Stopped (immediate) and removed when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian installs the server binaries of the newest major version present.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let major: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    pub major: u32,
}

fn as_postgres(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    let mut command = if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    };
    command
        .args(args)
        .current_dir("/")
        .output()
        .unwrap_or_else(|e| {
            panic!("{tool}: {e} (Debian package postgresql; scripts/test installs it)")
        })
}

impl PgServer {
    /// Starts a server with one database, `tsubame`, owned by the user `tsubame` (trust
    /// authentication on loopback: tests only).
    pub fn start() -> PgServer {
        let bin = bin_dir().expect("PostgreSQL server binaries (Debian package postgresql)");
        let major: u32 = bin
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "tsubame-pg-{}-{}",
            std::process::id(),
            crate::sink::free_port("127.0.0.1")
        ));
        std::fs::create_dir_all(&dir).expect("pg dir");
        if unsafe { libc::geteuid() } == 0 {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(status.success(), "chown the PostgreSQL directory");
        }
        let data = dir.join("data");
        let data_s = data.to_str().expect("utf8 path").to_string();
        let out = as_postgres(
            &bin,
            "initdb",
            &[
                "-D",
                &data_s,
                "-U",
                "tsubame",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for _ in 0..5 {
            let port = crate::sink::free_port("127.0.0.1");
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c max_connections=200",
                dir.display()
            );
            let log = dir.join("server.log");
            let out = as_postgres(
                &bin,
                "pg_ctl",
                &[
                    "-D",
                    &data_s,
                    "-l",
                    log.to_str().expect("utf8"),
                    "-o",
                    &options,
                    "-w",
                    "-t",
                    "30",
                    "start",
                ],
            );
            if out.status.success() {
                let server = PgServer {
                    dir,
                    bin,
                    port,
                    major,
                };
                server.psql("postgres", "CREATE DATABASE tsubame");
                return server;
            }
            // The port was taken meanwhile: try another.
        }
        panic!(
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`: recovery
    /// runs at the next start).
    pub fn stop(&self) {
        let data = self.dir.join("data");
        let out = as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("utf8"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server again on its port after [`PgServer::stop`].
    pub fn restart(&self) {
        let data = self.dir.join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        let out = as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("utf8"),
                "-l",
                log.to_str().expect("utf8"),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The connection URL of the `tsubame` database.
    pub fn url(&self) -> String {
        format!("postgres://tsubame@127.0.0.1:{}/tsubame", self.port)
    }

    /// Runs SQL with psql; its output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "tsubame",
                "-d",
                database,
                "-Atqc",
                sql,
            ])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or(""),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_throwaway_server_answers_and_goes_away() {
        let pg = super::PgServer::start();
        assert_eq!(pg.psql("tsubame", "SELECT 40 + 2").trim(), "42");
        assert_eq!(pg.psql("tsubame", "SHOW fsync").trim(), "on");
        let dir = pg.dir.clone();
        drop(pg);
        assert!(!dir.exists());
    }
}
