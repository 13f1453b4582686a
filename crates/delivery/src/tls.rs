//! Client TLS for delivery. Opportunistic STARTTLS must not verify certificates (most MX
//! certificates would fail and the alternative is clear text); `Verify` checks them against
//! the web PKI roots.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// How a destination's TLS is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Never start TLS.
    Disabled,
    /// Use STARTTLS when offered, without checking the certificate; fall back to clear text
    /// when it is not offered or refused.
    Opportunistic,
    /// STARTTLS must succeed (certificate not checked), else the delivery fails (4.7.x).
    Required,
    /// STARTTLS must succeed with a certificate valid for the host name (web PKI roots).
    Verify,
}

/// The two client configurations, built once.
#[derive(Debug, Clone)]
pub struct TlsClients {
    /// Accepts any certificate (still checks handshake signatures).
    pub unverified: Arc<rustls::ClientConfig>,
    /// Web PKI verification.
    pub verified: Arc<rustls::ClientConfig>,
}

impl TlsClients {
    /// Builds both configurations with the process's crypto provider (aws-lc-rs).
    pub fn new() -> Self {
        let provider = CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        let unverified = rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth();
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let verified = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsClients {
            unverified: Arc::new(unverified),
            verified: Arc::new(verified),
        }
    }

    /// The configuration for `policy`.
    pub fn for_policy(&self, policy: TlsPolicy) -> Arc<rustls::ClientConfig> {
        match policy {
            TlsPolicy::Verify => self.verified.clone(),
            _ => self.unverified.clone(),
        }
    }
}

impl Default for TlsClients {
    fn default() -> Self {
        TlsClients::new()
    }
}

/// Certificate checks off, handshake signature checks on: protects against passive
/// eavesdropping, which is what opportunistic TLS promises.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
