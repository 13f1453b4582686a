//! Dates as RFC 5322 writes them, for trace headers and generated messages.

/// `Sun, 22 Nov 2026 05:08:55 +0000`.
pub fn rfc5322_date(unix_seconds: i64) -> String {
    let mut out = String::with_capacity(31);
    push_rfc5322_date(&mut out, unix_seconds);
    out
}

/// Appends [`rfc5322_date`]'s text to `out` without formatting machinery: the ingress
/// writes one per message.
pub fn push_rfc5322_date(out: &mut String, unix_seconds: i64) {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let two = |out: &mut String, n: i64| {
        out.push(char::from(b'0' + (n / 10 % 10) as u8));
        out.push(char::from(b'0' + (n % 10) as u8));
    };
    out.push_str(WEEKDAYS[days.rem_euclid(7) as usize]);
    out.push_str(", ");
    two(out, day);
    out.push(' ');
    out.push_str(MONTHS[(month - 1) as usize]);
    out.push(' ');
    if (0..=9999).contains(&year) {
        two(out, year / 100);
        two(out, year % 100);
    } else {
        out.push_str(&year.to_string());
    }
    out.push(' ');
    two(out, secs / 3600);
    out.push(':');
    two(out, secs % 3600 / 60);
    out.push(':');
    two(out, secs % 60);
    out.push_str(" +0000");
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_795_324_135),
            "Sun, 22 Nov 2026 05:08:55 +0000"
        );
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(rfc5322_date(-1), "Wed, 31 Dec 1969 23:59:59 +0000");
        assert_eq!(
            rfc5322_date(253_402_300_800),
            "Sat, 01 Jan 10000 00:00:00 +0000"
        );
    }
}
