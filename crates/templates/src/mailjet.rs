//! Mailjet's template language (`{{var:name}}`, `{{var:name:"default"}}`), read as the
//! native dialect with the variables under `var`.

use std::sync::LazyLock;

static MAILJET_TAG: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"(?s)\{\{.*?\}\}|\{%.*?%\}").expect("valid pattern"));
static MAILJET_VAR: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r#"var:([A-Za-z_][A-Za-z0-9_]*)(?::("(?:[^"\\]|\\.)*"|-?[0-9]+(?:\.[0-9]+)?))?"#,
    )
    .expect("valid pattern")
});

/// Mailjet's template language in minijinja terms: inside `{{ }}` and `{% %}`,
/// `var:name` reads the variable and `var:name:"default"` falls back to the default.
pub fn from_mailjet(source: &str) -> String {
    MAILJET_TAG
        .replace_all(source, |tag: &regex::Captures<'_>| {
            MAILJET_VAR
                .replace_all(&tag[0], |var: &regex::Captures<'_>| match var.get(2) {
                    Some(default) => format!("(var.{}|default({}))", &var[1], default.as_str()),
                    None => format!("var.{}", &var[1]),
                })
                .into_owned()
        })
        .into_owned()
}
