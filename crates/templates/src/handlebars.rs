//! The Handlebars subset of SendGrid's dynamic templates: `{{path}}` (HTML-escaped),
//! `{{{path}}}` (raw), `{{#if path}} … {{else}} … {{/if}}`, `{{#unless path}} … {{/unless}}`,
//! `{{#each path}} … {{else}} … {{/each}}` (with `this`, `@index`, `@first`, `@last`, `@key`
//! and `../` to the enclosing context), nested paths (`a.b.c`, `a.[0]`), comments
//! (`{{! … }}`, `{{!-- … --}}`). Parsed once into a tree, then rendered: no I/O, bounded
//! (nesting depth and output size), and a missing value renders as nothing, as in
//! Handlebars.

use serde_json::Value;

/// Deepest block nesting accepted.
pub const DEPTH_MAX: usize = 32;
/// Largest output, in bytes.
pub const OUTPUT_MAX: usize = 2 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("the rendered text is larger than {OUTPUT_MAX} bytes")]
    TooLarge,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Value {
        path: Path,
        escape: bool,
    },
    If {
        path: Path,
        negate: bool,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Each {
        path: Path,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// `../` steps up, then the segments (`this` is no segment).
#[derive(Debug, Clone, PartialEq)]
struct Path {
    up: usize,
    segments: Vec<String>,
    /// `@index`, `@first`, `@last`, `@key`.
    data: Option<String>,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

fn syntax(source: &str, at: usize, message: impl Into<String>) -> TemplateError {
    TemplateError::Syntax {
        line: source[..at.min(source.len())].matches('\n').count() + 1,
        message: message.into(),
    }
}

fn parse_path(text: &str) -> Option<Path> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    if let Some(name) = rest.strip_prefix('@') {
        return matches!(name, "index" | "first" | "last" | "key").then(|| Path {
            up: 0,
            segments: Vec::new(),
            data: Some(name.to_string()),
        });
    }
    let mut up = 0;
    while let Some(after) = rest.strip_prefix("../") {
        up += 1;
        rest = after;
    }
    let mut segments = Vec::new();
    for part in rest.split('.') {
        let part = part.trim_start_matches('[').trim_end_matches(']');
        if part.is_empty() || part.contains(char::is_whitespace) {
            return None;
        }
        if part != "this" {
            segments.push(part.to_string());
        }
    }
    Some(Path {
        up,
        segments,
        data: None,
    })
}

/// One `{{…}}` tag.
enum Tag {
    Value(Path, bool),
    Open(String, Path),
    Else,
    Close(String),
    Comment,
}

fn tag(source: &str, at: usize, inner: &str, raw: bool) -> Result<Tag, TemplateError> {
    let inner = inner
        .trim()
        .trim_start_matches('~')
        .trim_end_matches('~')
        .trim();
    if inner.starts_with('!') {
        return Ok(Tag::Comment);
    }
    if raw {
        return parse_path(inner)
            .map(|p| Tag::Value(p, false))
            .ok_or_else(|| syntax(source, at, format!("{{{{{{{inner}}}}}}}: not a value")));
    }
    if let Some(open) = inner.strip_prefix('#') {
        let (helper, argument) = open.split_once(char::is_whitespace).unwrap_or((open, ""));
        if !matches!(helper, "if" | "unless" | "each") {
            return Err(syntax(
                source,
                at,
                format!("{{{{#{helper}}}}} is not supported (if, unless, each)"),
            ));
        }
        let path = parse_path(argument)
            .ok_or_else(|| syntax(source, at, format!("{{{{#{helper}}}}} needs a value")))?;
        return Ok(Tag::Open(helper.to_string(), path));
    }
    if let Some(close) = inner.strip_prefix('/') {
        return Ok(Tag::Close(close.trim().to_string()));
    }
    if inner == "else" {
        return Ok(Tag::Else);
    }
    parse_path(inner)
        .map(|p| Tag::Value(p, true))
        .ok_or_else(|| {
            syntax(
                source,
                at,
                format!("{{{{{inner}}}}}: not a value or a supported helper"),
            )
        })
}

/// Parses a template; errors name the line.
pub fn parse(source: &str) -> Result<Template, TemplateError> {
    // Open blocks: (helper, path, nodes before else, nodes after else, in else, at).
    struct Open {
        helper: String,
        path: Path,
        first: Vec<Node>,
        second: Vec<Node>,
        in_else: bool,
        at: usize,
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut top: Vec<Node> = Vec::new();
    let mut at = 0;
    fn push(stack: &mut [Open], top: &mut Vec<Node>, node: Node) {
        match stack.last_mut() {
            Some(open) if open.in_else => open.second.push(node),
            Some(open) => open.first.push(node),
            None => top.push(node),
        }
    }
    while at < source.len() {
        let Some(start) = source[at..].find("{{").map(|i| at + i) else {
            push(&mut stack, &mut top, Node::Text(source[at..].to_string()));
            break;
        };
        if start > at {
            push(
                &mut stack,
                &mut top,
                Node::Text(source[at..start].to_string()),
            );
        }
        let raw = source[start..].starts_with("{{{");
        let long_comment = source[start..].starts_with("{{!--");
        let (open_len, close) = match (raw, long_comment) {
            (true, _) => (3, "}}}"),
            (_, true) => (5, "--}}"),
            _ => (2, "}}"),
        };
        let Some(end) = source[start + open_len..]
            .find(close)
            .map(|i| start + open_len + i)
        else {
            return Err(syntax(source, start, "a {{ is not closed"));
        };
        let inner = &source[start + open_len..end];
        at = end + close.len();
        if long_comment {
            continue;
        }
        match tag(source, start, inner, raw)? {
            Tag::Comment => {}
            Tag::Value(path, escape) => push(&mut stack, &mut top, Node::Value { path, escape }),
            Tag::Open(helper, path) => {
                if stack.len() >= DEPTH_MAX {
                    return Err(syntax(source, start, "blocks nested too deeply"));
                }
                stack.push(Open {
                    helper,
                    path,
                    first: Vec::new(),
                    second: Vec::new(),
                    in_else: false,
                    at: start,
                });
            }
            Tag::Else => match stack.last_mut() {
                Some(open) if !open.in_else => open.in_else = true,
                _ => return Err(syntax(source, start, "{{else}} outside a block")),
            },
            Tag::Close(helper) => {
                let Some(open) = stack.pop() else {
                    return Err(syntax(
                        source,
                        start,
                        format!("{{{{/{helper}}}}} closes nothing"),
                    ));
                };
                if open.helper != helper {
                    return Err(syntax(
                        source,
                        start,
                        format!("{{{{/{helper}}}}} closes {{{{#{}}}}}", open.helper),
                    ));
                }
                let node = match open.helper.as_str() {
                    "each" => Node::Each {
                        path: open.path,
                        body: open.first,
                        otherwise: open.second,
                    },
                    helper => Node::If {
                        path: open.path,
                        negate: helper == "unless",
                        then: open.first,
                        otherwise: open.second,
                    },
                };
                push(&mut stack, &mut top, node);
            }
        }
    }
    if let Some(open) = stack.last() {
        return Err(syntax(
            source,
            open.at,
            format!("{{{{#{}}}}} is not closed", open.helper),
        ));
    }
    Ok(Template { nodes: top })
}

/// Handlebars truthiness: false, null, missing, "", 0 and [] are false.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::Array(items)) => !items.is_empty(),
        _ => true,
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join(","),
        Value::Object(_) => "[object Object]".into(),
        other => other.to_string(),
    }
}

fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            '`' => out.push_str("&#x60;"),
            '=' => out.push_str("&#x3D;"),
            c => out.push(c),
        }
    }
}

