//! A/B tests: the `ab` document, each variant's content over the campaign's, the test
//! group's size, and the winner's decision (two-proportion z-test, p-values checked against
//! Python's `math.erfc`).

use campaigns::ab::{AbTest, Fallback, Metric};
use campaigns::documents::Body;
use campaigns::winner::{Tally, decide, two_proportion_p};
use serde_json::json;

fn base() -> serde_json::Value {
    json!({"from": "news@acme.test", "from_name": "Acme", "subject": "December", "html": "<p>Hi</p>"})
}

fn field_of(doc: serde_json::Value) -> String {
    AbTest::read(&doc, Some(&base())).unwrap_err().field
}

#[test]
fn the_document_reads_with_defaults_and_names_its_faults() {
    let test = AbTest::read(
        &json!({"variants": [{"subject": "Sale"}, {"subject": "Last chance", "from_name": "Ann at Acme"}]}),
        Some(&base()),
    )
    .unwrap();
    assert_eq!(test.variants.len(), 2);
    assert_eq!(
        (
            test.variants[0].name.as_str(),
            test.variants[1].name.as_str()
        ),
        ("A", "B")
    );
    assert_eq!(
        (test.test_percent, test.metric, test.fallback),
        (20, Metric::Opens, Fallback::Leader)
    );
    assert_eq!(test.wait.as_secs(), 4 * 3600);
    assert!((test.confidence - 0.95).abs() < 1e-9);
    let b = test.content(&base(), 1).unwrap();
    assert_eq!(b.from_name.as_deref(), Some("Ann at Acme"));
    assert!(matches!(b.body, Body::Inline { ref subject, .. } if subject == "Last chance"));

    for (doc, field) in [
        (json!({"variants": [{"subject": "x"}]}), "ab.variants"),
        (
            json!({"variants": (0..11).map(|i| json!({"subject": format!("s{i}")})).collect::<Vec<_>>()}),
            "ab.variants",
        ),
        (
            json!({"variants": [{"subject": "a"}, {"colour": "red"}]}),
            "ab.variants[1].colour",
        ),
        (
            json!({"variants": [{"name": "X"}, {"name": "X"}]}),
            "ab.variants[1].name",
        ),
        (
            json!({"variants": [{}, {"subject": "a\r\nBcc: x@y.z"}]}),
            "ab.variants[1].subject",
        ),
        (
            json!({"variants": [{}, {"html": "<p>", "subject": null}]}),
            "ab.variants[1].subject",
        ),
        (
            json!({"variants": [{}, {"schedule": {"at": "soon"}}]}),
            "ab.variants[1].schedule.at",
        ),
        (
            json!({"variants": [{}, {}], "test_percent": 0}),
            "ab.test_percent",
        ),
        (
            json!({"variants": [{}, {}], "test_percent": 101}),
            "ab.test_percent",
        ),
        (
            json!({"variants": [{}, {}], "metric": "revenue"}),
            "ab.metric",
        ),
        (
            json!({"variants": [{}, {}], "wait_minutes": -1}),
            "ab.wait_minutes",
        ),
        (
            json!({"variants": [{}, {}], "fallback": "random"}),
            "ab.fallback",
        ),
        (
            json!({"variants": [{}, {}], "confidence": 0.5}),
            "ab.confidence",
        ),
        (json!({"variants": [{}, {}], "winner": 1}), "ab.winner"),
    ] {
        assert_eq!(field_of(doc.clone()), field, "{doc}");
    }
}

