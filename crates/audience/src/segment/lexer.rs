//! Tokens of the segment language, each with the character position it starts at (for
//! error messages: "at column 12").

use super::SegmentError;

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// A name: a property, a field, a function, or a keyword (`and`, `or`, `not`, `in`,
    /// `is`, `set`, `true`, `false`, `contains`, `starts_with`).
    Ident(String),
    Str(String),
    Number(f64),
    /// `30d`, `12h`, `15m`, `2w`, in milliseconds.
    Duration(i64),
    /// `=`, `==`, `!=`, `<`, `<=`, `>`, `>=`.
    Cmp(&'static str),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Colon,
    Minus,
    Plus,
}

/// A token and its column (1-based, in characters).
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    pub token: Token,
    pub column: usize,
}

/// Longest segment text accepted.
pub const TEXT_MAX: usize = 10_000;

pub fn tokens(text: &str) -> Result<Vec<Spanned>, SegmentError> {
    if text.len() > TEXT_MAX {
        return Err(SegmentError::at(
            1,
            "a segment is at most 10,000 characters",
        ));
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let push = |out: &mut Vec<Spanned>, token| out.push(Spanned { token, column });
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | '[' | ']' | ',' | ':' | '-' | '+' => {
                let token = match c {
                    '(' => Token::LParen,
                    ')' => Token::RParen,
                    '[' => Token::LBracket,
                    ']' => Token::RBracket,
                    ',' => Token::Comma,
                    ':' => Token::Colon,
                    '-' => Token::Minus,
                    _ => Token::Plus,
                };
                push(&mut out, token);
                i += 1;
            }
            '=' | '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('=', Some('=')) => ("=", 2),
                    ('=', _) => ("=", 1),
                    ('!', Some('=')) => ("!=", 2),
                    ('<', Some('=')) => ("<=", 2),
                    ('<', Some('>')) => ("!=", 2),
                    ('<', _) => ("<", 1),
                    ('>', Some('=')) => (">=", 2),
                    ('>', _) => (">", 1),
                    _ => return Err(SegmentError::at(column, "`!` must be followed by `=`")),
                };
                push(&mut out, Token::Cmp(op));
                i += len;
            }
            '"' | '\'' => {
                let quote = c;
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(SegmentError::at(column, "a text is not closed")),
                        Some('\\') => {
                            match chars.get(i + 1) {
                                Some(escaped) => value.push(*escaped),
                                None => {
                                    return Err(SegmentError::at(column, "a text is not closed"));
                                }
                            }
                            i += 2;
                        }
                        Some(ch) if *ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            value.push(*ch);
                            i += 1;
                        }
                    }
                }
                push(&mut out, Token::Str(value));
            }
            c if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let digits: String = chars[start..i].iter().collect();
                let number: f64 = digits
                    .parse()
                    .map_err(|_| SegmentError::at(column, format!("{digits:?} is not a number")))?;
                let unit = chars.get(i).copied().filter(char::is_ascii_alphabetic);
                let after_unit = chars
                    .get(i + 1)
                    .is_none_or(|n| !n.is_ascii_alphanumeric() && *n != '_');
                match unit {
                    Some(u) if after_unit && "mhdw".contains(u) => {
                        let ms = match u {
                            'm' => 60_000.0,
                            'h' => 3_600_000.0,
                            'd' => 86_400_000.0,
                            _ => 7.0 * 86_400_000.0,
                        };
                        push(&mut out, Token::Duration((number * ms) as i64));
                        i += 1;
                    }
                    Some(_) => {
                        return Err(SegmentError::at(
                            column,
                            "a duration is a number and m, h, d or w (30d)",
                        ));
                    }
                    None => push(&mut out, Token::Number(number)),
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                push(&mut out, Token::Ident(word));
            }
            other => {
                return Err(SegmentError::at(column, format!("unexpected {other:?}")));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_with_columns() {
        let got = tokens(r#"country = "JP" and signed_up > now() - 30d"#).unwrap();
        let kinds: Vec<Token> = got.iter().map(|s| s.token.clone()).collect();
        assert_eq!(
            kinds,
            [
                Token::Ident("country".into()),
                Token::Cmp("="),
                Token::Str("JP".into()),
                Token::Ident("and".into()),
                Token::Ident("signed_up".into()),
                Token::Cmp(">"),
                Token::Ident("now".into()),
                Token::LParen,
                Token::RParen,
                Token::Minus,
                Token::Duration(30 * 86_400_000),
            ]
        );
        assert_eq!(got[2].column, 11);
        assert_eq!(got[10].column, 40);
    }

    #[test]
    fn errors_name_their_column() {
        let err = tokens(r#"city = "Kyo"#).unwrap_err();
        assert_eq!(err.column, 8);
        assert_eq!(tokens("a ! b").unwrap_err().column, 3);
        assert_eq!(tokens("x > 3y").unwrap_err().column, 5);
        assert_eq!(tokens("x ; y").unwrap_err().column, 3);
        assert_eq!(
            tokens(r#"name = "O\"Brien""#).unwrap()[2].token,
            Token::Str("O\"Brien".into())
        );
    }
}
