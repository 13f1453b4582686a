//! Mailjet's template language (`{{var:name}}`, `{{var:name:"default"}}`, and for contact
//! properties `{{data:name}}` or a campaign's `[[data:name:"default"]]`), read as the
//! native dialect with the variables under `var` and `data`.

use std::sync::LazyLock;

static MAILJET_TAG: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"(?s)\{\{.*?\}\}|\{%.*?%\}").expect("valid pattern"));
static MAILJET_VAR: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r#"(var|data):([A-Za-z_][A-Za-z0-9_]*)(?::("(?:[^"\\]|\\.)*"|-?[0-9]+(?:\.[0-9]+)?))?"#,
    )
    .expect("valid pattern")
});

/// A campaign's contact-property tag, `[[data:name:"default"]]`.
static MAILJET_DATA_TAG: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r#"\[\[\s*(data:[A-Za-z_][A-Za-z0-9_]*(?::"(?:[^"\\]|\\.)*")?)\s*\]\]"#)
        .expect("valid pattern")
});

/// Mailjet's template language in minijinja terms: inside `{{ }}` and `{% %}`,
/// `var:name` (or `data:name`) reads the variable and `var:name:"default"` falls back to
/// the default; `[[data:name]]` is `{{data:name}}`.
pub fn from_mailjet(source: &str) -> String {
    let source = MAILJET_DATA_TAG.replace_all(source, "{{$1}}");
    MAILJET_TAG
        .replace_all(&source, |tag: &regex::Captures<'_>| {
            MAILJET_VAR
                .replace_all(&tag[0], |var: &regex::Captures<'_>| match var.get(3) {
                    Some(default) => {
                        format!("({}.{}|default({}))", &var[1], &var[2], default.as_str())
                    }
                    None => format!("{}.{}", &var[1], &var[2]),
                })
                .into_owned()
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::from_mailjet;

    #[test]
    fn variables_and_contact_data_read_as_native() {
        assert_eq!(from_mailjet("Hi {{var:name}}"), "Hi {{var.name}}");
        assert_eq!(
            from_mailjet(r#"Hi {{var:name:"you"}}, {{data:city}}"#),
            r#"Hi {{(var.name|default("you"))}}, {{data.city}}"#
        );
        assert_eq!(
            from_mailjet(r#"Dear [[data:firstname:"friend"]]!"#),
            r#"Dear {{(data.firstname|default("friend"))}}!"#
        );
        assert_eq!(
            from_mailjet("[[ data:age ]] [[nope]]"),
            "{{data.age}} [[nope]]"
        );
    }
}
