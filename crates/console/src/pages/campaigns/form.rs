//! The campaign wizard's form, both ways: the fields a browser posts become the API's
//! JSON documents (so the API's checks and field names apply), and a campaign's documents
//! (stored, or just refused) fill the form again.

use serde_json::{Map, Value, json};

/// The posted pairs, in order (checkboxes repeat their name).
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, trimmed, if not empty.
    pub fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every non-empty value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    pub fn csrf(&self) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == "_csrf")
            .map_or("", |(_, v)| v.as_str())
    }

    /// The bodies keep their whitespace (only empty means none).
    fn body(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.replace("\r\n", "\n"))
            .filter(|v| !v.trim().is_empty())
    }
}

/// The audience document of the form's checkboxes.
pub fn audience(fields: &Fields) -> Value {
    let mut map = Map::new();
    for (field, name) in [
        ("lists", "list"),
        ("segments", "segment"),
        ("exclude_lists", "exclude_list"),
        ("exclude_segments", "exclude_segment"),
    ] {
        let chosen = fields.all(name);
        if !chosen.is_empty() {
            map.insert(field.into(), Value::from(chosen));
        }
    }
    Value::Object(map)
}

/// The API's fields for a campaign from the wizard's form.
pub fn to_api(fields: &Fields) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("name".into(), Value::from(fields.one("name").unwrap_or("")));
    out.insert("audience".into(), audience(fields));

    let mut content = Map::new();
    for name in ["from", "from_name", "reply_to"] {
        if let Some(v) = fields.one(name) {
            content.insert(name.into(), Value::from(v));
        }
    }
    if fields.one("source") == Some("template") {
        if let Some(template) = fields.one("template_id") {
            content.insert("template_id".into(), Value::from(template));
        }
    } else {
        if let Some(subject) = fields.one("subject") {
            content.insert("subject".into(), Value::from(subject));
        }
        for name in ["html", "text"] {
            if let Some(body) = fields.body(name) {
                content.insert(name.into(), Value::from(body));
            }
        }
    }
    // Nothing typed yet: the draft keeps no content (the API requires a sender once any
    // is given).
    if !content.is_empty() {
        out.insert("content".into(), Value::Object(content));
    }

    let schedule = match fields.one("when") {
        Some("at") => {
            json!({ "at": fields.one("at").map(|at| format!("{at}:00Z")).unwrap_or_default() })
        }
        Some("local") => json!({ "local": {
            "date": fields.one("local_date").unwrap_or(""),
            "time": fields.one("local_time").unwrap_or(""),
            "passed": fields.one("passed").unwrap_or("next_day"),
        }}),
        _ => Value::Null,
    };
    out.insert("schedule".into(), schedule);

    let days = fields.all("day");
    let window = if days.is_empty() {
        Value::Null
    } else {
        json!({
            "days": days,
            "from": fields.one("window_from").unwrap_or("00:00"),
            "to": fields.one("window_to").unwrap_or("23:59"),
        })
    };
    out.insert("window".into(), window);

    let rate = match fields.one("rate_per_sec") {
        Some(text) => text
            .parse::<i64>()
            .map_or_else(|_| Value::from(text), Value::from),
        None => Value::Null,
    };
    out.insert("rate_per_sec".into(), rate);

    let ab = if fields.one("ab") == Some("on") {
        let variants: Vec<Value> = fields
            .body("ab_subjects")
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|subject| json!({ "subject": subject }))
            .collect();
        let number = |name: &str, default: i64| {
            fields.one(name).map_or(Value::from(default), |t| {
                t.parse::<i64>()
                    .map_or_else(|_| Value::from(t), Value::from)
            })
        };
        json!({
            "variants": variants,
            "test_percent": number("ab_percent", 20),
            "metric": fields.one("ab_metric").unwrap_or("opens"),
            "wait_minutes": number("ab_wait", 240),
        })
    } else {
        Value::Null
    };
    out.insert("ab".into(), ab);
    out
}

