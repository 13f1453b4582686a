//! Server TLS: loads the configured certificate, or makes and keeps a self-signed one so
//! that STARTTLS works from the first start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a PEM file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A PEM file did not hold a usable certificate or key.
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    /// Generating the self-signed certificate failed.
    #[error("generating a self-signed certificate: {0}")]
    Generate(String),
    /// rustls refused the certificate/key pair.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Where the certificate and key come from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// Operator-provided PEM files.
    Files { cert: PathBuf, key: PathBuf },
    /// Self-signed, generated on first start into this directory and reused afterwards.
    SelfSigned { dir: PathBuf },
}

/// Builds the rustls server configuration.
pub fn server_config(
    source: &TlsSource,
    hostname: &str,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let (cert_path, key_path) = match source {
        TlsSource::Files { cert, key } => (cert.clone(), key.clone()),
        TlsSource::SelfSigned { dir } => ensure_self_signed(dir, hostname)?,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| TlsError::Pem {
            path: cert_path.clone(),
            reason: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert_path.clone(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: cert_path,
            reason: "no certificate found".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| TlsError::Pem {
        path: key_path.clone(),
        reason: e.to_string(),
    })?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// How long a generated certificate is valid. Clients that check dates at all would refuse
/// the rcgen default (1975 to 4096) as absurd, and a year is what public CAs issue.
const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(365 * 86_400);

/// A generated certificate is replaced at start-up when it has less than this left.
const SELF_SIGNED_RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// The file beside a generated certificate that records the host name it was made for, so
/// a changed `hostname` gets a new certificate.
const SELF_SIGNED_MARKER: &str = "cert.hostname";

/// The generated certificate and key, made anew when missing, made for another host name,
/// or near expiry (judged by the certificate file's age).
fn ensure_self_signed(dir: &Path, hostname: &str) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    let marker_path = dir.join(SELF_SIGNED_MARKER);
    if cert_path.exists()
        && key_path.exists()
        && self_signed_current(&cert_path, &marker_path, hostname)
    {
        return Ok((cert_path, key_path));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let generated = self_signed(hostname, SystemTime::now())?;
    write_private(&key_path, generated.signing_key.serialize_pem().as_bytes())
        .map_err(io(&key_path))?;
    write_private(&cert_path, generated.cert.pem().as_bytes()).map_err(io(&cert_path))?;
    write_private(&marker_path, hostname.as_bytes()).map_err(io(&marker_path))?;
    tracing::info!(cert = %cert_path.display(), hostname, "generated a self-signed TLS certificate");
    Ok((cert_path, key_path))
}

fn self_signed_current(cert_path: &Path, marker_path: &Path, hostname: &str) -> bool {
    let made_for = std::fs::read_to_string(marker_path).unwrap_or_default();
    let age = std::fs::metadata(cert_path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    made_for == hostname
        && age.is_some_and(|age| age + SELF_SIGNED_RENEW_BEFORE < SELF_SIGNED_VALIDITY)
}

/// A self-signed certificate naming `hostname` (subject CN and DNS name) and localhost,
/// valid from a day before `now` (clocks differ) for [`SELF_SIGNED_VALIDITY`].
fn self_signed(
    hostname: &str,
    now: SystemTime,
) -> Result<rcgen::CertifiedKey<rcgen::KeyPair>, TlsError> {
    let failed = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let mut names = vec![hostname.to_string()];
    if hostname != "localhost" {
        names.push("localhost".to_string());
    }
    let mut params = rcgen::CertificateParams::new(names).map_err(failed)?;
    let mut subject = rcgen::DistinguishedName::new();
    subject.push(rcgen::DnType::CommonName, hostname);
    params.distinguished_name = subject;
    let unix = |t: SystemTime| {
        let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
        time::OffsetDateTime::from_unix_timestamp(secs)
            .map_err(|e| TlsError::Generate(e.to_string()))
    };
    params.not_before = unix(now - Duration::from_secs(86_400))?;
    params.not_after = unix(now + SELF_SIGNED_VALIDITY)?;
    let signing_key = rcgen::KeyPair::generate().map_err(failed)?;
    let cert = params.self_signed(&signing_key).map_err(failed)?;
    Ok(rcgen::CertifiedKey { cert, signing_key })
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
