//! A recipient's first possible send time: the schedule in the recipient's zone (contact,
//! else country, else tenant), then the window.

use campaigns::documents::Schedule;
use campaigns::local_time::{LocalSchedule, Passed};
use campaigns::timing::Timing;
use campaigns::window::SendWindow;
use jiff::Timestamp;
use jiff::civil::{date, time};

fn ts(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

#[test]
fn local_time_starts_in_the_zone_furthest_ahead_and_uses_the_recipients_zone() {
    let timing = Timing {
        schedule: Some(Schedule::Local(LocalSchedule {
            date: date(2026, 12, 7),
            time: time(9, 0, 0, 0),
            passed: Passed::AtOnce,
        })),
        window: None,
        tenant_zone: Some("Europe/Paris".into()),
    };
    // 09:00 at UTC+14 is 19:00 UTC the day before.
    assert_eq!(timing.starts_at(), Some(ts("2026-12-06T19:00:00Z")));
    let now = ts("2026-12-06T18:00:00Z");
    // The contact's own zone wins, then its country's, then the tenant's.
    assert_eq!(
        timing.not_before(Some("Asia/Tokyo"), Some("US"), now),
        ts("2026-12-07T00:00:00Z")
    );
    assert_eq!(
        timing.not_before(None, Some("IN"), now),
        ts("2026-12-07T03:30:00Z")
    );
    assert_eq!(
        timing.not_before(None, None, now),
        ts("2026-12-07T08:00:00Z")
    );
    // Already passed for Kiritimati at 20:00 UTC: at once.
    let later = ts("2026-12-06T20:00:00Z");
    assert_eq!(
        timing.not_before(Some("Pacific/Kiritimati"), None, later),
        later
    );
}

#[test]
fn an_instant_then_the_window_in_the_recipients_zone() {
    let timing = Timing {
        // Saturday 2026-12-05 10:00 UTC.
        schedule: Some(Schedule::At(ts("2026-12-05T10:00:00Z"))),
        window: Some(SendWindow::weekdays(time(9, 0, 0, 0), time(20, 0, 0, 0))),
        tenant_zone: None,
    };
    assert_eq!(timing.starts_at(), Some(ts("2026-12-05T10:00:00Z")));
    let now = ts("2026-12-01T00:00:00Z");
    // Monday 09:00 in Tokyo is Monday 00:00 UTC; in New York, 14:00 UTC.
    assert_eq!(
        timing.not_before(Some("Asia/Tokyo"), None, now),
        ts("2026-12-07T00:00:00Z")
    );
    assert_eq!(
        timing.not_before(None, Some("US"), now),
        ts("2026-12-07T14:00:00Z")
    );
    // No schedule: now, or the window's next opening.
    let plain = Timing::default();
    assert_eq!(plain.starts_at(), None);
    assert_eq!(plain.not_before(None, None, now), now);
}
