//! A campaign's sending window, such as weekdays 09:00–20:00 in the recipient's zone: the
//! earliest instant at or after a recipient's send time that falls inside it. Days and
//! hours are the recipient's own, across daylight-saving changes.

use jiff::Timestamp;
use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;

use crate::local_time::moment;

/// Days of the week and a daily span `from`..`to` (`from` < `to`, the same day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendWindow {
    pub days: Vec<Weekday>,
    pub from: Time,
    pub to: Time,
}

impl SendWindow {
    /// Monday to Friday, `from`..`to`.
    pub fn weekdays(from: Time, to: Time) -> SendWindow {
        SendWindow {
            days: vec![
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
            ],
            from,
            to,
        }
    }

    /// The earliest instant at or after `at` inside the window in `zone`; `at` itself when
    /// the window has no day (nothing to wait for).
    pub fn earliest(&self, at: Timestamp, zone: &TimeZone) -> Timestamp {
        if self.days.is_empty() || self.from >= self.to {
            return at;
        }
        let mut day = at.to_zoned(zone.clone()).date();
        for _ in 0..8 {
            if self.days.contains(&day.weekday()) {
                let (Some(start), Some(end)) =
                    (moment(day, self.from, zone), moment(day, self.to, zone))
                else {
                    return at;
                };
                if at < start {
                    return start;
                }
                if at < end {
                    return at;
                }
            }
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => return at,
            }
        }
        at
    }
}
