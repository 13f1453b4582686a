//! When a PEM certificate expires: its `notAfter`, read from the DER structure
//! (Certificate → TBSCertificate → Validity) without an X.509 library.

use base64::Engine as _;

/// The first certificate's `notAfter`, Unix ms.
pub fn not_after_ms(pem: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = start + text[start..].find("-----END CERTIFICATE-----")?;
    let b64: String = text[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let (_, cert) = element(&der, 0x30)?;
    let (_, mut tbs) = element(cert, 0x30)?;
    if tbs.first() == Some(&0xA0) {
        tbs = skip(tbs)?; // version
    }
    tbs = skip(tbs)?; // serial number
    tbs = skip(tbs)?; // signature algorithm
    tbs = skip(tbs)?; // issuer
    let (_, validity) = element(tbs, 0x30)?;
    let after_not_before = skip(validity)?;
    let tag = *after_not_before.first()?;
    let (_, time) = element(after_not_before, tag)?;
    parse_time(tag, std::str::from_utf8(time).ok()?)
}

/// The header length and the content of the element at the start of `data` with `tag`.
fn element(data: &[u8], tag: u8) -> Option<(usize, &[u8])> {
    if *data.first()? != tag {
        return None;
    }
    let first = *data.get(1)? as usize;
    let (len, header) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *data.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    Some((header, data.get(header..header + len)?))
}

/// `data` after its first element.
fn skip(data: &[u8]) -> Option<&[u8]> {
    let (header, content) = element(data, *data.first()?)?;
    data.get(header + content.len()..)
}

fn parse_time(tag: u8, text: &str) -> Option<i64> {
    let digits = text.strip_suffix('Z')?;
    let full = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy: i32 = digits[..2].parse().ok()?;
            format!(
                "{}{}",
                if yy >= 50 { 1900 + yy } else { 2000 + yy },
                &digits[2..]
            )
        }
        (0x18, 14) => digits.to_string(),
        _ => return None,
    };
    let n = |r: std::ops::Range<usize>| full.get(r)?.parse::<i8>().ok();
    let date = jiff::civil::date(full.get(..4)?.parse().ok()?, n(4..6)?, n(6..8)?);
    let dt = date.at(n(8..10)?, n(10..12)?, n(12..14)?, 0);
    Some(
        dt.to_zoned(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_millisecond(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_not_after_of_a_real_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["mx.example".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2051, 3, 4);
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        let want = "2051-03-04T00:00:00Z".parse::<jiff::Timestamp>().unwrap();
        assert_eq!(
            super::not_after_ms(pem.as_bytes()),
            Some(want.as_millisecond())
        );
        params.not_after = rcgen::date_time_ymd(2031, 12, 1);
        let pem = params.self_signed(&key).unwrap().pem();
        let want = "2031-12-01T00:00:00Z".parse::<jiff::Timestamp>().unwrap();
        assert_eq!(
            super::not_after_ms(pem.as_bytes()),
            Some(want.as_millisecond())
        );
        assert_eq!(super::not_after_ms(b"not a certificate"), None);
    }
}
