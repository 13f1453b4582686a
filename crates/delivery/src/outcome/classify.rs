//! Failure categories, from enhanced status codes and reply text.
//!
//! Text rules (shipped in `bounce-rules.toml`, extended by operators) are checked first, since
//! the same code means different things at different providers; then the enhanced status code;
//! then the basic code.

use regex::Regex;
use serde::Deserialize;

/// The shipped text rules.
pub const SHIPPED: &str = include_str!("../../bounce-rules.toml");

/// Why a recipient failed (documented in docs/operations.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    InvalidRecipient,
    MailboxFull,
    PolicyBlock,
    RateLimited,
    DnsFailure,
    TlsFailure,
    MessageTooBig,
    ContentRejected,
    Other,
}

impl Category {
    pub const ALL: [Category; 9] = [
        Category::InvalidRecipient,
        Category::MailboxFull,
        Category::PolicyBlock,
        Category::RateLimited,
        Category::DnsFailure,
        Category::TlsFailure,
        Category::MessageTooBig,
        Category::ContentRejected,
        Category::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::InvalidRecipient => "invalid_recipient",
            Category::MailboxFull => "mailbox_full",
            Category::PolicyBlock => "policy_block",
            Category::RateLimited => "rate_limited",
            Category::DnsFailure => "dns_failure",
            Category::TlsFailure => "tls_failure",
            Category::MessageTooBig => "message_too_big",
            Category::ContentRejected => "content_rejected",
            Category::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// A text rule: replies whose text matches are in `category`.
#[derive(Debug, Clone)]
pub struct TextRule {
    pub pattern: Regex,
    pub category: Category,
}

/// The classifier: text rules, then codes.
#[derive(Debug, Clone)]
pub struct Classifier {
    rules: Vec<TextRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    category: String,
    pattern: String,
}

impl Default for Classifier {
    fn default() -> Self {
        Classifier::from_files(&[]).unwrap_or(Classifier { rules: Vec::new() })
    }
}

impl Classifier {
    /// Operator files first (their rules win), then the shipped rules.
    pub fn from_files(operator: &[&str]) -> Result<Classifier, String> {
        let mut rules = Vec::new();
        for (n, text) in operator.iter().chain(std::iter::once(&SHIPPED)).enumerate() {
            let raw: RawRules = toml::from_str(text).map_err(|e| e.to_string())?;
            for (i, r) in raw.rule.into_iter().enumerate() {
                let at = format!("file {n} rule[{i}]");
                let category = Category::parse(&r.category).ok_or_else(|| {
                    format!("{at}.category: {:?} is not a known category", r.category)
                })?;
                let pattern = Regex::new(&r.pattern).map_err(|e| format!("{at}.pattern: {e}"))?;
                rules.push(TextRule { pattern, category });
            }
        }
        Ok(Classifier { rules })
    }

    /// The category of a failure reply.
    pub fn classify(&self, code: u16, enhanced: Option<(u8, u16, u16)>, text: &str) -> Category {
        if let Some(rule) = self.rules.iter().find(|r| r.pattern.is_match(text)) {
            return rule.category;
        }
        if let Some((_, subject, detail)) = enhanced {
            return by_enhanced(subject, detail);
        }
        match code {
            550 | 551 | 553 => Category::InvalidRecipient,
            552 => Category::MessageTooBig,
            554 => Category::PolicyBlock,
            421 | 450 | 451 | 452 => Category::Other,
            _ => Category::Other,
        }
    }
}

/// RFC 3463 subject and detail to a category.
fn by_enhanced(subject: u16, detail: u16) -> Category {
    match (subject, detail) {
        (1, 2) => Category::DnsFailure,
        (1, _) => Category::InvalidRecipient,
        (2, 1) => Category::InvalidRecipient,
        (2, 2) => Category::MailboxFull,
        (2, 3) | (3, 4) => Category::MessageTooBig,
        (4, 3) => Category::DnsFailure,
        (4, 5) => Category::RateLimited,
        (6, _) => Category::ContentRejected,
        (7, 10) | (7, 11) => Category::TlsFailure,
        (7, _) => Category::PolicyBlock,
        _ => Category::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_text_classify_as_documented() {
        let c = Classifier::default();
        let cases = [
            (
                550,
                Some((5, 1, 1)),
                "No such user",
                Category::InvalidRecipient,
            ),
            (552, Some((5, 2, 2)), "Over quota", Category::MailboxFull),
            (
                452,
                Some((4, 2, 2)),
                "The email account that you tried to reach is over quota",
                Category::MailboxFull,
            ),
            (
                552,
                Some((5, 3, 4)),
                "Message size exceeds fixed limit",
                Category::MessageTooBig,
            ),
            (
                554,
                Some((5, 7, 1)),
                "Service unavailable; Client host blocked using zen.spamhaus.org",
                Category::PolicyBlock,
            ),
            (
                550,
                Some((5, 7, 1)),
                "Message rejected as spam by Content Filtering",
                Category::ContentRejected,
            ),
            (
                421,
                Some((4, 7, 0)),
                "[TSS04] Messages temporarily deferred due to unexpected volume",
                Category::RateLimited,
            ),
            (
                421,
                Some((4, 7, 28)),
                "Our system has detected an unusual rate of unsolicited mail",
                Category::RateLimited,
            ),
            (
                550,
                Some((5, 1, 10)),
                "Recipient address has null MX",
                Category::InvalidRecipient,
            ),
            (
                530,
                Some((5, 7, 10)),
                "Must issue a STARTTLS command first",
                Category::TlsFailure,
            ),
            (
                451,
                Some((4, 4, 3)),
                "DNS lookup failed",
                Category::DnsFailure,
            ),
            (550, None, "User unknown", Category::InvalidRecipient),
            (451, None, "Local error in processing", Category::Other),
        ];
        for (code, enhanced, text, want) in cases {
            assert_eq!(c.classify(code, enhanced, text), want, "{code} {text}");
        }
    }

    #[test]
    fn operator_rules_come_first_and_bad_ones_are_named() {
        let c = Classifier::from_files(&[
            "[[rule]]\ncategory = \"policy_block\"\npattern = \"(?i)no such user\"\n",
        ])
        .unwrap();
        assert_eq!(
            c.classify(550, Some((5, 1, 1)), "No such user"),
            Category::PolicyBlock
        );
        let err = Classifier::from_files(&["[[rule]]\ncategory = \"nope\"\npattern = \"x\"\n"])
            .unwrap_err();
        assert!(err.contains("category"), "{err}");
    }
}
