//! "At 09:00 in each recipient's time zone": the instant a recipient gets a campaign, from
//! the campaign's local date and time and the recipient's zone, correct across daylight-
//! saving changes. A wall time that does not exist that day (skipped by a spring-forward
//! gap) is taken as the same time after the gap (02:30 becomes 03:30); one that happens
//! twice (a fall-back fold) is the first. A recipient whose moment has passed when the
//! campaign is expanded is sent at once or the next day at that time, as the campaign says.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

/// What happens to a recipient whose moment has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passed {
    /// Send now.
    AtOnce,
    /// Send at the same local time on the next day it is still ahead.
    NextDay,
}

/// A campaign's local send time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalSchedule {
    pub date: Date,
    pub time: Time,
    pub passed: Passed,
}

/// `date` at `time` in `zone` (gaps resolved later, folds earlier); `None` only outside
/// the supported range of times.
pub fn moment(date: Date, time: Time, zone: &TimeZone) -> Option<Timestamp> {
    date.to_datetime(time)
        .to_zoned(zone.clone())
        .ok()
        .map(|z| z.timestamp())
}

/// The instant a recipient in `zone` gets the campaign, as seen at `now`.
pub fn send_instant(schedule: &LocalSchedule, zone: &TimeZone, now: Timestamp) -> Timestamp {
    let Some(at) = moment(schedule.date, schedule.time, zone) else {
        return now;
    };
    if at >= now {
        return at;
    }
    match schedule.passed {
        Passed::AtOnce => now,
        Passed::NextDay => {
            // The recipient's today at that time, or tomorrow if that has passed too.
            let today = now.to_zoned(zone.clone()).date();
            let mut day = today;
            for _ in 0..3 {
                match moment(day, schedule.time, zone) {
                    Some(t) if t >= now => return t,
                    _ => match day.tomorrow() {
                        Ok(next) => day = next,
                        Err(_) => break,
                    },
                }
            }
            now
        }
    }
}
