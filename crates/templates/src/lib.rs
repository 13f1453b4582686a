//! Message templates in the three dialects tsubame speaks, rendered against a message's JSON
//! data: [`native`] (minijinja, sandboxed by a fuel budget), [`mailjet`] (Mailjet's template
//! language, read as the native one) and [`handlebars`] (the subset SendGrid's dynamic
//! templates use). [`render`] picks the dialect.

pub mod compiled;
pub mod handlebars;
pub mod mailjet;
pub mod native;

use serde_json::{Value, json};

/// Which part of a message a template is: HTML is escaped, the others are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Subject,
    Text,
    Html,
}

/// How a template's text is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// minijinja (`{{ name }}`, `{% if %}`).
    Native,
    /// Mailjet's template language (`{{var:name:"default"}}`).
    Mailjet,
    /// The Handlebars subset of SendGrid's dynamic templates.
    Handlebars,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Native => "native",
            Dialect::Mailjet => "mailjet",
            Dialect::Handlebars => "handlebars",
        }
    }

    pub fn parse(text: &str) -> Option<Dialect> {
        [Dialect::Native, Dialect::Mailjet, Dialect::Handlebars]
            .into_iter()
            .find(|d| d.as_str() == text)
    }
}

/// One part rendered in a dialect; the error says what and where.
pub fn render(dialect: Dialect, source: &str, data: &Value, part: Part) -> Result<String, String> {
    match dialect {
        Dialect::Native => native::render(source, data, part),
        // Mailjet's `{{var:name}}` reads the variables under `var`.
        Dialect::Mailjet => native::render(
            &mailjet::from_mailjet(source),
            &json!({ "var": data, "data": data }),
            part,
        ),
        Dialect::Handlebars => {
            let template = handlebars::parse(source).map_err(|e| e.to_string())?;
            match part {
                Part::Html => template.render(data),
                Part::Subject | Part::Text => template.render_plain(data),
            }
            .map_err(|e| e.to_string())
        }
    }
}

/// A message's three parts rendered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
}

/// A part that did not render: which (`subject`, `html` or `text`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartError {
    pub part: &'static str,
    pub message: String,
}

/// A version's subject, HTML and text rendered in `dialect` with `data`, in that order; the
/// first part that fails is named.
pub fn render_parts(
    dialect: Dialect,
    subject: &str,
    html: Option<&str>,
    text: Option<&str>,
    data: &Value,
) -> Result<Rendered, PartError> {
    let one = |name: &'static str, source: &str, part: Part| {
        render(dialect, source, data, part).map_err(|message| PartError {
            part: name,
            message,
        })
    };
    Ok(Rendered {
        subject: one("subject", subject, Part::Subject)?,
        html: html.map(|h| one("html", h, Part::Html)).transpose()?,
        text: text.map(|t| one("text", t, Part::Text)).transpose()?,
    })
}
