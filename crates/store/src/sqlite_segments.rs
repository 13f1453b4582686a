//! Segments on SQLite: a checked [`Condition`] becomes a WHERE clause over `contacts c`
//! with every value bound as a parameter (a tenant's text never becomes SQL; property
//! names, checked against the declarations when the segment was read, are bound too, as
//! JSON paths). Comparisons are two-valued (a missing value compares false, and `!=` true),
//! so `not` means what it says.

use sqlx::Arguments;
use sqlx::sqlite::SqliteArguments;

use crate::audience::{Condition, Field, Op, Operand};
use crate::{StoreError, now_ms};

/// A value bound to the query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
    Real(f64),
}

/// The WHERE clause (over `contacts c`) and its parameters, in order.
#[derive(Debug, Default)]
pub(crate) struct Compiled {
    pub sql: String,
    pub params: Vec<Param>,
}

impl Compiled {
    pub(crate) fn arguments(&self, leading: &[Param]) -> Result<SqliteArguments, StoreError> {
        let mut args = SqliteArguments::default();
        for param in leading.iter().chain(&self.params) {
            let added = match param {
                Param::Text(t) => args.add(t.clone()),
                Param::Int(i) => args.add(*i),
                Param::Real(r) => args.add(*r),
            };
            added.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))?;
        }
        Ok(args)
    }
}

fn field(compiled: &mut Compiled, field: &Field) -> String {
    match field {
        Field::Address => "c.address".into(),
        Field::Country => "c.country".into(),
        Field::Timezone => "c.timezone".into(),
        Field::Locale => "c.locale".into(),
        Field::Created => "c.created_ms".into(),
        Field::Updated => "c.updated_ms".into(),
        Field::Property(name) => {
            compiled
                .params
                .push(Param::Text(format!("$.\"{}\"", name.replace('"', ""))));
            "json_extract(c.props, ?)".into()
        }
    }
}

fn operand(compiled: &mut Compiled, value: &Operand, now: i64) {
    let param = match value {
        Operand::Text(t) => Param::Text(t.clone()),
        Operand::Number(n) => Param::Real(*n),
        Operand::Bool(b) => Param::Int(i64::from(*b)),
        Operand::Time(ms) => Param::Int(*ms),
        Operand::Ago(ms) => Param::Int(now - ms),
        Operand::List(_) => return,
    };
    compiled.params.push(param);
}

fn compile_into(compiled: &mut Compiled, condition: &Condition, now: i64, tenant: &str) {
    match condition {
        Condition::All => compiled.sql.push('1'),
        Condition::And(parts) | Condition::Or(parts) => {
            let (joiner, empty) = match condition {
                Condition::And(_) => (" AND ", "1"),
                _ => (" OR ", "0"),
            };
            if parts.is_empty() {
                compiled.sql.push_str(empty);
                return;
            }
            compiled.sql.push('(');
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    compiled.sql.push_str(joiner);
                }
                compile_into(compiled, part, now, tenant);
            }
            compiled.sql.push(')');
        }
        Condition::Not(inner) => {
            compiled.sql.push_str("NOT (");
            compile_into(compiled, inner, now, tenant);
            compiled.sql.push(')');
        }
        Condition::IsSet { field: f, set } => {
            let expr = field(compiled, f);
            let test = if *set { "IS NOT NULL" } else { "IS NULL" };
            compiled.sql.push_str(&format!("({expr} {test})"));
        }
        Condition::Compare {
            field: f,
            op,
            value,
        } => {
            let expr = field(compiled, f);
            let text = matches!(value, Operand::Text(_) | Operand::List(_));
            let sql = match op {
                Op::Contains => "COALESCE(instr(lower({f}), lower(?)) > 0, 0)".to_string(),
                Op::StartsWith => {
                    // substr counts characters, so the prefix's length is bound too.
                    if let Operand::Text(t) = value {
                        compiled.params.push(Param::Int(t.chars().count() as i64));
                    }
                    "COALESCE(lower(substr({f}, 1, ?)) = lower(?), 0)".to_string()
                }
                Op::In => {
                    let Operand::List(values) = value else {
                        compiled.sql.push('0');
                        return;
                    };
                    if values.is_empty() {
                        compiled.sql.push('0');
                        return;
                    }
                    let marks = vec!["?"; values.len()].join(", ");
                    for v in values {
                        compiled.params.push(Param::Text(v.clone()));
                    }
                    let expr = format!("{expr} COLLATE NOCASE IN ({marks})");
                    compiled.sql.push_str(&format!("COALESCE({expr}, 0)"));
                    return;
                }
                Op::Ne if text => "COALESCE({f} != ? COLLATE NOCASE, 1)".to_string(),
                Op::Ne => "COALESCE({f} != ?, 1)".to_string(),
                Op::Eq if text => "COALESCE({f} = ? COLLATE NOCASE, 0)".to_string(),
                Op::Eq => "COALESCE({f} = ?, 0)".to_string(),
                Op::Lt => "COALESCE({f} < ?, 0)".to_string(),
                Op::Le => "COALESCE({f} <= ?, 0)".to_string(),
                Op::Gt => "COALESCE({f} > ?, 0)".to_string(),
                Op::Ge => "COALESCE({f} >= ?, 0)".to_string(),
            };
            operand(compiled, value, now);
            compiled.sql.push_str(&sql.replace("{f}", &expr));
        }
        Condition::InList { list_id, status } => {
            // `IN (subquery)`: the members are read once (an index range) into a set, and a
            // contact is a lookup in it; SQLite may also walk the members and fetch contacts
            // by id when that is cheaper. Per-contact EXISTS probes cost seconds at 1 M.
            compiled.params.push(Param::Text(list_id.clone()));
            compiled.params.push(Param::Text(status.as_str().into()));
            compiled.sql.push_str(
                "c.id IN (SELECT m.contact_id FROM list_members m WHERE m.list_id = ? \
                 AND m.status = ?)",
            );
        }
        Condition::Engaged { kind, within_ms } => {
            // One row per recipient and kind (`contact_engagement`), read once into a set.
            // Not correlated (the tenant is bound), so SQLite builds the set once.
            compiled.params.push(Param::Text(tenant.into()));
            compiled.params.push(Param::Text(kind.as_str().into()));
            compiled.params.push(Param::Int(now - within_ms));
            compiled.sql.push_str(
                "c.address IN (SELECT g.address FROM contact_engagement g \
                 WHERE g.tenant_id = ? AND g.kind = ? AND g.last_ms >= ?)",
            );
        }
        Condition::Suppressed(yes) => {
            let not = if *yes { "" } else { "NOT " };
            compiled.params.push(Param::Text(tenant.into()));
            compiled.sql.push_str(&format!(
                "c.address {not}IN (SELECT s.address FROM suppressions s WHERE s.tenant_id = ?)"
            ));
        }
    }
}

/// The WHERE clause for a condition over one tenant's contacts, evaluated now.
pub(crate) fn compile(condition: &Condition, tenant: &str) -> Compiled {
    let mut compiled = Compiled::default();
    compile_into(&mut compiled, condition, now_ms(), tenant);
    compiled
}
