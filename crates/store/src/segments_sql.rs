//! Segments in SQL: a checked [`Condition`] becomes a WHERE clause over `contacts c` with
//! every value bound as a parameter (a tenant's text never becomes SQL; property names,
//! checked against the declarations when the segment was read, are bound too). Comparisons
//! are two-valued (a missing value compares false, and `!=` true), so `not` means what it
//! says. The same clause in both dialects: SQLite reads properties with `json_extract` and
//! compares text `COLLATE NOCASE`; PostgreSQL reads the JSONB copy (`propsj`), typed by the
//! operand compared with, and compares lower-cased text.

use sqlx::Arguments;
use sqlx::postgres::PgArguments;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Dialect {
    #[default]
    Sqlite,
    Postgres,
}

/// The WHERE clause (over `contacts c`) and its parameters, in order. Parameters are
/// written `?`; [`Compiled::numbered`] turns them into PostgreSQL's `$n`.
#[derive(Debug, Default)]
pub(crate) struct Compiled {
    pub sql: String,
    pub params: Vec<Param>,
    pub dialect: Dialect,
}

/// What a property is read as: the operand it is compared with decides.
#[derive(Clone, Copy)]
enum As {
    Text,
    Number,
    Bool,
    Any,
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

    pub(crate) fn pg_arguments(&self, leading: &[Param]) -> Result<PgArguments, StoreError> {
        let mut args = PgArguments::default();
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

    /// The clause with its `?` numbered `$first`, `$first + 1`... (no `?` is ever part of
    /// the SQL text itself: values are all bound).
    pub(crate) fn numbered(&self, first: usize) -> String {
        let mut out = String::with_capacity(self.sql.len() + 16);
        let mut n = first;
        for ch in self.sql.chars() {
            if ch == '?' {
                out.push_str(&format!("${n}"));
                n += 1;
            } else {
                out.push(ch);
            }
        }
        out
    }

    fn truth(&self, value: bool) -> &'static str {
        match (self.dialect, value) {
            (Dialect::Sqlite, true) => "1",
            (Dialect::Sqlite, false) => "0",
            (Dialect::Postgres, true) => "TRUE",
            (Dialect::Postgres, false) => "FALSE",
        }
    }
}

