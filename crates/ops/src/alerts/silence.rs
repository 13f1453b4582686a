//! Silences and maintenance windows. A silence holds back alerts whose labels match all of
//! its matchers (`alertname` is the rule; a value ending in `*` matches by prefix) between
//! its start and end; a maintenance window is a weekly recurring silence from the config.

use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    pub id: String,
    pub matchers: BTreeMap<String, String>,
    pub starts_ms: i64,
    pub ends_ms: i64,
    pub by: String,
    pub comment: String,
}

impl Silence {
    pub fn active(&self, now_ms: i64) -> bool {
        self.starts_ms <= now_ms && now_ms < self.ends_ms
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers.iter().all(|(name, want)| {
            let Some(value) = labels.get(name) else {
                return false;
            };
            match want.strip_suffix('*') {
                Some(prefix) => value.starts_with(prefix),
                None => value == want,
            }
        })
    }
}

/// A weekly maintenance window (UTC): on `days` (0 = Monday … 6 = Sunday) from `start`
/// minutes past midnight, for `length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    pub name: String,
    pub matchers: BTreeMap<String, String>,
    pub days: Vec<u8>,
    pub start_minute: u32,
    pub length: Duration,
}

impl Maintenance {
    /// The window's silence when one of its occurrences covers `now_ms`.
    pub fn silence_at(&self, now_ms: i64) -> Option<Silence> {
        const DAY: i64 = 86_400_000;
        let today = now_ms.div_euclid(DAY);
        let length = self.length.as_millis() as i64;
        // An occurrence that began on one of the last days (a window may cross midnight).
        let span = length / DAY + 1;
        (0..=span).find_map(|back| {
            let day = today - back;
            // 1970-01-01 was a Thursday (3 with Monday = 0).
            let weekday = (day + 3).rem_euclid(7) as u8;
            if !self.days.contains(&weekday) {
                return None;
            }
            let starts_ms = day * DAY + i64::from(self.start_minute) * 60_000;
            let ends_ms = starts_ms + length;
            (starts_ms <= now_ms && now_ms < ends_ms).then(|| Silence {
                id: format!("maintenance:{}", self.name),
                matchers: self.matchers.clone(),
                starts_ms,
                ends_ms,
                by: "maintenance".into(),
                comment: format!("maintenance window {}", self.name),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn matchers_and_prefixes() {
        let s = Silence {
            id: "s1".into(),
            matchers: labels(&[("alertname", "deferral_jump"), ("provider", "ya*")]),
            starts_ms: 100,
            ends_ms: 200,
            by: "ann".into(),
            comment: String::new(),
        };
        assert!(s.matches(&labels(&[
            ("alertname", "deferral_jump"),
            ("provider", "yahoo")
        ])));
        assert!(!s.matches(&labels(&[
            ("alertname", "deferral_jump"),
            ("provider", "gmail")
        ])));
        assert!(!s.matches(&labels(&[("alertname", "deferral_jump")])));
        assert!(s.active(100) && s.active(199) && !s.active(200) && !s.active(99));
    }

    #[test]
    fn weekly_windows_cross_midnight() {
        // Sundays 23:00 for 2 hours.
        let m = Maintenance {
            name: "patching".into(),
            matchers: BTreeMap::new(),
            days: vec![6],
            start_minute: 23 * 60,
            length: Duration::from_secs(2 * 3600),
        };
        // 2026-12-06 is a Sunday.
        let sunday = 1_796_515_200_000i64; // 2026-12-06T00:00Z
        let weekday = (sunday.div_euclid(86_400_000) + 3).rem_euclid(7);
        assert_eq!(weekday, 6);
        let hour = 3_600_000;
        assert!(m.silence_at(sunday + 22 * hour).is_none());
        assert!(m.silence_at(sunday + 23 * hour + 1).is_some());
        assert!(
            m.silence_at(sunday + 24 * hour + hour / 2).is_some(),
            "Monday 00:30"
        );
        assert!(m.silence_at(sunday + 25 * hour).is_none());
    }
}
