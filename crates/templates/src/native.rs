//! The native dialect: a message's subject, text and HTML rendered with minijinja against
//! the variables sent with it. Templates come from senders, so rendering is sandboxed: a
//! fuel budget bounds the work (no endless loops), recursion is limited, printing an
//! undefined variable is an error naming it (a message never goes out with a hole in it),
//! and values in HTML are escaped. [`crate::mailjet`] reads Mailjet's syntax with the same
//! engine.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

use crate::Part;

/// Instructions one template may run.
const FUEL: u64 = 100_000;
/// Longest rendered result, in bytes.
pub const RENDERED_BYTES_MAX: usize = 2 << 20;

pub(crate) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(50);
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env
}

/// Renders `source` with `variables` (a JSON object: `{{ name }}`).
pub fn render(source: &str, variables: &Value, part: Part) -> Result<String, String> {
    // The template name only chooses auto-escaping.
    let name = match part {
        Part::Html => "part.html",
        Part::Subject | Part::Text => "part.txt",
    };
    let rendered = environment()
        .render_named_str(
            name,
            source,
            minijinja::Value::from(minijinja::value::Serde(variables)),
        )
        .map_err(describe)?;
    if rendered.len() > RENDERED_BYTES_MAX {
        return Err(format!("renders to more than {RENDERED_BYTES_MAX} bytes"));
    }
    Ok(rendered)
}

pub(crate) fn describe(err: minijinja::Error) -> String {
    let what = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    match err.line() {
        Some(line) => format!("template error on line {line}: {what}"),
        None => format!("template error: {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailjet::from_mailjet;
    use serde_json::json;

    #[test]
    fn variables_fill_the_template_and_html_is_escaped() {
        let vars = json!({"name": "<Ann>", "items": [1, 2]});
        assert_eq!(
            render(
                "Hi {{ name }}: {% for i in items %}{{ i }}{% endfor %}",
                &vars,
                Part::Text
            ),
            Ok("Hi <Ann>: 12".into())
        );
        assert_eq!(
            render("<p>{{ name }}</p>", &vars, Part::Html),
            Ok("<p>&lt;Ann&gt;</p>".into())
        );
    }

    #[test]
    fn an_undefined_variable_is_an_error_naming_the_line() {
        let err = render("line one\n{{ missing }}", &json!({}), Part::Text).expect_err("undefined");
        assert!(err.contains("line 2") && err.contains("undefined"), "{err}");
        // Tested for, it is merely false.
        assert_eq!(
            render("{% if missing %}x{% endif %}ok", &json!({}), Part::Text),
            Ok("ok".into())
        );
    }

    #[test]
    fn endless_work_runs_out_of_fuel() {
        let err = render(
            "{% for a in range(1000) %}{% for b in range(1000) %}x{% endfor %}{% endfor %}",
            &json!({}),
            Part::Text,
        )
        .expect_err("out of fuel");
        assert!(err.contains("fuel"), "{err}");
    }

    #[test]
    fn mailjet_syntax_renders_with_defaults() {
        let source = from_mailjet(
            r#"Dear {{var:first_name:"customer"}}, order {{ var:order }}{% if var:vip %} (VIP){% endif %}. var:plain"#,
        );
        let vars = json!({"var": {"order": 42, "vip": true}});
        assert_eq!(
            render(&source, &vars, Part::Text),
            Ok("Dear customer, order 42 (VIP). var:plain".into())
        );
    }
}