fn text(doc: &Value, key: &str) -> String {
    doc.get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn texts(doc: &Value, key: &str) -> Vec<String> {
    doc.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `2026-12-24T08:00:00Z` (or Unix ms) as a `datetime-local` value in UTC.
fn local_input(at: &Value) -> String {
    let parsed = match at {
        Value::Number(n) => n
            .as_i64()
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()),
        Value::String(s) => s.parse::<jiff::Timestamp>().ok(),
        _ => None,
    };
    parsed.map_or_else(String::new, |t| t.strftime("%Y-%m-%dT%H:%M").to_string())
}

/// The form's values from a campaign's API fields (`name`, `audience`, `content`,
/// `schedule`, `window`, `rate_per_sec`, `ab`).
pub fn view(doc: &Map<String, Value>) -> minijinja::Value {
    let get = |k: &str| doc.get(k).cloned().unwrap_or(Value::Null);
    let (audience, content, schedule, window, ab) = (
        get("audience"),
        get("content"),
        get("schedule"),
        get("window"),
        get("ab"),
    );
    let when = if schedule.get("at").is_some() {
        "at"
    } else if schedule.get("local").is_some() {
        "local"
    } else {
        "now"
    };
    let local = schedule.get("local").cloned().unwrap_or(Value::Null);
    let ab_subjects: Vec<String> = ab
        .get("variants")
        .and_then(Value::as_array)
        .map(|vs| vs.iter().map(|v| text(v, "subject")).collect())
        .unwrap_or_default();
    let number = |v: Option<&Value>, default: i64| v.and_then(Value::as_i64).unwrap_or(default);
    minijinja::context! {
        name => doc.get("name").and_then(Value::as_str).unwrap_or(""),
        lists => texts(&audience, "lists"),
        segments => texts(&audience, "segments"),
        exclude_lists => texts(&audience, "exclude_lists"),
        exclude_segments => texts(&audience, "exclude_segments"),
        from => text(&content, "from"),
        from_name => text(&content, "from_name"),
        reply_to => text(&content, "reply_to"),
        source => if content.get("template_id").is_some() { "template" } else { "inline" },
        template_id => text(&content, "template_id"),
        subject => text(&content, "subject"),
        html => text(&content, "html"),
        text => text(&content, "text"),
        when => when,
        at => schedule.get("at").map(local_input).unwrap_or_default(),
        local_date => text(&local, "date"),
        local_time => text(&local, "time"),
        passed => local.get("passed").and_then(Value::as_str).unwrap_or("next_day"),
        days => texts(&window, "days"),
        window_from => text(&window, "from"),
        window_to => text(&window, "to"),
        rate_per_sec => doc.get("rate_per_sec").and_then(Value::as_i64),
        ab => !ab.is_null(),
        ab_subjects => ab_subjects.join("\n"),
        ab_percent => number(ab.get("test_percent"), 20),
        ab_metric => ab.get("metric").and_then(Value::as_str).unwrap_or("opens"),
        ab_wait => number(ab.get("wait_minutes"), 240),
    }
}

/// A stored campaign as the API's fields.
pub fn stored(campaign: &store::Campaign) -> Map<String, Value> {
    let parse = |text: Option<&str>| {
        text.and_then(|t| serde_json::from_str::<Value>(t).ok())
            .unwrap_or(Value::Null)
    };
    let draft = &campaign.draft;
    let mut out = Map::new();
    out.insert("name".into(), Value::from(draft.name.as_str()));
    out.insert("audience".into(), parse(Some(&draft.audience)));
    out.insert("content".into(), parse(Some(&draft.content)));
    out.insert("schedule".into(), parse(draft.schedule.as_deref()));
    out.insert("window".into(), parse(draft.send_window.as_deref()));
    out.insert("rate_per_sec".into(), Value::from(draft.rate_per_sec));
    out.insert("ab".into(), parse(draft.ab_test.as_deref()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn the_form_becomes_the_apis_documents_and_back() {
        let posted = fields(&[
            ("name", "December news"),
            ("list", "ls_1"),
            ("list", "ls_2"),
            ("exclude_segment", "sg_9"),
            ("from", "news@acme.test"),
            ("source", "inline"),
            ("subject", "Hello {{ first_name }}"),
            ("html", "<p>Hi</p>\r\n"),
            ("text", ""),
            ("template_id", "tp_ignored"),
            ("when", "local"),
            ("local_date", "2026-12-24"),
            ("local_time", "09:00"),
            ("passed", "at_once"),
            ("day", "mon"),
            ("day", "fri"),
            ("window_from", "09:00"),
            ("window_to", "20:00"),
            ("rate_per_sec", "50"),
            ("ab", "on"),
            ("ab_subjects", "A\r\n\r\nB\r\n"),
            ("ab_percent", "10"),
            ("ab_metric", "clicks"),
            ("ab_wait", "60"),
        ]);
        let api = to_api(&posted);
        assert_eq!(
            Value::Object(api.clone()),
            json!({
                "name": "December news",
                "audience": {"lists": ["ls_1", "ls_2"], "exclude_segments": ["sg_9"]},
                "content": {"from": "news@acme.test", "subject": "Hello {{ first_name }}", "html": "<p>Hi</p>\n"},
                "schedule": {"local": {"date": "2026-12-24", "time": "09:00", "passed": "at_once"}},
                "window": {"days": ["mon", "fri"], "from": "09:00", "to": "20:00"},
                "rate_per_sec": 50,
                "ab": {"variants": [{"subject": "A"}, {"subject": "B"}], "test_percent": 10, "metric": "clicks", "wait_minutes": 60},
            })
        );
        let back = view(&api);
        assert_eq!(back.get_attr("when").unwrap().as_str(), Some("local"));
        assert_eq!(back.get_attr("ab_subjects").unwrap().as_str(), Some("A\nB"));
        assert_eq!(back.get_attr("source").unwrap().as_str(), Some("inline"));
    }

    #[test]
    fn an_empty_form_clears_the_optional_documents_and_keeps_no_content() {
        let api = to_api(&fields(&[
            ("name", "x"),
            ("when", "now"),
            ("source", "inline"),
        ]));
        assert_eq!(
            Value::Object(api),
            json!({"name": "x", "audience": {}, "schedule": null, "window": null, "rate_per_sec": null, "ab": null})
        );
        let at = to_api(&fields(&[("when", "at"), ("at", "2026-12-24T08:00")]));
        assert_eq!(at["schedule"], json!({"at": "2026-12-24T08:00:00Z"}));
        assert_eq!(
            view(&at).get_attr("at").unwrap().as_str(),
            Some("2026-12-24T08:00")
        );
    }
}
