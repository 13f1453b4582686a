//! DKIM for tenants' sending domains: key pairs made with aws-lc-rs (RSA-2048 by default,
//! Ed25519 on request), the DNS records a tenant publishes (DKIM, SPF, a DMARC suggestion),
//! and signing with mail-auth. Keys are PKCS#8 DER; the public part is kept in the form the
//! DKIM record wants (SubjectPublicKeyInfo for RSA, the raw 32 bytes for Ed25519, RFC 8463).

pub mod published;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;

/// Which signature algorithm a domain's key uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rsa2048,
    Ed25519,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rsa2048 => "rsa",
            Algorithm::Ed25519 => "ed25519",
        }
    }

    pub fn parse(text: &str) -> Option<Algorithm> {
        match text {
            "rsa" | "rsa2048" => Some(Algorithm::Rsa2048),
            "ed25519" => Some(Algorithm::Ed25519),
            _ => None,
        }
    }
}

/// Why a key could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error("the stored key is unusable: {0}")]
    Key(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// A fresh key pair.
#[derive(Clone)]
pub struct KeyPair {
    pub algorithm: Algorithm,
    /// PKCS#8 DER; secret.
    pub private_pkcs8: Vec<u8>,
    /// Base64 of the public key as the DKIM record's `p=` wants it.
    pub public_b64: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("KeyPair")
            .field("algorithm", &self.algorithm)
            .field("public_b64", &self.public_b64)
            .finish_non_exhaustive()
    }
}

/// Makes a key pair.
pub fn generate(algorithm: Algorithm) -> Result<KeyPair, DkimError> {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    match algorithm {
        Algorithm::Rsa2048 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|e| DkimError::Generate(e.to_string()))?;
            let private = AsDer::<Pkcs8V1Der>::as_der(&pair)
                .map_err(|e| DkimError::Generate(e.to_string()))?;
            let public = pair
                .public_key()
                .as_der()
                .map_err(|e| DkimError::Generate(e.to_string()))?;
            Ok(KeyPair {
                algorithm,
                private_pkcs8: private.as_ref().to_vec(),
                public_b64: b64(public.as_ref()),
            })
        }
        Algorithm::Ed25519 => {
            let pair = aws_lc_rs::signature::Ed25519KeyPair::generate()
                .map_err(|e| DkimError::Generate(e.to_string()))?;
            let private = pair
                .to_pkcs8()
                .map_err(|e| DkimError::Generate(e.to_string()))?;
            Ok(KeyPair {
                algorithm,
                private_pkcs8: private.as_ref().to_vec(),
                public_b64: b64(pair.public_key().as_ref()),
            })
        }
    }
}

/// One DNS record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub name: String,
    pub kind: &'static str,
    pub value: String,
    /// What it is for, for the person publishing it.
    pub purpose: &'static str,
}

/// A selector naming the key's month (`ts202611`), so a rotated key gets a new one.
pub fn default_selector() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil from days (Howard Hinnant's algorithm), for the year and month only.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("ts{year}{month:02}")
}

/// The return-path (bounce) host name of a sending domain.
pub fn bounce_domain(domain: &str) -> String {
    format!("bounce.{domain}")
}

/// The host a sending domain's open and click links use (a CNAME to this platform).
pub fn tracking_domain(domain: &str) -> String {
    format!("track.{domain}")
}

/// The records a sending domain needs: its DKIM key, SPF allowing this platform
/// (`spf_mechanism`, e.g. `include:_spf.mail.example.net` or `a:mx.example.net`), a DMARC
/// policy to start from (`p=none`, reports to `dmarc_rua`), and the return-path domain whose
/// MX is this platform (`bounce_host`), where bounces come back.
pub fn records(
    domain: &str,
    selector: &str,
    algorithm: Algorithm,
    public_b64: &str,
    spf_mechanism: &str,
    dmarc_rua: Option<&str>,
    bounce_host: &str,
) -> Vec<DnsRecord> {
    let mut dmarc = "v=DMARC1; p=none".to_string();
    if let Some(rua) = dmarc_rua {
        dmarc.push_str("; rua=mailto:");
        dmarc.push_str(rua);
    }
    vec![
        DnsRecord {
            name: format!("{selector}._domainkey.{domain}"),
            kind: "TXT",
            value: format!("v=DKIM1; k={}; p={public_b64}", algorithm.name()),
            purpose: "DKIM public key: receivers verify our signatures with it",
        },
        DnsRecord {
            name: domain.to_string(),
            kind: "TXT",
            value: format!("v=spf1 {spf_mechanism} ~all"),
            purpose: "SPF: allows this platform to send for the domain (merge with an existing SPF record)",
        },
        DnsRecord {
            name: format!("_dmarc.{domain}"),
            kind: "TXT",
            value: dmarc,
            purpose: "DMARC: start with p=none, tighten once reports look right",
        },
        DnsRecord {
            name: bounce_domain(domain),
            kind: "MX",
            value: format!("10 {bounce_host}."),
            purpose: "return path: bounces for this domain's mail come back to this platform",
        },
        DnsRecord {
            name: bounce_domain(domain),
            kind: "TXT",
            value: format!("v=spf1 {spf_mechanism} ~all"),
            purpose: "SPF for the return path, which receivers check first",
        },
        DnsRecord {
            name: tracking_domain(domain),
            kind: "CNAME",
            value: format!("{bounce_host}."),
            purpose: "tracking host: the open and click links of this domain's campaigns point here",
        },
    ]
}

