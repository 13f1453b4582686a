//! A message's HTML with tracking: every `http(s)` link of an `<a>` tag points through the
//! tracking host, and an open pixel goes before `</body>`. Other links (`mailto:`, `tel:`,
//! anchors) and links inside comments are left alone; an `<a>` with the attribute
//! `data-no-track` too. Attribute values are read with their HTML entities decoded (an
//! `&amp;` in a link is an `&` of the URL) and the tracking URL written in their place.

/// Links rewritten per message at most; later ones are left as they are.
pub const LINKS_MAX: u16 = 1000;

fn lower(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(u8::to_ascii_lowercase).collect()
}

/// Decodes the entities a URL attribute may hold (`&amp;`, `&quot;`, `&#39;`, `&#x27;`,
/// `&lt;`, `&gt;`); others stay as written.
fn decode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let known = [
            ("&amp;", '&'),
            ("&quot;", '"'),
            ("&#39;", '\''),
            ("&#x27;", '\''),
            ("&lt;", '<'),
            ("&gt;", '>'),
        ];
        match known.iter().find(|(e, _)| rest.starts_with(e)) {
            Some((entity, ch)) => {
                out.push(*ch);
                rest = &rest[entity.len()..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Where an `<a ...>` tag's href value is: (start, end) of the value in `html`.
fn href_in(tag: &[u8], offset: usize) -> Option<(usize, usize)> {
    let low = lower(tag);
    if low.windows(13).any(|w| w == b"data-no-track") {
        return None;
    }
    let mut i = 2;
    while i + 4 < low.len() {
        let before = low[i - 1];
        if &low[i..i + 4] == b"href"
            && (before.is_ascii_whitespace() || before == b'"' || before == b'\'')
        {
            let mut j = i + 4;
            while j < low.len() && low[j].is_ascii_whitespace() {
                j += 1;
            }
            if low.get(j) != Some(&b'=') {
                i += 4;
                continue;
            }
            j += 1;
            while j < low.len() && low[j].is_ascii_whitespace() {
                j += 1;
            }
            return match low.get(j) {
                Some(&q @ (b'"' | b'\'')) => {
                    let start = j + 1;
                    let len = low[start..].iter().position(|&c| c == q)?;
                    Some((offset + start, offset + start + len))
                }
                Some(_) => {
                    let start = j;
                    let len = low[start..]
                        .iter()
                        .position(|&c| c.is_ascii_whitespace() || c == b'>')
                        .unwrap_or(low.len() - start);
                    Some((offset + start, offset + start + len))
                }
                None => None,
            };
        }
        i += 1;
    }
    None
}

/// The end of the tag starting at `start` (just past its `>`), minding quoted values.
fn tag_end(html: &[u8], start: usize) -> Option<usize> {
    let mut quote = None;
    for (i, &c) in html.iter().enumerate().skip(start) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(c),
            (None, b'>') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// `html` with each tracked link's URL replaced by `link(number, url)` (numbers from 1, in
/// order) and `pixel` (an `<img>` tag) before `</body>`, or at the end when there is none.
pub fn rewrite(
    html: &str,
    pixel: Option<&str>,
    mut link: impl FnMut(u16, &str) -> Option<String>,
) -> String {
    let bytes = html.as_bytes();
    let low = lower(bytes);
    let mut out = String::with_capacity(html.len() + 256);
    let mut copied = 0;
    let mut number: u16 = 0;
    let mut i = 0;
    while i < bytes.len() {
        if low[i..].starts_with(b"<!--") {
            i = low[i..]
                .windows(3)
                .position(|w| w == b"-->")
                .map_or(bytes.len(), |p| i + p + 3);
            continue;
        }
        let is_a =
            low[i..].starts_with(b"<a") && low.get(i + 2).is_some_and(|c| c.is_ascii_whitespace());
        if !is_a {
            i += 1;
            continue;
        }
        let Some(end) = tag_end(bytes, i) else { break };
        if number < LINKS_MAX
            && let Some((start, stop)) = href_in(&bytes[i..end], i)
        {
            let url = decode(&html[start..stop]);
            let lower_url = url.trim_start().to_ascii_lowercase();
            if lower_url.starts_with("http://") || lower_url.starts_with("https://") {
                number += 1;
                if let Some(tracked) = link(number, url.trim()) {
                    out.push_str(&html[copied..start]);
                    out.push_str(&tracked);
                    copied = stop;
                }
            }
        }
        i = end;
    }
    out.push_str(&html[copied..]);
    if let Some(pixel) = pixel {
        match out.to_ascii_lowercase().rfind("</body>") {
            Some(at) => out.insert_str(at, pixel),
            None => out.push_str(pixel),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(html: &str) -> (String, Vec<String>) {
        let mut seen = Vec::new();
        let out = rewrite(html, Some("<img src=\"P\">"), |n, url| {
            seen.push(url.to_string());
            Some(format!("T{n}"))
        });
        (out, seen)
    }

    #[test]
    fn http_links_are_rewritten_in_order_and_others_left_alone() {
        let (out, seen) = numbered(
            "<html><body><a href=\"https://a.test/x?p=1&amp;q=2\">A</a> \
             <A class=x HREF='http://b.test'>B</A> <a href=mailto:x@y.test>m</a> \
             <a href=\"#top\">t</a> <a data-no-track href=\"https://c.test\">c</a> \
             <!-- <a href=\"https://hidden.test\">h</a> --> <a title=\"a > b\" href=https://d.test>d</a>\
             </BODY></html>",
        );
        assert_eq!(
            seen,
            [
                "https://a.test/x?p=1&q=2",
                "http://b.test",
                "https://d.test"
            ]
        );
        assert_eq!(
            out,
            "<html><body><a href=\"T1\">A</a> <A class=x HREF='T2'>B</A> \
             <a href=mailto:x@y.test>m</a> <a href=\"#top\">t</a> \
             <a data-no-track href=\"https://c.test\">c</a> \
             <!-- <a href=\"https://hidden.test\">h</a> --> <a title=\"a > b\" href=T3>d</a>\
             <img src=\"P\"></BODY></html>"
        );
    }

    #[test]
    fn no_body_no_links_and_broken_tags_are_safe() {
        assert_eq!(numbered("<p>Hi</p>").0, "<p>Hi</p><img src=\"P\">");
        assert_eq!(
            numbered("<a href=\"https://x.test").0,
            "<a href=\"https://x.test<img src=\"P\">"
        );
        let (out, seen) = numbered("<a href>no value</a><abbr>x</abbr>");
        assert!(seen.is_empty());
        assert!(out.starts_with("<a href>no value</a><abbr>x</abbr>"));
    }
}