/// A context frame: the value, and the loop data when inside `#each`.
struct Frame<'a> {
    value: &'a Value,
    index: Option<usize>,
    last: bool,
    key: Option<&'a str>,
}

fn lookup<'a>(frames: &[Frame<'a>], path: &Path) -> Option<Value> {
    let frame = frames.len().checked_sub(1 + path.up).map(|i| &frames[i])?;
    if let Some(data) = &path.data {
        return match data.as_str() {
            "index" => frame.index.map(Value::from),
            "first" => frame.index.map(|i| Value::Bool(i == 0)),
            "last" => frame.index.map(|_| Value::Bool(frame.last)),
            _ => frame.key.map(Value::from),
        };
    }
    let mut value = frame.value;
    for segment in &path.segments {
        value = match value {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value.clone())
}

fn render_nodes<'a>(
    nodes: &'a [Node],
    frames: &mut Vec<Frame<'a>>,
    html: bool,
    out: &mut String,
) -> Result<(), TemplateError> {
    for node in nodes {
        if out.len() > OUTPUT_MAX {
            return Err(TemplateError::TooLarge);
        }
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Value { path, escape: true } if html => {
                if let Some(value) = lookup(frames, path) {
                    escape(&text_of(&value), out);
                }
            }
            Node::Value { path, .. } => {
                if let Some(value) = lookup(frames, path) {
                    out.push_str(&text_of(&value));
                }
            }
            Node::If {
                path,
                negate,
                then,
                otherwise,
            } => {
                let yes = truthy(lookup(frames, path).as_ref()) != *negate;
                render_nodes(if yes { then } else { otherwise }, frames, html, out)?;
            }
            Node::Each {
                path,
                body,
                otherwise,
            } => {
                // The list is looked up in the frames, which borrow the data: keep an owned
                // copy alive for the loop's frames.
                let list = lookup(frames, path);
                let items: Vec<(Option<String>, Value)> = match list {
                    Some(Value::Array(items)) => items.into_iter().map(|v| (None, v)).collect(),
                    Some(Value::Object(map)) => {
                        map.into_iter().map(|(k, v)| (Some(k), v)).collect()
                    }
                    _ => Vec::new(),
                };
                if items.is_empty() {
                    render_nodes(otherwise, frames, html, out)?;
                    continue;
                }
                let count = items.len();
                for (i, (key, value)) in items.iter().enumerate() {
                    // The loop's frames borrow `items`: a fresh stack per item, dropped with it.
                    let mut inner: Vec<Frame<'_>> = Vec::with_capacity(frames.len() + 1);
                    for f in frames.iter() {
                        inner.push(Frame {
                            value: f.value,
                            index: f.index,
                            last: f.last,
                            key: f.key,
                        });
                    }
                    inner.push(Frame {
                        value,
                        index: Some(i),
                        last: i + 1 == count,
                        key: key.as_deref(),
                    });
                    render_nodes(body, &mut inner, html, out)?;
                }
            }
        }
    }
    Ok(())
}