#[test]
fn variants_change_the_campaigns_content() {
    let test = AbTest::read(
        &json!({"variants": [
            {"template_id": "Spring"},
            {"template_id": "Spring", "subject": "Spring is here"},
            {"text": "Plain words"}
        ]}),
        None,
    )
    .unwrap();
    let templated =
        json!({"from": "news@acme.test", "template_id": "Winter", "template_version": 2});
    // A template over inline content drops the bodies and the subject.
    let a = test.content(&base(), 0).unwrap();
    assert_eq!(
        a.body,
        Body::Template {
            id: "Spring".into(),
            version: None,
            subject: None
        }
    );
    let b = test.content(&base(), 1).unwrap();
    assert!(matches!(b.body, Body::Template { subject: Some(ref s), .. } if s == "Spring is here"));
    // Bodies over a template drop the template: the variant then needs a subject.
    assert_eq!(
        test.content(&templated, 2).unwrap_err().field,
        "ab.variants[2].subject"
    );
    let c = test.content(&base(), 2).unwrap();
    assert!(
        matches!(c.body, Body::Inline { ref text, ref html, .. } if text.as_deref() == Some("Plain words") && html.is_none())
    );
}

#[test]
fn the_test_group_is_the_share_with_one_per_variant_at_least() {
    let test = AbTest::read(&json!({"variants": [{}, {}, {}], "test_percent": 10}), None).unwrap();
    assert_eq!(test.test_group(1000), 100);
    assert_eq!(test.test_group(1001), 101, "rounded up");
    assert_eq!(test.test_group(5), 3, "one per variant");
    assert_eq!(test.test_group(2), 2, "never more than the audience");
    assert_eq!(test.test_group(0), 0);
}

fn t(engaged: i64, delivered: i64) -> Tally {
    Tally { delivered, engaged }
}

#[test]
fn p_values_match_the_two_proportion_z_test() {
    for (a, b, expected) in [
        (t(200, 1000), t(150, 1000), 0.003_256_27),
        (t(110, 1000), t(100, 1000), 0.465_743_59),
        (t(30, 100), t(10, 100), 0.000_406_95),
        (t(5000, 20000), t(4800, 20000), 0.020_066_09),
    ] {
        let p = two_proportion_p(a, b);
        assert!(
            (p - expected).abs() < 1e-6,
            "{a:?} {b:?}: {p} vs {expected}"
        );
        assert!((two_proportion_p(b, a) - p).abs() < 1e-12, "symmetric");
    }
    assert_eq!(two_proportion_p(t(0, 100), t(0, 100)), 1.0);
    assert_eq!(two_proportion_p(t(0, 0), t(5, 100)), 1.0);
}

#[test]
fn the_leader_wins_when_significant_else_the_fallback() {
    let mut test = AbTest::read(&json!({"variants": [{}, {}, {}]}), None).unwrap();
    // B leads clearly: 30 % vs 15 % and 14 % on 1000 each.
    let clear = decide(&test, &[t(150, 1000), t(300, 1000), t(140, 1000)]);
    assert_eq!(clear.winner, 1);
    assert!(clear.significant, "{}", clear.reason);
    assert!(
        clear.reason.starts_with("B wins on unique opens"),
        "{}",
        clear.reason
    );

    // C leads by a little: not significant, the leader is sent all the same...
    let close = [t(100, 1000), t(104, 1000), t(110, 1000)];
    let leader = decide(&test, &close);
    assert_eq!((leader.winner, leader.significant), (2, false));
    assert!(
        leader.reason.contains("fallback leader sends C"),
        "{}",
        leader.reason
    );
    // ...or the control, when the test says so.
    test.fallback = Fallback::First;
    let first = decide(&test, &close);
    assert_eq!((first.winner, first.significant), (0, false));

    // p = 0.02 passes 95 % with two variants, not with three (Bonferroni: 0.025 each).
    let two = AbTest::read(&json!({"variants": [{}, {}]}), None).unwrap();
    assert!(decide(&two, &[t(5000, 20000), t(4800, 20000)]).significant);
    let three = AbTest::read(&json!({"variants": [{}, {}, {}], "confidence": 0.99}), None).unwrap();
    assert!(!decide(&three, &[t(5000, 20000), t(4800, 20000), t(4700, 20000)]).significant);

    // Nobody delivered yet: nothing is significant, ties go to the first.
    let none = decide(&two, &[t(0, 0), t(0, 0)]);
    assert_eq!((none.winner, none.significant), (0, false));
}
