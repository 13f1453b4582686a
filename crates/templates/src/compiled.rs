//! A message's parts parsed once and rendered many times: a campaign renders the same
//! subject, text and HTML for every recipient, so parsing them per recipient (what
//! [`crate::render_parts`] does for a single send) would be most of the work. Renders
//! exactly what [`crate::render_parts`] renders, with the same fuel and size limits.

use minijinja::Environment;
use serde_json::{Value, json};

use crate::{Dialect, PartError, Rendered, handlebars, mailjet, native};

const SUBJECT: &str = "subject.txt";
const HTML: &str = "html.html";
const TEXT: &str = "text.txt";

enum Engine {
    /// Native and Mailjet (translated to native): templates named so that HTML escapes.
    Jinja(Environment<'static>),
    Handlebars {
        subject: handlebars::Template,
        html: Option<handlebars::Template>,
        text: Option<handlebars::Template>,
    },
}

/// A version's parts, parsed.
pub struct Compiled {
    dialect: Dialect,
    engine: Engine,
    has_html: bool,
    has_text: bool,
}

fn failed(part: &'static str) -> impl Fn(String) -> PartError {
    move |message| PartError { part, message }
}

impl Compiled {
    /// Parses the parts; the first that does not parse is named.
    pub fn new(
        dialect: Dialect,
        subject: &str,
        html: Option<&str>,
        text: Option<&str>,
    ) -> Result<Compiled, PartError> {
        let engine = match dialect {
            Dialect::Native | Dialect::Mailjet => {
                let source = |s: &str| match dialect {
                    Dialect::Mailjet => mailjet::from_mailjet(s),
                    _ => s.to_string(),
                };
                let mut env = native::environment();
                let mut add = |name: &'static str, part: &'static str, text: &str| {
                    env.add_template_owned(name, source(text))
                        .map_err(|e| failed(part)(native::describe(e)))
                };
                add(SUBJECT, "subject", subject)?;
                if let Some(html) = html {
                    add(HTML, "html", html)?;
                }
                if let Some(text) = text {
                    add(TEXT, "text", text)?;
                }
                Engine::Jinja(env)
            }
            Dialect::Handlebars => {
                let parse = |part: &'static str, source: &str| {
                    handlebars::parse(source).map_err(|e| failed(part)(e.to_string()))
                };
                Engine::Handlebars {
                    subject: parse("subject", subject)?,
                    html: html.map(|h| parse("html", h)).transpose()?,
                    text: text.map(|t| parse("text", t)).transpose()?,
                }
            }
        };
        Ok(Compiled {
            dialect,
            engine,
            has_html: html.is_some(),
            has_text: text.is_some(),
        })
    }

    /// The parts rendered with `data`, subject first; the first that fails is named.
    pub fn render(&self, data: &Value) -> Result<Rendered, PartError> {
        match &self.engine {
            Engine::Jinja(env) => {
                let wrapped;
                let data = match self.dialect {
                    Dialect::Mailjet => {
                        wrapped = json!({ "var": data, "data": data });
                        &wrapped
                    }
                    _ => data,
                };
                let context = minijinja::Value::from(minijinja::value::Serde(data));
                let one = |name: &str, part: &'static str| -> Result<String, PartError> {
                    let rendered = env
                        .get_template(name)
                        .and_then(|t| t.render(&context))
                        .map_err(|e| failed(part)(native::describe(e)))?;
                    if rendered.len() > native::RENDERED_BYTES_MAX {
                        return Err(failed(part)(format!(
                            "renders to more than {} bytes",
                            native::RENDERED_BYTES_MAX
                        )));
                    }
                    Ok(rendered)
                };
                Ok(Rendered {
                    subject: one(SUBJECT, "subject")?,
                    html: self.has_html.then(|| one(HTML, "html")).transpose()?,
                    text: self.has_text.then(|| one(TEXT, "text")).transpose()?,
                })
            }
            Engine::Handlebars {
                subject,
                html,
                text,
            } => {
                let err = |part: &'static str| {
                    move |e: handlebars::TemplateError| failed(part)(e.to_string())
                };
                Ok(Rendered {
                    subject: subject.render_plain(data).map_err(err("subject"))?,
                    html: html
                        .as_ref()
                        .map(|h| h.render(data).map_err(err("html")))
                        .transpose()?,
                    text: text
                        .as_ref()
                        .map(|t| t.render_plain(data).map_err(err("text")))
                        .transpose()?,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render_parts;

    #[test]
    fn renders_what_render_parts_renders_in_every_dialect() {
        let data = json!({"name": "<Ann>", "items": [1, 2], "vip": true});
        let cases = [
            (
                Dialect::Native,
                "Hi {{ name }}",
                "<p>{{ name }}{% for i in items %}{{ i }}{% endfor %}</p>",
                "Hi {{ name }}{% if vip %} (vip){% endif %}",
            ),
            (
                Dialect::Mailjet,
                "Hi {{var:name}}",
                "<p>{{var:name}}</p>",
                "Hi {{var:missing:\"friend\"}}",
            ),
            (
                Dialect::Handlebars,
                "Hi {{name}}",
                "<p>{{name}}{{#each items}}{{this}}{{/each}}</p>",
                "Hi {{{name}}}{{#if vip}} (vip){{/if}}",
            ),
        ];
        for (dialect, subject, html, text) in cases {
            let compiled = Compiled::new(dialect, subject, Some(html), Some(text)).expect("parses");
            for _ in 0..2 {
                assert_eq!(
                    compiled.render(&data),
                    render_parts(dialect, subject, Some(html), Some(text), &data),
                    "{dialect:?}"
                );
            }
            let no_html = Compiled::new(dialect, subject, None, Some(text)).expect("parses");
            assert_eq!(no_html.render(&data).expect("renders").html, None);
        }
    }

    #[test]
    fn errors_name_the_part() {
        let broken = Compiled::new(Dialect::Native, "ok", Some("{% if %}"), None);
        assert_eq!(broken.err().map(|e| e.part), Some("html"));
        let compiled =
            Compiled::new(Dialect::Native, "Hi {{ first_name }}", None, None).expect("parses");
        let missing = compiled.render(&json!({})).expect_err("undefined");
        assert_eq!(missing.part, "subject");
        assert!(
            missing.message.contains("first_name"),
            "{}",
            missing.message
        );
        // Fuel is per render: an endless loop stops, and the next render still works.
        let looping = Compiled::new(
            Dialect::Native,
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            None,
            None,
        )
        .expect("parses");
        assert!(looping.render(&json!({})).is_err());
        assert!(looping.render(&json!({})).is_err());
        assert_eq!(
            compiled
                .render(&json!({"first_name": "Bo"}))
                .expect("renders")
                .subject,
            "Hi Bo"
        );
    }
}
