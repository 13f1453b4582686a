//! The segment grammar, into a syntax tree that keeps each name's and value's column:
//!
//! ```text
//! segment    := or?                       (empty: every contact)
//! or         := and ("or" and)*
//! and        := unary ("and" unary)*
//! unary      := "not" unary | "(" or ")" | call | comparison
//! call       := NAME "(" [arg ("," arg)*] ")"         in_list("News"), opened(within: 90d)
//! arg        := [NAME ":"] value
//! comparison := NAME ( CMP value | "contains" value | "starts_with" value
//!                    | "in" "[" value ("," value)* "]" | "is" ["not"] "set" )
//! value      := TEXT | NUMBER | "-" NUMBER | "true" | "false" | DURATION
//!             | "now" "(" ")" [("+" | "-") DURATION]
//! ```

use super::SegmentError;
use super::lexer::{Spanned, Token};

/// A name as written, with its column.
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    pub text: String,
    pub column: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    StartsWith,
}

/// A literal as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Number(f64),
    Bool(bool),
    /// A bare duration (`90d`), in ms.
    Duration(i64),
    /// `now()` plus this offset in ms (negative: in the past).
    Now(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub literal: Literal,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub key: Option<Name>,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        field: Name,
        op: CmpOp,
        value: Value,
    },
    In {
        field: Name,
        values: Vec<Value>,
    },
    IsSet {
        field: Name,
        set: bool,
    },
    Call {
        name: Name,
        args: Vec<Arg>,
    },
}

struct Parser<'a> {
    tokens: &'a [Spanned],
    at: usize,
    /// The column just past the text, for "expected ... at the end".
    end: usize,
    /// Open `(` and `not` around the current position.
    depth: usize,
}

/// Deepest nesting of `(` and `not` (keeps the recursion off the stack's end).
pub const DEPTH_MAX: usize = 64;

