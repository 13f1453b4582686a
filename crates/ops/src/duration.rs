//! Durations as the config writes them: `500ms`, `7s`, `5m`, `1h`, `30d`.

use std::time::Duration;

/// The duration `text` names, or `None`.
pub fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        "d" => number * 86_400.0,
        _ => return None,
    };
    (seconds.is_finite() && seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// A duration as Prometheus writes one (`5m`, `1h`, `3d`, `7s`, `250ms`).
pub fn prometheus(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_and_print() {
        assert_eq!(parse("7s"), Some(Duration::from_secs(7)));
        assert_eq!(parse("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse("30d"), Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse("1.5h"), Some(Duration::from_secs(5400)));
        for bad in ["", "7", "s", "-1s", "0s", "7 weeks", "1y"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(prometheus(Duration::from_secs(3 * 86_400)), "3d");
        assert_eq!(prometheus(Duration::from_secs(1800)), "30m");
        assert_eq!(prometheus(Duration::from_millis(250)), "250ms");
    }
}
