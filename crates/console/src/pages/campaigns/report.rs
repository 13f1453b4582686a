//! The report's charts, drawn on the server as SVG: delivered, opened and clicked per
//! hour since the campaign started (a line each), and the rates as bars (overall and per
//! A/B variant), from the same report JSON the API answers.

use serde_json::Value;

use crate::pages::dashboard::points;

/// The hourly series drawn, in order (each has a CSS class `series-<name>`).
const HOURLY: [&str; 3] = ["delivered", "opened", "clicked"];
/// The rates drawn as bars.
const RATES: [&str; 4] = ["delivery", "open", "click", "unsubscribe"];
/// The bar chart's width for a rate of 1.
const BAR_WIDTH: f64 = 400.0;

fn count(value: &Value, key: &str) -> i64 {
    value.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// Hours without a counter are zero: the series covers every hour from the first to
/// the last one counted.
fn hourly(report: &Value) -> (Vec<minijinja::Value>, i64, Option<(i64, i64)>) {
    let hours: Vec<(i64, &Value)> = report
        .get("hourly")
        .and_then(Value::as_array)
        .map(|rows| {
            rows.iter()
                .filter_map(|r| Some((r.get("hour_ms")?.as_i64()?, r.get("counts")?)))
                .collect()
        })
        .unwrap_or_default();
    let (Some(first), Some(last)) = (hours.first(), hours.last()) else {
        return (Vec::new(), 0, None);
    };
    let (first, last) = (first.0, last.0);
    let slots = ((last - first) / 3_600_000 + 1).clamp(1, 24 * 92) as usize;
    let mut series = vec![vec![0i64; slots]; HOURLY.len()];
    for (hour, counts) in &hours {
        let slot = ((hour - first) / 3_600_000) as usize;
        if slot < slots {
            for (s, name) in HOURLY.iter().enumerate() {
                series[s][slot] = count(counts, name);
            }
        }
    }
    let max = series.iter().flatten().copied().max().unwrap_or(0);
    let lines = HOURLY
        .iter()
        .zip(&series)
        .map(|(name, values)| {
            minijinja::context! {
                kind => *name,
                points => points(values, max),
                total => values.iter().sum::<i64>(),
            }
        })
        .collect();
    (lines, max, Some((first, last + 3_600_000)))
}

fn bars(rates: Option<&Value>) -> Vec<minijinja::Value> {
    RATES
        .iter()
        .map(|name| {
            let rate = rates
                .and_then(|r| r.get(*name))
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
                .clamp(0.0, 1.0);
            minijinja::context! {
                name => *name,
                width => format!("{:.1}", rate * BAR_WIDTH),
                percent => format!("{:.1}", rate * 100.0),
            }
        })
        .collect()
}

/// What the report's template draws.
pub fn charts(report: &Value) -> minijinja::Value {
    let (lines, max, span) = hourly(report);
    let variants: Vec<minijinja::Value> = report
        .get("variants")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .map(|v| {
                    minijinja::context! {
                        name => v.get("name").and_then(Value::as_str).unwrap_or(""),
                        winner => v.get("winner").and_then(Value::as_bool).unwrap_or(false),
                        bars => bars(v.get("rates")),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    minijinja::context! {
        lines => lines,
        max => max,
        from_ms => span.map(|s| s.0),
        to_ms => span.map(|s| s.1),
        bars => bars(report.get("rates")),
        variants => variants,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hours_without_counters_are_zero_and_rates_are_bars() {
        let report = json!({
            "hourly": [
                {"hour_ms": 0, "counts": {"delivered": 10, "opened": 4}},
                {"hour_ms": 7_200_000, "counts": {"delivered": 5, "clicked": 1}},
            ],
            "rates": {"delivery": 1.0, "open": 0.25, "click": 0.5, "unsubscribe": 0.0},
        });
        let (lines, max, span) = hourly(&report);
        assert_eq!(max, 10);
        assert_eq!(span, Some((0, 10_800_000)));
        let delivered = &lines[0];
        assert_eq!(
            delivered.get_attr("points").unwrap().as_str(),
            Some("0.0,10.0 360.0,200.0 720.0,105.0"),
            "three hours, the middle one empty"
        );
        assert_eq!(delivered.get_attr("total").unwrap().as_i64(), Some(15));
        let drawn = bars(report.get("rates"));
        assert_eq!(drawn[1].get_attr("width").unwrap().as_str(), Some("100.0"));
        assert_eq!(drawn[1].get_attr("percent").unwrap().as_str(), Some("25.0"));
    }
}