fn is_word(token: &Token, word: &str) -> bool {
    matches!(token, Token::Ident(w) if w.eq_ignore_ascii_case(word))
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Spanned> {
        self.tokens.get(self.at)
    }

    fn column(&self) -> usize {
        self.peek().map_or(self.end, |s| s.column)
    }

    fn next(&mut self) -> Option<&Spanned> {
        let token = self.tokens.get(self.at);
        self.at += 1;
        token
    }

    fn word(&mut self, word: &str) -> bool {
        if self.peek().is_some_and(|s| is_word(&s.token, word)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, want: &Token, what: &str) -> Result<(), SegmentError> {
        match self.peek() {
            Some(s) if &s.token == want => {
                self.at += 1;
                Ok(())
            }
            _ => Err(SegmentError::at(self.column(), format!("expected {what}"))),
        }
    }

    fn or(&mut self) -> Result<Expr, SegmentError> {
        let mut parts = vec![self.and()?];
        while self.word("or") {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Expr, SegmentError> {
        let mut parts = vec![self.unary()?];
        while self.word("and") {
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Expr, SegmentError> {
        let column = self.column();
        if self.depth >= DEPTH_MAX {
            return Err(SegmentError::at(
                column,
                "nested too deeply (64 levels at most)",
            ));
        }
        if self.word("not") {
            self.depth += 1;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        match self.next().map(|s| s.token.clone()) {
            Some(Token::LParen) => {
                self.depth += 1;
                let inner = self.or()?;
                self.depth -= 1;
                self.expect(&Token::RParen, "`)`")?;
                Ok(inner)
            }
            Some(Token::Ident(text)) => {
                let name = Name { text, column };
                if self.peek().is_some_and(|s| s.token == Token::LParen) {
                    self.at += 1;
                    return self.call(name);
                }
                self.comparison(name)
            }
            _ => Err(SegmentError::at(
                column,
                "expected a property, a function such as in_list(...), `not` or `(`",
            )),
        }
    }

    fn call(&mut self, name: Name) -> Result<Expr, SegmentError> {
        let mut args = Vec::new();
        if self.peek().is_some_and(|s| s.token == Token::RParen) {
            self.at += 1;
            return Ok(Expr::Call { name, args });
        }
        loop {
            let key = match (self.peek(), self.tokens.get(self.at + 1)) {
                (
                    Some(Spanned {
                        token: Token::Ident(k),
                        column,
                    }),
                    Some(Spanned {
                        token: Token::Colon,
                        ..
                    }),
                ) => {
                    let key = Name {
                        text: k.clone(),
                        column: *column,
                    };
                    self.at += 2;
                    Some(key)
                }
                _ => None,
            };
            args.push(Arg {
                key,
                value: self.value()?,
            });
            match self.next().map(|s| s.token.clone()) {
                Some(Token::Comma) => continue,
                Some(Token::RParen) => break,
                _ => {
                    return Err(SegmentError::at(
                        self.tokens.get(self.at - 1).map_or(self.end, |s| s.column),
                        "expected `,` or `)`",
                    ));
                }
            }
        }
        Ok(Expr::Call { name, args })
    }

    fn comparison(&mut self, field: Name) -> Result<Expr, SegmentError> {
        let column = self.column();
        let op = match self.peek().map(|s| &s.token) {
            Some(Token::Cmp(op)) => match *op {
                "=" => CmpOp::Eq,
                "!=" => CmpOp::Ne,
                "<" => CmpOp::Lt,
                "<=" => CmpOp::Le,
                ">" => CmpOp::Gt,
                _ => CmpOp::Ge,
            },
            Some(t) if is_word(t, "contains") => CmpOp::Contains,
            Some(t) if is_word(t, "starts_with") => CmpOp::StartsWith,
            Some(t) if is_word(t, "is") => {
                self.at += 1;
                let negated = self.word("not");
                if !self.word("set") {
                    return Err(SegmentError::at(
                        self.column(),
                        "expected `set` (is set, is not set)",
                    ));
                }
                return Ok(Expr::IsSet {
                    field,
                    set: !negated,
                });
            }
            Some(t) if is_word(t, "in") => {
                self.at += 1;
                self.expect(&Token::LBracket, "`[` starting a list of values")?;
                let mut values = vec![self.value()?];
                while self.peek().is_some_and(|s| s.token == Token::Comma) {
                    self.at += 1;
                    values.push(self.value()?);
                }
                self.expect(&Token::RBracket, "`]` or `,`")?;
                return Ok(Expr::In { field, values });
            }
            _ => {
                return Err(SegmentError::at(
                    column,
                    format!(
                        "expected a comparison after {}: =, !=, <, <=, >, >=, contains, starts_with, in [...], is set",
                        field.text
                    ),
                ));
            }
        };
        self.at += 1;
        Ok(Expr::Compare {
            field,
            op,
            value: self.value()?,
        })
    }

    fn value(&mut self) -> Result<Value, SegmentError> {
        let column = self.column();
        let literal = match self.next().map(|s| s.token.clone()) {
            Some(Token::Str(s)) => Literal::Text(s),
            Some(Token::Number(n)) => Literal::Number(n),
            Some(Token::Minus) => match self.next().map(|s| s.token.clone()) {
                Some(Token::Number(n)) => Literal::Number(-n),
                _ => return Err(SegmentError::at(column, "expected a number after `-`")),
            },
            Some(Token::Duration(ms)) => Literal::Duration(ms),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("now") => {
                self.expect(&Token::LParen, "`(` after now")?;
                self.expect(&Token::RParen, "`)` after now(")?;
                let sign = match self.peek().map(|s| &s.token) {
                    Some(Token::Minus) => -1,
                    Some(Token::Plus) => 1,
                    _ => {
                        return Ok(Value {
                            literal: Literal::Now(0),
                            column,
                        });
                    }
                };
                self.at += 1;
                match self.next().map(|s| s.token.clone()) {
                    Some(Token::Duration(ms)) => Literal::Now(sign * ms),
                    _ => {
                        return Err(SegmentError::at(
                            self.tokens.get(self.at - 1).map_or(self.end, |s| s.column),
                            "expected a duration such as 30d after now() -",
                        ));
                    }
                }
            }
            _ => {
                return Err(SegmentError::at(
                    column,
                    "expected a value: \"text\", a number, true, false, a duration (30d) or now()",
                ));
            }
        };
        Ok(Value { literal, column })
    }
}

/// The syntax tree of a segment; `None` for an empty text (every contact).
pub fn parse(tokens: &[Spanned], text_len: usize) -> Result<Option<Expr>, SegmentError> {
    if tokens.is_empty() {
        return Ok(None);
    }
    let mut parser = Parser {
        tokens,
        at: 0,
        end: text_len + 1,
        depth: 0,
    };
    let expr = parser.or()?;
    if let Some(extra) = parser.peek() {
        return Err(SegmentError::at(
            extra.column,
            "expected `and`, `or` or the end",
        ));
    }
    Ok(Some(expr))
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokens;
    use super::*;

    fn tree(text: &str) -> Result<Option<Expr>, SegmentError> {
        parse(&tokens(text)?, text.chars().count())
    }

    #[test]
    fn and_binds_tighter_than_or_and_not_tighter_than_and() {
        let Some(Expr::Or(parts)) = tree("a = 1 or b = 2 and not c is set").unwrap() else {
            panic!("not an or");
        };
        assert_eq!(parts.len(), 2);
        let Expr::And(right) = &parts[1] else {
            panic!("and under or: {parts:?}")
        };
        assert!(
            matches!(&right[1], Expr::Not(inner) if matches!(**inner, Expr::IsSet { set: true, .. }))
        );
    }

    #[test]
    fn calls_lists_and_time_values() {
        let Some(Expr::And(parts)) =
            tree(r#"opened(within: 90d) and plan in ["pro", "team"] and signed_up > now() - 30d"#)
                .unwrap()
        else {
            panic!("and");
        };
        assert!(
            matches!(&parts[0], Expr::Call { name, args } if name.text == "opened"
            && args[0].key.as_ref().is_some_and(|k| k.text == "within")
            && args[0].value.literal == Literal::Duration(90 * 86_400_000))
        );
        assert!(matches!(&parts[1], Expr::In { values, .. } if values.len() == 2));
        assert!(
            matches!(&parts[2], Expr::Compare { op: CmpOp::Gt, value, .. }
            if value.literal == Literal::Now(-30 * 86_400_000))
        );
        assert_eq!(tree("  ").unwrap(), None);
    }

    #[test]
    fn errors_point_at_the_trouble() {
        let column = |text: &str| tree(text).unwrap_err().column;
        assert_eq!(column("country ="), 10, "value missing at the end");
        assert_eq!(column("country JP"), 9);
        assert_eq!(column("(a = 1"), 7);
        assert_eq!(column("a = 1 b = 2"), 7);
        assert_eq!(column("plan in [\"a\" \"b\"]"), 14);
        assert_eq!(column("x is maybe"), 6);
        let deep = "(".repeat(2000) + "a = 1" + &")".repeat(2000);
        assert_eq!(
            column(&deep),
            65,
            "refused at the 65th level, not a stack overflow"
        );
        let nots = "not ".repeat(2000) + "a is set";
        assert!(tree(&nots).is_err());
    }
}
