//! The live check of a sending domain's records: each TXT record looked up now (uncached)
//! and judged by `dkim::published`.

use crate::ConsoleConfig;

/// One record's state: `ok`, `missing`, `different`, or `unknown` (the lookup failed).
pub async fn check_all(config: &ConsoleConfig, records: &[minijinja::Value]) -> Vec<&'static str> {
    let dns = match delivery::route::dns::Dns::new(config.dns.clone()) {
        Ok(dns) => dns,
        Err(err) => {
            tracing::warn!(error = %err, "console: no resolver for domain checks");
            return vec!["unknown"; records.len()];
        }
    };
    let mut states = Vec::with_capacity(records.len());
    for record in records {
        let field = |name: &str| {
            record
                .get_attr(name)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let (name, kind, value) = (field("name"), field("kind"), field("value"));
        if kind != "TXT" {
            states.push("unchecked");
            continue;
        }
        let expected = dkim::DnsRecord {
            name: name.clone(),
            kind: "TXT",
            value: value.clone(),
            purpose: "",
        };
        let public_key = value
            .split(';')
            .find_map(|part| part.trim().strip_prefix("p="))
            .unwrap_or_default()
            .to_string();
        states.push(match dns.txt(&name).await {
            Ok(found) => dkim::published::judge(&expected, &found, &public_key).as_str(),
            Err(_) => "unknown",
        });
    }
    states
}