impl Template {
    /// Renders HTML against `data` (the message's `dynamic_template_data`): `{{x}}` escaped.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        self.render_as(data, true)
    }

    /// Renders a subject or plain text: nothing is HTML-escaped.
    pub fn render_plain(&self, data: &Value) -> Result<String, TemplateError> {
        self.render_as(data, false)
    }

    fn render_as(&self, data: &Value, html: bool) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut frames = vec![Frame {
            value: data,
            index: None,
            last: false,
            key: None,
        }];
        render_nodes(&self.nodes, &mut frames, html, &mut out)?;
        Ok(out)
    }
}

/// Parses and renders in one go.
pub fn render(source: &str, data: &Value) -> Result<String, TemplateError> {
    parse(source)?.render(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_escaped_unless_tripled_and_paths_nest() {
        let data = json!({"guest": "Jane <Doe>", "order": {"id": 7, "items": ["a", "b"]}, "html": "<b>hi</b>"});
        assert_eq!(
            render("Hi {{guest}}, order {{order.id}} ({{order.items.[1]}}) {{{html}}} {{html}} {{missing}}!", &data).unwrap(),
            "Hi Jane &lt;Doe&gt;, order 7 (b) <b>hi</b> &lt;b&gt;hi&lt;/b&gt; !"
        );
    }

    #[test]
    fn conditions_follow_handlebars_truthiness() {
        let template =
            "{{#if english}}Hello{{else}}Bonjour{{/if}}{{#unless vip}} (standard){{/unless}}";
        assert_eq!(
            render(template, &json!({"english": true})).unwrap(),
            "Hello (standard)"
        );
        assert_eq!(
            render(template, &json!({"english": 0, "vip": true})).unwrap(),
            "Bonjour"
        );
        assert_eq!(
            render("{{#if list}}y{{else}}n{{/if}}", &json!({"list": []})).unwrap(),
            "n"
        );
        assert_eq!(
            render("{{#if s}}y{{else}}n{{/if}}", &json!({"s": ""})).unwrap(),
            "n"
        );
    }

    #[test]
    fn each_iterates_with_this_index_and_parent() {
        let data = json!({"shop": "Acme", "items": [{"name": "Tea", "qty": 2}, {"name": "Cake", "qty": 1}]});
        let template = "{{#each items}}{{@index}}:{{name}}x{{qty}}@{{../shop}}{{#if @last}}.{{else}}, {{/if}}{{/each}}";
        assert_eq!(
            render(template, &data).unwrap(),
            "0:Teax2@Acme, 1:Cakex1@Acme."
        );
        assert_eq!(
            render(
                "{{#each tags}}[{{this}}]{{/each}}",
                &json!({"tags": ["a", "<b>"]})
            )
            .unwrap(),
            "[a][&lt;b&gt;]"
        );
        assert_eq!(
            render("{{#each none}}x{{else}}empty{{/each}}", &json!({})).unwrap(),
            "empty"
        );
        assert_eq!(
            render(
                "{{#each o}}{{@key}}={{this}};{{/each}}",
                &json!({"o": {"a": 1, "b": 2}})
            )
            .unwrap(),
            "a=1;b=2;"
        );
    }

    #[test]
    fn comments_vanish_and_errors_name_the_line() {
        assert_eq!(
            render("a{{! note }}b{{!-- {{x}} --}}c", &json!({})).unwrap(),
            "abc"
        );
        let err = parse("line one\n{{#if x}}\nno end").unwrap_err();
        assert_eq!(
            err,
            TemplateError::Syntax {
                line: 2,
                message: "{{#if}} is not closed".into()
            }
        );
        assert!(matches!(
            parse("{{#each a}}{{/if}}"),
            Err(TemplateError::Syntax { .. })
        ));
        assert!(matches!(
            parse("{{#with a}}{{/with}}"),
            Err(TemplateError::Syntax { .. })
        ));
        assert!(matches!(
            parse("{{/if}}"),
            Err(TemplateError::Syntax { .. })
        ));
        assert!(matches!(
            parse("{{ unclosed"),
            Err(TemplateError::Syntax { .. })
        ));
        let deep = "{{#if a}}".repeat(40) + &"{{/if}}".repeat(40);
        assert!(matches!(parse(&deep), Err(TemplateError::Syntax { .. })));
    }

    #[test]
    fn plain_parts_are_not_escaped() {
        let t = parse("Order for {{name}}").unwrap();
        assert_eq!(
            t.render_plain(&json!({"name": "A & B"})).unwrap(),
            "Order for A & B"
        );
        assert_eq!(
            t.render(&json!({"name": "A & B"})).unwrap(),
            "Order for A &amp; B"
        );
    }

    #[test]
    fn output_is_bounded() {
        let data = json!({"big": "x".repeat(100_000), "many": (0..100).collect::<Vec<_>>()});
        let template = "{{#each many}}{{#each ../many}}{{../../big}}{{/each}}{{/each}}";
        assert_eq!(render(template, &data), Err(TemplateError::TooLarge));
    }
}
