//! A plain-text part for HTML-only messages: mail without one scores worse with spam
//! filters and is unreadable in text-only clients. Tags go, block ends become line breaks,
//! links keep their target, the common entities are decoded; script and style vanish.

/// The readable text of an HTML body.
pub fn from_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut skip_until: Option<&'static str> = None;
    let mut pending_href: Option<String> = None;
    while let Some(lt) = rest.find('<') {
        let (text, after) = rest.split_at(lt);
        if skip_until.is_none() {
            push_text(&mut out, text);
        }
        let Some(gt) = after.find('>') else {
            rest = "";
            break;
        };
        let tag = &after[1..gt];
        rest = &after[gt + 1..];
        let lower = tag.trim().to_ascii_lowercase();
        let name: String = lower
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if let Some(end) = skip_until {
            if lower.starts_with('/') && name == end {
                skip_until = None;
            }
            continue;
        }
        match name.as_str() {
            "script" => skip_until = Some("script"),
            "style" => skip_until = Some("style"),
            "head" if !lower.starts_with('/') => skip_until = Some("head"),
            "br" => out.push('\n'),
            "p" | "div" | "tr" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol"
            | "table" | "blockquote"
                if !out.ends_with("\n\n") && !out.is_empty() =>
            {
                out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
            }
            "li" if !lower.starts_with('/') => out.push_str("\n- "),
            "a" if !lower.starts_with('/') => pending_href = href(tag),
            "a" => {
                if let Some(target) = pending_href.take()
                    && !out.ends_with(&target)
                {
                    out.push_str(" (");
                    out.push_str(&target);
                    out.push(')');
                }
            }
            _ => {}
        }
    }
    if skip_until.is_none() {
        push_text(&mut out, rest);
    }
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    let mut text = lines.join("\n").trim().to_string();
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    text.push('\n');
    text
}

fn href(tag: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let at = lower.find("href=")? + 5;
    let value = &tag[at..];
    let (quote, value) = match value.chars().next()? {
        q @ ('"' | '\'') => (Some(q), &value[1..]),
        _ => (None, value),
    };
    let end = match quote {
        Some(q) => value.find(q)?,
        None => value.find(char::is_whitespace).unwrap_or(value.len()),
    };
    let target = decode(&value[..end]);
    (target.starts_with("http") || target.starts_with("mailto:")).then_some(target)
}

/// Collapses HTML whitespace and decodes entities.
fn push_text(out: &mut String, text: &str) {
    let decoded = decode(text);
    let mut last_space = out.ends_with([' ', '\n']) || out.is_empty();
    for c in decoded.chars() {
        if c.is_whitespace() {
            if !last_space {
                out.push(' ');
                last_space = true;
            }
        } else {
            out.push(c);
            last_space = false;
        }
    }
}

fn decode(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let Some(semi) = after.find(';').filter(|&s| s <= 10) else {
            out.push('&');
            rest = &after[1..];
            continue;
        };
        let entity = &after[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" | "#39" => Some('\''),
            "nbsp" => Some(' '),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_text_from_a_newsletter() {
        let html = r#"<html><head><title>x</title><style>p{color:red}</style></head><body>
            <h1>Spring&nbsp;sale</h1><p>Dear Ann,<br>prices are down &amp; stock is up.</p>
            <ul><li>Shoes</li><li>Hats &#8364;5</li></ul>
            <p>Visit <a href="https://acme.test/sale?a=1&amp;b=2">our shop</a>.</p>
            <script>alert(1)</script></body></html>"#;
        assert_eq!(
            from_html(html),
            "Spring sale\n\nDear Ann,\nprices are down & stock is up.\n\n- Shoes\n- Hats €5\n\nVisit our shop (https://acme.test/sale?a=1&b=2).\n"
        );
    }

    #[test]
    fn broken_html_never_panics() {
        for html in [
            "<",
            "<a href=",
            "&",
            "&#xZZ;",
            "<p>unclosed",
            "<<>>",
            "&#99999999;",
            "<a href='x'>",
        ] {
            let _ = from_html(html);
        }
    }
}
