//! Whether what a domain publishes matches the records it was given: the judgement only
//! (the caller looks the TXT strings up), shared by `tsubame domain check` and the console.

use crate::DnsRecord;

/// The state of one record in DNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// As it should be.
    Ok,
    /// Nothing (of this kind) at the name.
    Missing,
    /// Something else at the name: an old key, an SPF record without our mechanism.
    Different,
}

impl Published {
    pub fn as_str(self) -> &'static str {
        match self {
            Published::Ok => "ok",
            Published::Missing => "missing",
            Published::Different => "different",
        }
    }
}

/// Judges the TXT strings found at `record.name` against `record` (DKIM: the public key;
/// DMARC: any policy; SPF: our mechanism in the domain's SPF record).
pub fn judge(record: &DnsRecord, found: &[String], public_key_b64: &str) -> Published {
    if record.name.contains("._domainkey.") {
        let key = format!("p={public_key_b64}");
        if found.iter().any(|t| t.replace(' ', "").contains(&key)) {
            Published::Ok
        } else if found.is_empty() {
            Published::Missing
        } else {
            Published::Different
        }
    } else if record.name.starts_with("_dmarc.") {
        if found.iter().any(|t| t.starts_with("v=DMARC1")) {
            Published::Ok
        } else {
            Published::Missing
        }
    } else {
        let spf: Vec<&String> = found.iter().filter(|t| t.starts_with("v=spf1")).collect();
        let mechanism = record.value.split_whitespace().nth(1).unwrap_or_default();
        if spf
            .iter()
            .any(|t| t.split_whitespace().any(|m| m == mechanism))
        {
            Published::Ok
        } else if spf.is_empty() {
            Published::Missing
        } else {
            Published::Different
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, value: &str) -> DnsRecord {
        DnsRecord {
            name: name.into(),
            kind: "TXT",
            value: value.into(),
            purpose: "",
        }
    }

    #[test]
    fn each_kind_is_judged_by_what_matters() {
        let dkim = record("s1._domainkey.acme.example", "v=DKIM1; k=rsa; p=ABC");
        assert_eq!(
            judge(&dkim, &["v=DKIM1; k=rsa; p=A BC".into()], "ABC"),
            Published::Ok
        );
        assert_eq!(
            judge(&dkim, &["v=DKIM1; p=OLD".into()], "ABC"),
            Published::Different
        );
        assert_eq!(judge(&dkim, &[], "ABC"), Published::Missing);
        let spf = record("acme.example", "v=spf1 a:mx.example ~all");
        assert_eq!(
            judge(&spf, &["v=spf1 include:x a:mx.example -all".into()], ""),
            Published::Ok
        );
        assert_eq!(
            judge(&spf, &["v=spf1 -all".into()], ""),
            Published::Different
        );
        assert_eq!(
            judge(&spf, &["google-site-verification=1".into()], ""),
            Published::Missing
        );
        let dmarc = record("_dmarc.acme.example", "v=DMARC1; p=none");
        assert_eq!(
            judge(&dmarc, &["v=DMARC1; p=reject".into()], ""),
            Published::Ok
        );
        assert_eq!(judge(&dmarc, &[], ""), Published::Missing);
    }
}
