//! The segment language: a tenant's text such as
//! `country = "JP" and signed_up > now() - 30d and opened(within: 90d)` becomes the store's
//! [`store::Condition`], or an error naming the column (and the property, when one is at
//! fault). The text never becomes SQL: the store binds every value.

pub mod check;
pub mod lexer;
pub mod parser;

use store::{Condition, ContactList, PropertyDef};

/// Why a segment's text is refused: where, what, and the property at fault if any.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct SegmentError {
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
    pub property: Option<String>,
}

impl SegmentError {
    pub fn at(column: usize, message: impl Into<String>) -> SegmentError {
        SegmentError {
            column,
            message: message.into(),
            property: None,
        }
    }

    pub fn named(column: usize, property: &str, message: impl Into<String>) -> SegmentError {
        SegmentError {
            column,
            message: message.into(),
            property: Some(property.to_string()),
        }
    }
}

/// Parses and checks a segment against the tenant's declarations and lists. An empty text
/// selects every contact.
pub fn parse_segment(
    text: &str,
    properties: &[PropertyDef],
    lists: &[ContactList],
) -> Result<Condition, SegmentError> {
    let tokens = lexer::tokens(text)?;
    let Some(tree) = parser::parse(&tokens, text.chars().count())? else {
        return Ok(Condition::All);
    };
    check::check(&check::Context { properties, lists }, &tree)
}

#[cfg(test)]
mod tests {
    use store::{EventKind, Field, MemberStatus, Op, Operand, PropertyKind};

    use super::*;

    fn declared() -> Vec<PropertyDef> {
        let def = |name: &str, kind| PropertyDef {
            name: name.into(),
            kind,
            created_ms: 0,
        };
        vec![
            def("signed_up", PropertyKind::DateTime),
            def(
                "plan",
                PropertyKind::Choice(vec!["free".into(), "pro".into()]),
            ),
            def("score", PropertyKind::Number),
            def("vip", PropertyKind::Boolean),
            def("city", PropertyKind::Text),
        ]
    }

    fn lists() -> Vec<ContactList> {
        vec![ContactList {
            id: "ls_1".into(),
            name: "Newsletter".into(),
            double_opt_in: false,
            subscribed: 0,
            unconfirmed: 0,
            unsubscribed: 0,
            created_ms: 0,
            confirmation: None,
        }]
    }

    fn parse(text: &str) -> Result<Condition, SegmentError> {
        parse_segment(text, &declared(), &lists())
    }

    #[test]
    fn the_issue_example_checks_into_a_condition() {
        let got =
            parse(r#"country = "jp" and signed_up > now() - 30d and opened(within: 90d)"#).unwrap();
        assert_eq!(
            got,
            Condition::And(vec![
                Condition::Compare {
                    field: Field::Country,
                    op: Op::Eq,
                    value: Operand::Text("JP".into())
                },
                Condition::Compare {
                    field: Field::Property("signed_up".into()),
                    op: Op::Gt,
                    value: Operand::Ago(30 * 86_400_000)
                },
                Condition::Engaged {
                    kind: EventKind::Opened,
                    within_ms: 90 * 86_400_000
                },
            ])
        );
        assert_eq!(parse("").unwrap(), Condition::All);
        assert_eq!(
            parse(r#"in_list("Newsletter", status: "unconfirmed") and not suppressed()"#).unwrap(),
            Condition::And(vec![
                Condition::InList {
                    list_id: "ls_1".into(),
                    status: MemberStatus::Unconfirmed
                },
                Condition::Not(Box::new(Condition::Suppressed(true))),
            ])
        );
        assert_eq!(
            parse(r#"plan in ["PRO", "free"]"#).unwrap(),
            Condition::Compare {
                field: Field::Property("plan".into()),
                op: Op::In,
                value: Operand::List(vec!["pro".into(), "free".into()])
            }
        );
    }

    #[test]
    fn errors_name_the_column_and_the_property() {
        let err = parse(r#"country = "JP" and signedup > now() - 30d"#).unwrap_err();
        assert_eq!(
            (err.column, err.property.as_deref()),
            (20, Some("signedup"))
        );
        assert!(
            err.message.contains("signed_up"),
            "lists what is declared: {err}"
        );
        let err = parse(r#"plan = "gold""#).unwrap_err();
        assert_eq!((err.column, err.property.as_deref()), (8, Some("plan")));
        assert!(err.message.contains("free, pro"), "{err}");
        let err = parse("score contains \"1\"").unwrap_err();
        assert_eq!(err.property.as_deref(), Some("score"));
        let err = parse("vip = 1").unwrap_err();
        assert_eq!(err.column, 7);
        let err = parse("signed_up > 30d").unwrap_err();
        assert!(err.message.contains("now() - 30d"), "{err}");
        let err = parse(r#"in_list("Nope")"#).unwrap_err();
        assert_eq!(err.column, 9);
        let err = parse("opened()").unwrap_err();
        assert!(err.message.contains("within"), "{err}");
        let err = parse("frobnicate(within: 3d)").unwrap_err();
        assert_eq!(err.column, 1);
    }

    #[test]
    fn any_text_is_refused_or_accepted_without_panicking() {
        // A cheap fuzz: every prefix of tricky texts.
        let texts = [
            r#"not (a = "x" or b in ["y", 'z']) and c is not set and now() - 3w < d"#,
            "((((((((((",
            "\"unterminated",
            "a = -",
            "in_list(,)",
            "x = 1e9999",
            "'; DROP TABLE contacts; --",
        ];
        for text in texts {
            for end in 0..=text.len() {
                if text.is_char_boundary(end) {
                    let _ = parse(&text[..end]);
                }
            }
        }
    }
}
