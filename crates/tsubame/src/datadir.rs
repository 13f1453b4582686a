//! The data directory: its lock, the admin token and the admin URL file that the CLI reads.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Paths inside the data directory.
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn new(root: PathBuf) -> Self {
        DataDir { root }
    }
    pub fn spool(&self) -> PathBuf {
        self.root.join("spool")
    }
    pub fn tls(&self) -> PathBuf {
        self.root.join("tls")
    }
    /// The control plane database (tenants, API keys).
    pub fn control(&self) -> PathBuf {
        self.root.join("control.db")
    }

    /// Written by `serve` when the control plane is a shared PostgreSQL (its address, mode
    /// 0600), so the command line works on the same database.
    pub fn control_postgres(&self) -> PathBuf {
        self.root.join("control.postgres")
    }

    pub fn users(&self) -> PathBuf {
        self.root.join("users")
    }
    pub fn token(&self) -> PathBuf {
        self.root.join("admin.token")
    }
    pub fn admin_url(&self) -> PathBuf {
        self.root.join("admin.url")
    }

    /// Creates the directory (mode 0700) if needed and takes an exclusive lock for the
    /// process lifetime, so two servers can never share one spool.
    pub fn lock(&self) -> anyhow::Result<File> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .with_context(|| format!("creating data directory {}", self.root.display()))?;
        let path = self.root.join("lock");
        let file = File::create(&path).with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked != 0 {
            bail!(
                "data directory {} is in use by another tsubame process",
                self.root.display()
            );
        }
        Ok(file)
    }

    /// Returns the admin token, creating a random one (256 bits, mode 0600) on first start.
    pub fn ensure_token(&self) -> anyhow::Result<String> {
        let path = self.token();
        if let Ok(token) = std::fs::read_to_string(&path) {
            let token = token.trim().to_string();
            if token.len() >= 32 {
                return Ok(token);
            }
        }
        let bytes: [u8; 32] = rand::random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        smtp_server::tls::write_private(&path, token.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(token)
    }

    /// The secret that signs return-path (VERP) addresses, made on first use. Changing it
    /// makes bounces to addresses signed before unrecognisable.
    pub fn ensure_bounce_key(&self) -> anyhow::Result<[u8; 32]> {
        let path = self.root.join("bounce.key");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let bytes: Vec<u8> = (0..text.trim().len() / 2)
                .filter_map(|i| u8::from_str_radix(text.trim().get(2 * i..2 * i + 2)?, 16).ok())
                .collect();
            if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
                return Ok(key);
            }
        }
        let key: [u8; 32] = rand::random();
        let text: String = key.iter().map(|b| format!("{b:02x}")).collect();
        smtp_server::tls::write_private(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(key)
    }

    /// Reads what the CLI needs to reach the running server.
    pub fn admin_endpoint(&self) -> anyhow::Result<(String, String)> {
        let url = read_trimmed(&self.admin_url()).with_context(|| {
            format!(
                "is the server running with --data-dir {}?",
                self.root.display()
            )
        })?;
        let token = read_trimmed(&self.token())?;
        Ok((url, token))
    }
}

fn read_trimmed(path: &Path) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_string())
}
