//! Local-time sending against the real time zone database: daylight-saving switch days
//! (a gap and a fold), half-hour and 45-minute offsets, UTC+14, and recipients whose moment
//! has passed.

use campaigns::local_time::{LocalSchedule, Passed, send_instant};
use campaigns::zones::recipient_zone;
use jiff::Timestamp;
use jiff::civil::{date, time};
use jiff::tz::TimeZone;

fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn utc(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn at(y: i16, m: i8, d: i8, h: i8, min: i8, passed: Passed) -> LocalSchedule {
    LocalSchedule {
        date: date(y, m, d),
        time: time(h, min, 0, 0),
        passed,
    }
}

/// Long before any of the schedules below: nothing has passed.
fn early() -> Timestamp {
    utc("2026-01-01T00:00:00Z")
}

#[test]
fn daylight_saving_switch_days() {
    let ny = zone("America/New_York");
    // 2026-03-08: clocks go from 02:00 EST to 03:00 EDT.
    let before = send_instant(&at(2026, 3, 7, 9, 0, Passed::AtOnce), &ny, early());
    let switch = send_instant(&at(2026, 3, 8, 9, 0, Passed::AtOnce), &ny, early());
    assert_eq!(before, utc("2026-03-07T14:00:00Z"), "09:00 EST");
    assert_eq!(
        switch,
        utc("2026-03-08T13:00:00Z"),
        "09:00 EDT, 23 hours later"
    );
    // 02:30 does not exist that day: taken as 03:30 EDT.
    let gap = send_instant(&at(2026, 3, 8, 2, 30, Passed::AtOnce), &ny, early());
    assert_eq!(gap, utc("2026-03-08T07:30:00Z"));

    let berlin = zone("Europe/Berlin");
    // 2026-10-25: clocks go back from 03:00 CEST to 02:00 CET; 02:30 happens twice.
    let fold = send_instant(&at(2026, 10, 25, 2, 30, Passed::AtOnce), &berlin, early());
    assert_eq!(fold, utc("2026-10-25T00:30:00Z"), "the first 02:30 (CEST)");
    let nine = send_instant(&at(2026, 10, 25, 9, 0, Passed::AtOnce), &berlin, early());
    assert_eq!(nine, utc("2026-10-25T08:00:00Z"), "09:00 CET");
}

#[test]
fn half_hour_45_minute_and_utc_plus_14_offsets() {
    let nine = at(2026, 12, 4, 9, 0, Passed::AtOnce);
    for (name, expected) in [
        ("Asia/Kolkata", "2026-12-04T03:30:00Z"),       // +05:30
        ("Asia/Kathmandu", "2026-12-04T03:15:00Z"),     // +05:45
        ("Australia/Eucla", "2026-12-04T00:15:00Z"),    // +08:45
        ("Pacific/Chatham", "2026-12-03T19:15:00Z"),    // +13:45 (summer)
        ("Pacific/Kiritimati", "2026-12-03T19:00:00Z"), // +14
        ("Pacific/Pago_Pago", "2026-12-04T20:00:00Z"),  // -11
    ] {
        assert_eq!(
            send_instant(&nine, &zone(name), early()),
            utc(expected),
            "{name}"
        );
    }
}

#[test]
fn a_passed_moment_goes_at_once_or_the_next_day() {
    // 02:00 UTC on 2026-12-04: 09:00 has passed in Tokyo (00:00 UTC) and Kiritimati
    // (19:00 UTC the day before), not in Paris (08:00 UTC).
    let now = utc("2026-12-04T02:00:00Z");
    let once = at(2026, 12, 4, 9, 0, Passed::AtOnce);
    let next = at(2026, 12, 4, 9, 0, Passed::NextDay);
    let tokyo = zone("Asia/Tokyo");
    assert_eq!(send_instant(&once, &tokyo, now), now);
    assert_eq!(
        send_instant(&next, &tokyo, now),
        utc("2026-12-05T00:00:00Z")
    );
    assert_eq!(
        send_instant(&next, &zone("Pacific/Kiritimati"), now),
        utc("2026-12-04T19:00:00Z")
    );
    assert_eq!(
        send_instant(&next, &zone("Europe/Paris"), now),
        utc("2026-12-04T08:00:00Z"),
        "not passed: the day itself"
    );
    // The next day across a switch: 09:00 EST passed, 09:00 EDT the next morning.
    let ny_next = at(2026, 3, 7, 9, 0, Passed::NextDay);
    assert_eq!(
        send_instant(
            &ny_next,
            &zone("America/New_York"),
            utc("2026-03-07T15:00:00Z")
        ),
        utc("2026-03-08T13:00:00Z")
    );
}

#[test]
fn the_zone_falls_back_from_contact_to_country_to_tenant() {
    let nine = at(2026, 12, 4, 9, 0, Passed::AtOnce);
    let (by_country, _) = recipient_zone(None, Some("NP"), Some("Europe/Paris"));
    assert_eq!(
        send_instant(&nine, &by_country, early()),
        utc("2026-12-04T03:15:00Z")
    );
    let (by_tenant, _) = recipient_zone(None, None, Some("Europe/Paris"));
    assert_eq!(
        send_instant(&nine, &by_tenant, early()),
        utc("2026-12-04T08:00:00Z")
    );
}