/// Headers signed when present (RFC 6376 §5.4.1 recommendations).
const SIGNED_HEADERS: &[&str] = &[
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "In-Reply-To",
    "References",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// A domain's key, parsed once (parsing and checking an RSA key costs more than a
/// signature), ready to sign any number of messages from any thread.
pub struct Signer {
    inner: SignerKey,
}

enum SignerKey {
    Rsa(DkimSigner<RsaKey<Sha256>, mail_auth::dkim::Done>),
    Ed25519(DkimSigner<Ed25519Key, mail_auth::dkim::Done>),
}

impl Signer {
    pub fn new(
        domain: &str,
        selector: &str,
        algorithm: Algorithm,
        private_pkcs8: &[u8],
    ) -> Result<Signer, DkimError> {
        let inner = match algorithm {
            Algorithm::Rsa2048 => {
                let der = rustls::pki_types::PrivateKeyDer::Pkcs8(
                    rustls::pki_types::PrivatePkcs8KeyDer::from(private_pkcs8),
                );
                let key = RsaKey::<Sha256>::from_key_der(der)
                    .map_err(|e| DkimError::Key(e.to_string()))?;
                SignerKey::Rsa(
                    DkimSigner::from_key(key)
                        .domain(domain)
                        .selector(selector)
                        .headers(SIGNED_HEADERS.iter().copied()),
                )
            }
            Algorithm::Ed25519 => {
                let key = Ed25519Key::from_pkcs8_der(private_pkcs8)
                    .map_err(|e| DkimError::Key(e.to_string()))?;
                SignerKey::Ed25519(
                    DkimSigner::from_key(key)
                        .domain(domain)
                        .selector(selector)
                        .headers(SIGNED_HEADERS.iter().copied()),
                )
            }
        };
        Ok(Signer { inner })
    }

    /// The `DKIM-Signature: ...\r\n` header for `message`, to put in front of it.
    pub fn sign(&self, message: &[u8]) -> Result<String, DkimError> {
        self.sign_parts(&[message])
    }

    /// Like [`Signer::sign`], for a message held in pieces without joining them first:
    /// every piece but the last is whole header fields (added in front of received
    /// content); the last holds the remaining fields and the body.
    pub fn sign_parts(&self, parts: &[&[u8]]) -> Result<String, DkimError> {
        let chunks = parts.iter().copied();
        let signature = match &self.inner {
            SignerKey::Rsa(signer) => signer.sign_chained(chunks),
            SignerKey::Ed25519(signer) => signer.sign_chained(chunks),
        }
        .map_err(|e| DkimError::Sign(e.to_string()))?;
        Ok(signature.to_header())
    }
}

/// Signs one message with a key parsed for the occasion (see [`Signer`] for many).
pub fn sign(
    message: &[u8],
    domain: &str,
    selector: &str,
    algorithm: Algorithm,
    private_pkcs8: &[u8],
) -> Result<String, DkimError> {
    Signer::new(domain, selector, algorithm, private_pkcs8)?.sign(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_algorithms_sign() {
        let message = b"From: a@acme.test\r\nTo: b@x.test\r\nSubject: hi\r\n\r\nbody\r\n";
        for algorithm in [Algorithm::Rsa2048, Algorithm::Ed25519] {
            let pair = generate(algorithm).expect("generate");
            let header =
                sign(message, "acme.test", "s1", algorithm, &pair.private_pkcs8).expect("sign");
            assert!(header.starts_with("DKIM-Signature: v=1; a="), "{header}");
            assert!(
                header.contains("d=acme.test") && header.contains("s=s1"),
                "{header}"
            );
            assert!(header.ends_with("\r\n"));
        }
    }

    #[test]
    fn a_message_in_pieces_signs_as_the_whole() {
        let pair = generate(Algorithm::Ed25519).expect("generate");
        let signer =
            Signer::new("acme.test", "s1", Algorithm::Ed25519, &pair.private_pkcs8).expect("key");
        let whole: &[u8] =
            b"Message-ID: <1@mx.test>\r\nFrom: a@acme.test\r\nSubject: hi\r\n\r\nbody\r\n";
        // Whole header fields in front of the rest, as the SMTP ingress holds them.
        let pieces: [&[u8]; 3] = [&whole[..25], &whole[25..44], &whole[44..]];
        assert!(pieces[1].ends_with(b"\r\n") && pieces[2].starts_with(b"Subject"));
        // Ed25519 is deterministic: equal unless the clock ticked between the two (t=).
        let same = (0..3).any(|_| {
            signer.sign(whole).expect("sign") == signer.sign_parts(&pieces).expect("sign")
        });
        assert!(same);
    }

    #[test]
    fn records_name_what_to_publish() {
        let records = records(
            "acme.test",
            "s1",
            Algorithm::Ed25519,
            "PUB",
            "a:mx.example.net",
            Some("dmarc@acme.test"),
            "mx.example.net",
        );
        assert_eq!(records[0].name, "s1._domainkey.acme.test");
        assert_eq!(records[0].value, "v=DKIM1; k=ed25519; p=PUB");
        assert_eq!(records[1].value, "v=spf1 a:mx.example.net ~all");
        assert_eq!(
            records[2].value,
            "v=DMARC1; p=none; rua=mailto:dmarc@acme.test"
        );
        assert_eq!(
            (
                records[3].name.as_str(),
                records[3].kind,
                records[3].value.as_str()
            ),
            ("bounce.acme.test", "MX", "10 mx.example.net.")
        );
    }
}