fn field(compiled: &mut Compiled, field: &Field, read_as: As) -> String {
    match field {
        Field::Address => "c.address".into(),
        Field::Country => "c.country".into(),
        Field::Timezone => "c.timezone".into(),
        Field::Locale => "c.locale".into(),
        Field::Created => "c.created_ms".into(),
        Field::Updated => "c.updated_ms".into(),
        Field::Property(name) if compiled.dialect == Dialect::Sqlite => {
            compiled
                .params
                .push(Param::Text(format!("$.\"{}\"", name.replace('"', ""))));
            "json_extract(c.props, ?)".into()
        }
        Field::Property(name) => {
            let key = Param::Text(name.clone());
            match read_as {
                As::Text => {
                    compiled.params.push(key);
                    "(c.propsj ->> ?)".into()
                }
                As::Any => {
                    compiled.params.push(key);
                    "NULLIF(jsonb_typeof(c.propsj -> ?), 'null')".into()
                }
                As::Number | As::Bool => {
                    compiled.params.extend([key.clone(), key]);
                    let (kind, cast) = match read_as {
                        As::Number => ("number", "::float8"),
                        _ => ("boolean", "::boolean::int"),
                    };
                    format!(
                        "(CASE WHEN jsonb_typeof(c.propsj -> ?) = '{kind}' \
                         THEN (c.propsj ->> ?){cast} END)"
                    )
                }
            }
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
        Condition::All => {
            let truth = compiled.truth(true);
            compiled.sql.push_str(truth)
        }
        Condition::And(parts) | Condition::Or(parts) => {
            let (joiner, empty) = match condition {
                Condition::And(_) => (" AND ", compiled.truth(true)),
                _ => (" OR ", compiled.truth(false)),
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
            let expr = field(compiled, f, As::Any);
            let test = if *set { "IS NOT NULL" } else { "IS NULL" };
            compiled.sql.push_str(&format!("({expr} {test})"));
        }
        Condition::Compare {
            field: f,
            op,
            value,
        } => {
            let read_as = match value {
                Operand::Text(_) | Operand::List(_) => As::Text,
                Operand::Bool(_) => As::Bool,
                Operand::Number(_) | Operand::Time(_) | Operand::Ago(_) => As::Number,
            };
            let expr = field(compiled, f, read_as);
            let text = matches!(read_as, As::Text);
            let pg = compiled.dialect == Dialect::Postgres;
            let (yes, no) = (compiled.truth(true), compiled.truth(false));
            let sql = match op {
                Op::Contains if pg => format!("COALESCE(strpos(lower({{f}}), lower(?)) > 0, {no})"),
                Op::Contains => format!("COALESCE(instr(lower({{f}}), lower(?)) > 0, {no})"),
                Op::StartsWith if pg => {
                    format!("COALESCE(starts_with(lower({{f}}), lower(?)), {no})")
                }
                Op::StartsWith => {
                    // substr counts characters, so the prefix's length is bound too.
                    if let Operand::Text(t) = value {
                        compiled.params.push(Param::Int(t.chars().count() as i64));
                    }
                    format!("COALESCE(lower(substr({{f}}, 1, ?)) = lower(?), {no})")
                }
                Op::In => {
                    let Operand::List(values) = value else {
                        compiled.sql.push_str(no);
                        return;
                    };
                    if values.is_empty() {
                        compiled.sql.push_str(no);
                        return;
                    }
                    for v in values {
                        compiled.params.push(Param::Text(v.clone()));
                    }
                    let expr = if pg {
                        let marks = vec!["lower(?)"; values.len()].join(", ");
                        format!("lower({expr}) IN ({marks})")
                    } else {
                        let marks = vec!["?"; values.len()].join(", ");
                        format!("{expr} COLLATE NOCASE IN ({marks})")
                    };
                    compiled.sql.push_str(&format!("COALESCE({expr}, {no})"));
                    return;
                }
                Op::Ne if text && pg => format!("COALESCE(lower({{f}}) != lower(?), {yes})"),
                Op::Ne if text => format!("COALESCE({{f}} != ? COLLATE NOCASE, {yes})"),
                Op::Ne => format!("COALESCE({{f}} != ?, {yes})"),
                Op::Eq if text && pg => format!("COALESCE(lower({{f}}) = lower(?), {no})"),
                Op::Eq if text => format!("COALESCE({{f}} = ? COLLATE NOCASE, {no})"),
                Op::Eq => format!("COALESCE({{f}} = ?, {no})"),
                Op::Lt => format!("COALESCE({{f}} < ?, {no})"),
                Op::Le => format!("COALESCE({{f}} <= ?, {no})"),
                Op::Gt => format!("COALESCE({{f}} > ?, {no})"),
                Op::Ge => format!("COALESCE({{f}} >= ?, {no})"),
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

/// The WHERE clause for a condition over one tenant's contacts, evaluated now (SQLite).
pub(crate) fn compile(condition: &Condition, tenant: &str) -> Compiled {
    compile_for(Dialect::Sqlite, condition, tenant)
}

/// The same for PostgreSQL (`?` to be numbered, see [`Compiled::numbered`]).
pub(crate) fn compile_pg(condition: &Condition, tenant: &str) -> Compiled {
    compile_for(Dialect::Postgres, condition, tenant)
}

pub(crate) fn compile_for(dialect: Dialect, condition: &Condition, tenant: &str) -> Compiled {
    let mut compiled = Compiled {
        dialect,
        ..Compiled::default()
    };
    compile_into(&mut compiled, condition, now_ms(), tenant);
    compiled
}
