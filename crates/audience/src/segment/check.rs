//! Names and types: every field is a contact's own or a declared property, every list
//! exists, every value has the field's type; the result is the store's [`Condition`], with
//! the names resolved (lists by id) and values in their stored encoding.

use store::{
    Condition, ContactList, EventKind, Field, MemberStatus, Op, Operand, PropertyDef, PropertyKind,
};

use super::SegmentError;
use super::parser::{Arg, CmpOp, Expr, Literal, Name, Value};
use crate::values::parse_time;

/// What a segment may name.
pub struct Context<'a> {
    pub properties: &'a [PropertyDef],
    pub lists: &'a [ContactList],
}

#[derive(Debug, Clone, PartialEq)]
enum Type {
    Text,
    Number,
    DateTime,
    Boolean,
    Choice(Vec<String>),
}

impl Type {
    fn describe(&self) -> &'static str {
        match self {
            Type::Text => "text",
            Type::Number => "a number",
            Type::DateTime => "a date-time",
            Type::Boolean => "true or false",
            Type::Choice(_) => "one of its choices",
        }
    }
}

/// The contact's own fields, as segments name them.
const OWN_FIELDS: &str = "address, country, timezone, locale, created, updated";
/// The functions, as segments name them.
const FUNCTIONS: &str = "in_list(\"name\"), opened(within: 30d), clicked(...), delivered(...), \
                         bounced(...), complained(...), unsubscribed(...), suppressed()";

fn resolve(context: &Context, name: &Name) -> Result<(Field, Type), SegmentError> {
    let own = match name.text.as_str() {
        "address" | "email" => Some((Field::Address, Type::Text)),
        "country" => Some((Field::Country, Type::Text)),
        "timezone" => Some((Field::Timezone, Type::Text)),
        "locale" => Some((Field::Locale, Type::Text)),
        "created" => Some((Field::Created, Type::DateTime)),
        "updated" => Some((Field::Updated, Type::DateTime)),
        _ => None,
    };
    if let Some(found) = own {
        return Ok(found);
    }
    let def = context
        .properties
        .iter()
        .find(|p| p.name == name.text)
        .ok_or_else(|| {
            let declared: Vec<&str> = context.properties.iter().map(|p| p.name.as_str()).collect();
            let declared = if declared.is_empty() {
                "none declared".to_string()
            } else {
                declared.join(", ")
            };
            SegmentError::named(
                name.column,
                &name.text,
                format!(
                    "unknown property {}: the contact's fields are {OWN_FIELDS}; properties: {declared}",
                    name.text
                ),
            )
        })?;
    let kind = match &def.kind {
        PropertyKind::Text => Type::Text,
        PropertyKind::Number => Type::Number,
        PropertyKind::DateTime => Type::DateTime,
        PropertyKind::Boolean => Type::Boolean,
        PropertyKind::Choice(values) => Type::Choice(values.clone()),
    };
    Ok((Field::Property(def.name.clone()), kind))
}

fn mismatch(field: &Name, kind: &Type, value: &Value) -> SegmentError {
    SegmentError::named(
        value.column,
        &field.text,
        format!(
            "{} holds {}: this value does not fit",
            field.text,
            kind.describe()
        ),
    )
}

/// A value in the field's type, normalised like stored values.
fn operand(field: &Name, own: &Field, kind: &Type, value: &Value) -> Result<Operand, SegmentError> {
    match (kind, &value.literal) {
        (Type::Text, Literal::Text(t)) => Ok(Operand::Text(match own {
            Field::Address => t.trim().to_lowercase(),
            Field::Country => t.trim().to_ascii_uppercase(),
            _ => t.clone(),
        })),
        (Type::Choice(choices), Literal::Text(t)) => choices
            .iter()
            .find(|c| c.eq_ignore_ascii_case(t))
            .map(|c| Operand::Text(c.clone()))
            .ok_or_else(|| {
                SegmentError::named(
                    value.column,
                    &field.text,
                    format!("{t:?} is not a choice of {}: {}", field.text, choices.join(", ")),
                )
            }),
        (Type::Number, Literal::Number(n)) => Ok(Operand::Number(*n)),
        (Type::Boolean, Literal::Bool(b)) => Ok(Operand::Bool(*b)),
        (Type::DateTime, Literal::Now(offset)) => Ok(Operand::Ago(-offset)),
        (Type::DateTime, Literal::Text(t)) => parse_time(t).map(Operand::Time).ok_or_else(|| {
            SegmentError::named(
                value.column,
                &field.text,
                format!("{t:?} is not a date-time: write \"2026-12-03\", an RFC 3339 time, or now() - 30d"),
            )
        }),
        (Type::DateTime, Literal::Duration(_)) => Err(SegmentError::named(
            value.column,
            &field.text,
            "a duration alone is not a time: write now() - 30d",
        )),
        _ => Err(mismatch(field, kind, value)),
    }
}

