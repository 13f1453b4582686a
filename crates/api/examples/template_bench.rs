//! Template render rate per dialect: a receipt (subject, HTML with a loop over 5 lines,
//! text) rendered with fresh data each time, on one core, as a send by stored template
//! renders it (parse included for Handlebars, as `render_version` does per message).
//!
//! cargo run --release -p api --example template_bench -- [--renders 100000]

use std::time::Instant;

use api::stored_templates::render_version;
use serde_json::json;
use store::{Dialect, VersionContent};

fn main() {
    let mut renders = 100_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--renders" {
            renders = args.next().and_then(|v| v.parse().ok()).unwrap_or(renders);
        }
    }
    let versions = [
        (
            Dialect::Native,
            VersionContent {
                subject: "Receipt {{ order }} for {{ name }}".into(),
                html: Some("<h1>Thanks {{ name }}</h1><ul>{% for i in items %}<li>{{ i.title }} × {{ i.qty }}: {{ i.price }}</li>{% endfor %}</ul>{% if vip %}<p>VIP</p>{% endif %}".into()),
                text: Some("Thanks {{ name }}\n{% for i in items %}{{ i.title }} x{{ i.qty }}\n{% endfor %}".into()),
                test_data: "{}".into(),
            },
        ),
        (
            Dialect::Mailjet,
            VersionContent {
                subject: "Receipt {{var:order}} for {{var:name:\"you\"}}".into(),
                html: Some("<h1>Thanks {{var:name}}</h1><ul>{% for i in var:items %}<li>{{ i.title }} × {{ i.qty }}: {{ i.price }}</li>{% endfor %}</ul>{% if var:vip %}<p>VIP</p>{% endif %}".into()),
                text: Some("Thanks {{var:name}}\n{% for i in var:items %}{{ i.title }} x{{ i.qty }}\n{% endfor %}".into()),
                test_data: "{}".into(),
            },
        ),
        (
            Dialect::Handlebars,
            VersionContent {
                subject: "Receipt {{order}} for {{name}}".into(),
                html: Some("<h1>Thanks {{name}}</h1><ul>{{#each items}}<li>{{title}} × {{qty}}: {{price}}</li>{{/each}}</ul>{{#if vip}}<p>VIP</p>{{/if}}".into()),
                text: Some("Thanks {{name}}\n{{#each items}}{{title}} x{{qty}}\n{{/each}}".into()),
                test_data: "{}".into(),
            },
        ),
    ];
    println!(
        "| dialect | renders | seconds | renders/s | µs per render |\n|---|---:|---:|---:|---:|"
    );
    for (dialect, content) in &versions {
        let started = Instant::now();
        let mut bytes = 0usize;
        for i in 0..renders {
            let data = json!({
                "order": i, "name": format!("Customer <{i}>"), "vip": i % 3 == 0,
                "items": (0..5).map(|n| json!({"title": format!("Item {n}"), "qty": n + 1, "price": format!("{}.00", (n + 1) * 3)})).collect::<Vec<_>>(),
            });
            match render_version(*dialect, content, &data) {
                Ok((subject, html, text)) => {
                    bytes +=
                        subject.len() + html.map_or(0, |h| h.len()) + text.map_or(0, |t| t.len());
                }
                Err(_) => panic!("{} did not render", dialect.as_str()),
            }
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "| {} | {renders} | {secs:.2} | {:.0} | {:.1} |",
            dialect.as_str(),
            renders as f64 / secs,
            secs * 1e6 / renders as f64
        );
        std::hint::black_box(bytes);
    }
}
