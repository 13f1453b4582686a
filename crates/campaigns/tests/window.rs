//! Sending windows in the recipient's zone: after hours and weekends wait for the next
//! opening, inside goes at once, and the hours stay local across a DST switch.

use campaigns::window::SendWindow;
use jiff::Timestamp;
use jiff::civil::time;
use jiff::tz::TimeZone;

fn utc(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn weekdays_nine_to_eight_in_the_recipients_zone() {
    let window = SendWindow::weekdays(time(9, 0, 0, 0), time(20, 0, 0, 0));
    let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
    // Friday 2026-12-04 10:00 JST (01:00 UTC): inside.
    let inside = utc("2026-12-04T01:00:00Z");
    assert_eq!(window.earliest(inside, &tokyo), inside);
    // Friday 21:00 JST: Monday 09:00 JST.
    assert_eq!(
        window.earliest(utc("2026-12-04T12:00:00Z"), &tokyo),
        utc("2026-12-07T00:00:00Z")
    );
    // Saturday noon: Monday 09:00. Monday 07:00: Monday 09:00.
    assert_eq!(
        window.earliest(utc("2026-12-05T03:00:00Z"), &tokyo),
        utc("2026-12-07T00:00:00Z")
    );
    assert_eq!(
        window.earliest(utc("2026-12-06T22:00:00Z"), &tokyo),
        utc("2026-12-07T00:00:00Z")
    );
    // The same instant is inside for New York (Thursday 20:00 EST is the end: not inside,
    // so Friday 09:00 EST).
    let ny = TimeZone::get("America/New_York").unwrap();
    assert_eq!(
        window.earliest(utc("2026-12-04T01:00:00Z"), &ny),
        utc("2026-12-04T14:00:00Z")
    );
}

#[test]
fn local_hours_hold_across_a_switch() {
    // Friday 2026-03-06 21:00 EST: the next opening is Monday 2026-03-09 09:00 EDT.
    let window = SendWindow::weekdays(time(9, 0, 0, 0), time(20, 0, 0, 0));
    let ny = TimeZone::get("America/New_York").unwrap();
    assert_eq!(
        window.earliest(utc("2026-03-07T02:00:00Z"), &ny),
        utc("2026-03-09T13:00:00Z")
    );
}

#[test]
fn a_window_without_days_waits_for_nothing() {
    let window = SendWindow {
        days: Vec::new(),
        from: time(9, 0, 0, 0),
        to: time(17, 0, 0, 0),
    };
    let at = utc("2026-12-05T03:00:00Z");
    assert_eq!(window.earliest(at, &TimeZone::UTC), at);
}