fn compare(
    context: &Context,
    field: &Name,
    op: CmpOp,
    value: &Value,
) -> Result<Condition, SegmentError> {
    let (own, kind) = resolve(context, field)?;
    let allowed = match kind {
        Type::Text => matches!(
            op,
            CmpOp::Eq | CmpOp::Ne | CmpOp::Contains | CmpOp::StartsWith
        ),
        Type::Choice(_) | Type::Boolean => matches!(op, CmpOp::Eq | CmpOp::Ne),
        Type::Number | Type::DateTime => !matches!(op, CmpOp::Contains | CmpOp::StartsWith),
    };
    if !allowed {
        return Err(SegmentError::named(
            field.column,
            &field.text,
            format!(
                "{} holds {}: this comparison does not apply",
                field.text,
                kind.describe()
            ),
        ));
    }
    let op = match op {
        CmpOp::Eq => Op::Eq,
        CmpOp::Ne => Op::Ne,
        CmpOp::Lt => Op::Lt,
        CmpOp::Le => Op::Le,
        CmpOp::Gt => Op::Gt,
        CmpOp::Ge => Op::Ge,
        CmpOp::Contains => Op::Contains,
        CmpOp::StartsWith => Op::StartsWith,
    };
    Ok(Condition::Compare {
        value: operand(field, &own, &kind, value)?,
        field: own,
        op,
    })
}

fn one_of(context: &Context, field: &Name, values: &[Value]) -> Result<Condition, SegmentError> {
    let (own, kind) = resolve(context, field)?;
    if !matches!(kind, Type::Text | Type::Choice(_)) {
        return Err(SegmentError::named(
            field.column,
            &field.text,
            format!(
                "{} holds {}: `in [...]` takes text values",
                field.text,
                kind.describe()
            ),
        ));
    }
    let mut list = Vec::with_capacity(values.len());
    for value in values {
        match operand(field, &own, &kind, value)? {
            Operand::Text(t) => list.push(t),
            _ => return Err(mismatch(field, &kind, value)),
        }
    }
    Ok(Condition::Compare {
        field: own,
        op: Op::In,
        value: Operand::List(list),
    })
}

fn call(context: &Context, name: &Name, args: &[Arg]) -> Result<Condition, SegmentError> {
    let arg = |key: &str| {
        args.iter()
            .find(|a| a.key.as_ref().is_some_and(|k| k.text == key))
    };
    for a in args {
        if let Some(key) = &a.key
            && !matches!(key.text.as_str(), "within" | "status")
        {
            return Err(SegmentError::at(
                key.column,
                format!("{} takes no `{}:`", name.text, key.text),
            ));
        }
    }
    let engaged = match name.text.as_str() {
        "opened" => Some(EventKind::Opened),
        "clicked" => Some(EventKind::Clicked),
        "delivered" => Some(EventKind::Delivered),
        "bounced" => Some(EventKind::Bounced),
        "complained" => Some(EventKind::Complained),
        "unsubscribed" => Some(EventKind::Unsubscribed),
        _ => None,
    };
    if let Some(kind) = engaged {
        let within = arg("within").ok_or_else(|| {
            SegmentError::at(
                name.column,
                format!("{}(within: 30d): say over how long", name.text),
            )
        })?;
        let Literal::Duration(ms) = within.value.literal else {
            return Err(SegmentError::at(
                within.value.column,
                "within takes a duration such as 90d",
            ));
        };
        return Ok(Condition::Engaged {
            kind,
            within_ms: ms,
        });
    }
    match name.text.as_str() {
        "in_list" => {
            let Some(Arg { key: None, value }) = args.first() else {
                return Err(SegmentError::at(name.column, "in_list(\"list name\")"));
            };
            let Literal::Text(list) = &value.literal else {
                return Err(SegmentError::at(value.column, "a list's name in quotes"));
            };
            let found = context
                .lists
                .iter()
                .find(|l| &l.name == list || &l.id == list)
                .ok_or_else(|| SegmentError::at(value.column, format!("no list named {list:?}")))?;
            let status = match arg("status") {
                None => MemberStatus::Subscribed,
                Some(a) => match &a.value.literal {
                    Literal::Text(s) => MemberStatus::parse(s).ok_or_else(|| {
                        SegmentError::at(
                            a.value.column,
                            "status: subscribed, unconfirmed or unsubscribed",
                        )
                    })?,
                    _ => {
                        return Err(SegmentError::at(
                            a.value.column,
                            "status: \"subscribed\", \"unconfirmed\" or \"unsubscribed\"",
                        ));
                    }
                },
            };
            Ok(Condition::InList {
                list_id: found.id.clone(),
                status,
            })
        }
        "suppressed" if args.is_empty() => Ok(Condition::Suppressed(true)),
        "suppressed" => Err(SegmentError::at(name.column, "suppressed() takes nothing")),
        other => Err(SegmentError::at(
            name.column,
            format!("unknown function {other}: {FUNCTIONS}"),
        )),
    }
}

/// The store's condition for a syntax tree.
pub fn check(context: &Context, expr: &Expr) -> Result<Condition, SegmentError> {
    Ok(match expr {
        Expr::And(parts) => Condition::And(
            parts
                .iter()
                .map(|p| check(context, p))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(parts) => Condition::Or(
            parts
                .iter()
                .map(|p| check(context, p))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(inner) => Condition::Not(Box::new(check(context, inner)?)),
        Expr::Compare { field, op, value } => compare(context, field, *op, value)?,
        Expr::In { field, values } => one_of(context, field, values)?,
        Expr::IsSet { field, set } => Condition::IsSet {
            field: resolve(context, field)?.0,
            set: *set,
        },
        Expr::Call { name, args } => call(context, name, args)?,
    })
}
