//! A campaign's documents as the API would send them: read into types, and every refusal
//! naming its field.

use campaigns::documents::{Audience, Schedule, read_window};
use campaigns::local_time::Passed;
use jiff::civil::{Weekday, date, time};
use serde_json::json;

fn field_of<T: std::fmt::Debug>(result: Result<T, campaigns::documents::DocumentError>) -> String {
    result.expect_err("refused").field
}

#[test]
fn audiences_name_lists_and_segments() {
    let audience = Audience::read(&json!({
        "lists": ["Newsletter"], "segments": ["ls_1", " Japan "], "exclude_lists": ["VIP"]
    }))
    .unwrap();
    assert_eq!(audience.segments, ["ls_1", "Japan"]);
    assert_eq!(audience.exclude_lists, ["VIP"]);
    assert_eq!(
        field_of(Audience::read(&json!({"exclude_lists": ["x"]}))),
        "audience"
    );
    assert_eq!(
        field_of(Audience::read(&json!({"lists": ["a", 3]}))),
        "audience.lists[1]"
    );
    assert_eq!(
        field_of(Audience::read(&json!({"lists": "a"}))),
        "audience.lists"
    );
    assert_eq!(
        field_of(Audience::read(&json!({"list": ["a"]}))),
        "audience.list"
    );
    assert_eq!(field_of(Audience::read(&json!([]))), "audience");
}

#[test]
fn schedules_are_an_instant_or_a_local_time() {
    let at = Schedule::read(&json!({"at": "2026-12-04T00:00:00Z"})).unwrap();
    assert!(matches!(at, Schedule::At(t) if t.as_millisecond() == 1_796_342_400_000));
    assert!(matches!(
        Schedule::read(&json!({"at": 1_796_342_400_000_i64})).unwrap(),
        Schedule::At(_)
    ));
    let Schedule::Local(local) = Schedule::read(&json!({
        "local": {"date": "2026-12-04", "time": "09:00", "passed": "at_once"}
    }))
    .unwrap() else {
        panic!("local")
    };
    assert_eq!(
        (local.date, local.time, local.passed),
        (date(2026, 12, 4), time(9, 0, 0, 0), Passed::AtOnce)
    );
    let Schedule::Local(default) =
        Schedule::read(&json!({"local": {"date": "2026-12-04", "time": "21:30"}})).unwrap()
    else {
        panic!("local")
    };
    assert_eq!(default.passed, Passed::NextDay);
    for (doc, field) in [
        (json!({"at": "tomorrow"}), "schedule.at"),
        (
            json!({"local": {"date": "2026-13-01", "time": "09:00"}}),
            "schedule.local.date",
        ),
        (
            json!({"local": {"date": "2026-12-04", "time": "25:00"}}),
            "schedule.local.time",
        ),
        (
            json!({"local": {"date": "2026-12-04"}}),
            "schedule.local.time",
        ),
        (
            json!({"local": {"date": "2026-12-04", "time": "09:00", "passed": "skip"}}),
            "schedule.local.passed",
        ),
        (
            json!({"at": "2026-12-04T00:00:00Z", "local": {}}),
            "schedule",
        ),
    ] {
        assert_eq!(field_of(Schedule::read(&doc)), field, "{doc}");
    }
}

#[test]
fn windows_read_days_and_hours() {
    let window = read_window(&json!({"from": "09:00", "to": "20:00"})).unwrap();
    assert_eq!(window.days.len(), 5);
    let weekend =
        read_window(&json!({"days": ["sat", "Sunday"], "from": "10:00", "to": "12:30"})).unwrap();
    assert_eq!(weekend.days, [Weekday::Saturday, Weekday::Sunday]);
    assert_eq!(weekend.to, time(12, 30, 0, 0));
    assert_eq!(
        field_of(read_window(&json!({"from": "20:00", "to": "09:00"}))),
        "window.to"
    );
    assert_eq!(
        field_of(read_window(
            &json!({"days": ["funday"], "from": "09:00", "to": "10:00"})
        )),
        "window.days[0]"
    );
    assert_eq!(
        field_of(read_window(&json!({"from": "9am", "to": "10:00"}))),
        "window.from"
    );
}

#[test]
fn content_is_a_template_or_its_own_parts() {
    use campaigns::documents::{Body, Content};
    let by_template = Content::read(&json!({
        "from": "news@acme.test", "from_name": "Acme", "template_id": "Newsletter", "template_version": 3
    }))
    .unwrap();
    assert_eq!(
        by_template.body,
        Body::Template {
            id: "Newsletter".into(),
            version: Some(3),
            subject: None,
        }
    );
    // A subject may stand in for the template's (an A/B variant's); bodies may not.
    let subject_over = Content::read(&json!({
        "from": "news@acme.test", "template_id": "Newsletter", "subject": "Last chance"
    }))
    .unwrap();
    assert!(
        matches!(subject_over.body, Body::Template { subject: Some(ref s), .. } if s == "Last chance")
    );
    let inline = Content::read(&json!({
        "from": "news@acme.test", "subject": "December", "html": "<p>Hi {{ name }}</p>"
    }))
    .unwrap();
    assert!(matches!(inline.body, Body::Inline { ref subject, .. } if subject == "December"));
    for (doc, field) in [
        (json!({"subject": "s", "text": "t"}), "content.from"),
        (
            json!({"from": "not an address", "subject": "s", "text": "t"}),
            "content.from",
        ),
        (
            json!({"from": "a@acme.test", "text": "t"}),
            "content.subject",
        ),
        (
            json!({"from": "a@acme.test", "subject": "s"}),
            "content.html",
        ),
        (
            json!({"from": "a@acme.test", "template_id": "T", "html": "<p>"}),
            "content.html",
        ),
        (
            json!({"from": "a@acme.test", "template_id": "T", "template_version": 0}),
            "content.template_version",
        ),
        (
            json!({"from": "a@acme.test", "subject": "a\r\nBcc: x@evil.test", "text": "t"}),
            "content.subject",
        ),
        (
            json!({"from": "a@acme.test", "from_name": "A\nB", "subject": "s", "text": "t"}),
            "content.from_name",
        ),
        (
            json!({"from": "a@acme.test", "reply_to": "nope", "subject": "s", "text": "t"}),
            "content.reply_to",
        ),
        (
            json!({"from": "a@acme.test", "subject": "s", "text": "t", "cc": "x"}),
            "content.cc",
        ),
    ] {
        assert_eq!(field_of(Content::read(&doc)), field, "{doc}");
    }
}
