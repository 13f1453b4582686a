//! Template variables in messages sent with their own subject and bodies: rendering is the
//! `templates` crate's (every dialect, sandboxed); here a message's parts are rendered and
//! checked like the fields they are.

use serde_json::Value;
pub use templates::Part;
pub use templates::mailjet::from_mailjet;
pub use templates::native::render;

impl crate::native::Check {
    /// Renders a message's subject, text and HTML (`fields` name them, in that order) with
    /// `variables`; a template error is an error of its field. The rendered subject is
    /// checked like any header text: a variable cannot inject a header.
    pub(crate) fn render_parts(
        &mut self,
        fields: &[String; 3],
        variables: &Value,
        subject: &mut String,
        text: &mut Option<String>,
        html: &mut Option<String>,
    ) {
        match render(subject, variables, Part::Subject) {
            Ok(rendered) => {
                if let Some(line) = self.line(&fields[0], &Value::String(rendered)) {
                    *subject = line;
                }
            }
            Err(err) => self.fail(fields[0].clone(), err),
        }
        for (field, body, part) in [
            (&fields[1], text, Part::Text),
            (&fields[2], html, Part::Html),
        ] {
            let Some(source) = body.as_deref() else {
                continue;
            };
            match render(source, variables, part) {
                Ok(rendered) => *body = Some(rendered),
                Err(err) => self.fail(field.clone(), err),
            }
        }
    }
}
