//! Message catalogues: every string a page shows comes from `catalogue/<lang>.toml`,
//! embedded in the binary. A key missing from a catalogue is an error when the page is
//! rendered (and the tests render every page in every language), never a silent fallback.

use std::collections::HashMap;
use std::sync::OnceLock;

/// A language the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Lang {
    En,
    Ja,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ja];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The best of ours for an `Accept-Language` header (RFC 9110 §12.5.4: weights, then
    /// order); English when none matches.
    pub fn negotiate(accept_language: Option<&str>) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in accept_language.unwrap_or("").split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let weight = parts
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            if let Some(lang) = Lang::parse(primary)
                && weight > 0.0
                && best.is_none_or(|(w, _)| weight > w)
            {
                best = Some((weight, lang));
            }
        }
        best.map_or(Lang::En, |(_, lang)| lang)
    }
}

type Catalogue = HashMap<String, String>;

fn flatten(prefix: &str, table: &toml::Table, out: &mut Catalogue) {
    for (key, value) in table {
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(&full, inner, out),
            toml::Value::String(text) => {
                out.insert(full, text.clone());
            }
            other => {
                out.insert(full, other.to_string());
            }
        }
    }
}

fn load(text: &str) -> Catalogue {
    // The catalogues are part of the build; the tests parse them, so this cannot fail in
    // a released binary.
    let table: toml::Table = toml::from_str(text).unwrap_or_default();
    let mut out = Catalogue::new();
    flatten("", &table, &mut out);
    out
}

/// The raw catalogue texts, by language.
pub const SOURCES: [(Lang, &str); 2] = [
    (Lang::En, include_str!("../catalogue/en.toml")),
    (Lang::Ja, include_str!("../catalogue/ja.toml")),
];

fn catalogues() -> &'static HashMap<Lang, Catalogue> {
    static CATALOGUES: OnceLock<HashMap<Lang, Catalogue>> = OnceLock::new();
    CATALOGUES.get_or_init(|| {
        SOURCES
            .iter()
            .map(|(lang, text)| (*lang, load(text)))
            .collect()
    })
}

/// The text for `key`, or `None` when the catalogue lacks it.
pub fn text(lang: Lang, key: &str) -> Option<&'static str> {
    catalogues().get(&lang)?.get(key).map(String::as_str)
}

/// Every key of a language's catalogue.
pub fn keys(lang: Lang) -> Vec<&'static str> {
    let mut keys: Vec<&str> = catalogues()
        .get(&lang)
        .map(|c| c.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogues_parse_and_have_the_same_keys() {
        for (lang, text) in SOURCES {
            assert!(
                toml::from_str::<toml::Table>(text).is_ok(),
                "{lang:?} does not parse"
            );
        }
        assert!(keys(Lang::En).len() > 50);
        assert_eq!(keys(Lang::En), keys(Lang::Ja), "catalogues differ in keys");
    }

    #[test]
    fn accept_language_picks_by_weight() {
        assert_eq!(Lang::negotiate(Some("ja-JP,ja;q=0.9,en;q=0.8")), Lang::Ja);
        assert_eq!(Lang::negotiate(Some("fr, en;q=0.5, ja;q=0.7")), Lang::Ja);
        assert_eq!(Lang::negotiate(Some("de")), Lang::En);
        assert_eq!(Lang::negotiate(Some("ja;q=0")), Lang::En);
        assert_eq!(Lang::negotiate(None), Lang::En);
    }
}
