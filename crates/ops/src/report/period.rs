//! Report periods (UTC): the last one due at a time, its label and its span.

use jiff::civil::Date;
use jiff::{Timestamp, tz::TimeZone};

use crate::config::ReportTimes;

const DAY: i64 = 86_400_000;

/// A period a report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub kind: &'static str,
    pub label: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

fn date_of(ms: i64) -> Date {
    Timestamp::from_millisecond(ms)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(TimeZone::UTC)
        .date()
}

fn midnight(d: Date) -> i64 {
    d.to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(0)
}

/// The daily report due last at or before `now_ms` (sent at `minute` past midnight): it
/// covers the 24 hours before.
pub fn daily(now_ms: i64, minute: u32) -> Span {
    let mut at = midnight(date_of(now_ms)) + i64::from(minute) * 60_000;
    if at > now_ms {
        at -= DAY;
    }
    Span {
        kind: "daily",
        label: date_of(at - DAY).to_string(),
        from_ms: at - DAY,
        to_ms: at,
    }
}

/// The weekly report due last (on `weekday`, 0 = Monday, at `minute`): the 7 days before,
/// labelled by the ISO week they start in.
pub fn weekly(now_ms: i64, weekday: u8, minute: u32) -> Span {
    let today = date_of(now_ms);
    let back =
        (i64::from(today.weekday().to_monday_zero_offset()) - i64::from(weekday)).rem_euclid(7);
    let mut at = midnight(today) - back * DAY + i64::from(minute) * 60_000;
    if at > now_ms {
        at -= 7 * DAY;
    }
    let from = at - 7 * DAY;
    let week = date_of(from).iso_week_date();
    Span {
        kind: "weekly",
        label: format!("{}-W{:02}", week.year(), week.week()),
        from_ms: from,
        to_ms: at,
    }
}

/// The monthly report due last (the 1st at 00:00): the month before.
pub fn monthly(now_ms: i64) -> Span {
    let today = date_of(now_ms);
    let first = today.first_of_month();
    let previous = first.yesterday().unwrap_or(first).first_of_month();
    Span {
        kind: "monthly",
        label: format!("{}-{:02}", previous.year(), previous.month()),
        from_ms: midnight(previous),
        to_ms: midnight(first),
    }
}

/// Every configured report's last due period.
pub fn due(times: &ReportTimes, now_ms: i64) -> Vec<Span> {
    let mut out = Vec::new();
    if let Some(m) = times.daily {
        out.push(daily(now_ms, m));
    }
    if let Some((d, m)) = times.weekly {
        out.push(weekly(now_ms, d, m));
    }
    if times.monthly {
        out.push(monthly(now_ms));
    }
    out
}

/// The span of a report asked for by hand: the period so far, ending now.
pub fn so_far(kind: &str, now_ms: i64) -> Option<Span> {
    let today = midnight(date_of(now_ms));
    let (from, label) = match kind {
        "daily" => (today, date_of(now_ms).to_string()),
        "weekly" => {
            let back = i64::from(date_of(now_ms).weekday().to_monday_zero_offset());
            let from = today - back * DAY;
            let week = date_of(from).iso_week_date();
            (from, format!("{}-W{:02}", week.year(), week.week()))
        }
        "monthly" => {
            let first = date_of(now_ms).first_of_month();
            (
                midnight(first),
                format!("{}-{:02}", first.year(), first.month()),
            )
        }
        _ => return None,
    };
    let kind = match kind {
        "daily" => "daily",
        "weekly" => "weekly",
        _ => "monthly",
    };
    Some(Span {
        kind,
        label,
        from_ms: from,
        to_ms: now_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn periods() {
        // Friday 2026-12-04 16:00 UTC.
        let now = at("2026-12-04T16:00:00Z");
        let d = daily(now, 8 * 60);
        assert_eq!(d.label, "2026-12-03");
        assert_eq!(d.to_ms, at("2026-12-04T08:00:00Z"));
        let d = daily(now, 17 * 60);
        assert_eq!(d.label, "2026-12-02");
        let w = weekly(now, 0, 0);
        assert_eq!(
            (w.label.as_str(), w.from_ms, w.to_ms),
            (
                "2026-W48",
                at("2026-11-23T00:00:00Z"),
                at("2026-11-30T00:00:00Z")
            )
        );
        let w = weekly(at("2026-12-07T00:05:00Z"), 0, 0);
        assert_eq!(w.label, "2026-W49");
        let m = monthly(now);
        assert_eq!(
            (m.label.as_str(), m.from_ms, m.to_ms),
            (
                "2026-11",
                at("2026-11-01T00:00:00Z"),
                at("2026-12-01T00:00:00Z")
            )
        );
        assert_eq!(monthly(at("2027-01-01T00:00:01Z")).label, "2026-12");
        assert_eq!(so_far("weekly", now).unwrap().label, "2026-W49");
    }
}
