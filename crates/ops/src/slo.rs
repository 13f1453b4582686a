//! `[[slo]]`: the objectives an operator promises, read and checked once.
//!
//! ```toml
//! [[slo]]
//! name = "delivery-7s"
//! kind = "delivery_latency"   # accepted → delivered within the threshold
//! threshold = "7s"
//! objective = 99.999          # percent of events that must be good
//! period = "30d"              # the budget's period (default 30 days)
//! min_events = 100            # fewer events in a window: no alert from it
//! tenant = "acme"             # optional: one customer's objective
//! ```

use std::time::Duration;

use serde::Deserialize;

use crate::duration;

/// Upper bounds of the server's latency histograms, in seconds: a latency objective's
/// threshold must be one of them, so the exported rules measure exactly it.
pub const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 7.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// One `[[slo]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    pub name: String,
    pub kind: String,
    pub objective: f64,
    pub threshold: Option<String>,
    pub period: Option<String>,
    pub min_events: Option<u64>,
    pub tenant: Option<String>,
    pub description: Option<String>,
}

/// What an objective measures; an event is good or bad by it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sli {
    /// A recipient delivered within the threshold of its acceptance (deferrals count
    /// against it: the clock runs from acceptance).
    DeliveryLatency { threshold: Duration },
    /// A message offered by SMTP or the API not refused by our fault (spool error, disk
    /// full, internal error); refusals of bad input are the client's.
    Acceptance,
    /// An API request answered within the threshold.
    ApiLatency { threshold: Duration },
    /// An event reaching the tenant's webhook within the threshold of happening.
    WebhookFreshness { threshold: Duration },
}

impl Sli {
    pub fn kind(&self) -> &'static str {
        match self {
            Sli::DeliveryLatency { .. } => "delivery_latency",
            Sli::Acceptance => "acceptance",
            Sli::ApiLatency { .. } => "api_latency",
            Sli::WebhookFreshness { .. } => "webhook_freshness",
        }
    }

    pub fn threshold(&self) -> Option<Duration> {
        match *self {
            Sli::DeliveryLatency { threshold }
            | Sli::ApiLatency { threshold }
            | Sli::WebhookFreshness { threshold } => Some(threshold),
            Sli::Acceptance => None,
        }
    }
}

/// An objective, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    pub name: String,
    pub sli: Sli,
    /// The share of events that must be good, as a fraction (0.99999).
    pub objective: f64,
    pub period: Duration,
    /// Windows with fewer events than this raise no alert.
    pub min_events: u64,
    pub tenant: Option<String>,
    pub description: String,
}

impl Slo {
    /// The share of events allowed to be bad.
    pub fn error_budget(&self) -> f64 {
        1.0 - self.objective
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SloError {
    #[error("slo[{index}].{field}: {message}")]
    Invalid {
        index: usize,
        field: &'static str,
        message: String,
    },
}

const DEFAULT_PERIOD: Duration = Duration::from_secs(30 * 86_400);
const DEFAULT_MIN_EVENTS: u64 = 100;

/// Checks every `[[slo]]`: names unique and plain, kinds known, objectives between 50 %
/// and 100 % (exclusive), latency thresholds on a histogram bound.
pub fn read(specs: &[SloSpec]) -> Result<Vec<Slo>, SloError> {
    let mut out: Vec<Slo> = Vec::with_capacity(specs.len());
    for (index, spec) in specs.iter().enumerate() {
        let invalid = |field: &'static str, message: String| SloError::Invalid {
            index,
            field,
            message,
        };
        let name = spec.name.trim();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                "name",
                "must be 1-64 letters, digits, '-' or '_'".into(),
            ));
        }
        if out.iter().any(|s| s.name == name) {
            return Err(invalid("name", format!("{name:?} is used twice")));
        }
        if !(spec.objective > 50.0 && spec.objective < 100.0) {
            return Err(invalid(
                "objective",
                "must be a percentage above 50 and below 100 (e.g. 99.999)".into(),
            ));
        }
        let threshold = || -> Result<Duration, SloError> {
            let text = spec
                .threshold
                .as_deref()
                .ok_or_else(|| invalid("threshold", "is required for this kind".into()))?;
            let d = duration::parse(text)
                .ok_or_else(|| invalid("threshold", format!("{text:?} is not a duration")))?;
            let seconds = d.as_secs_f64();
            if !LATENCY_BUCKETS_SECONDS
                .iter()
                .any(|b| (b - seconds).abs() < 1e-9)
            {
                return Err(invalid(
                    "threshold",
                    format!(
                        "must be one of the latency histogram's bounds ({})",
                        LATENCY_BUCKETS_SECONDS
                            .iter()
                            .map(|b| format!("{b}s"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            Ok(d)
        };
        let sli = match spec.kind.as_str() {
            "delivery_latency" => Sli::DeliveryLatency {
                threshold: threshold()?,
            },
            "acceptance" => {
                if spec.threshold.is_some() {
                    return Err(invalid("threshold", "acceptance has no threshold".into()));
                }
                Sli::Acceptance
            }
            "api_latency" => Sli::ApiLatency {
                threshold: threshold()?,
            },
            "webhook_freshness" => Sli::WebhookFreshness {
                threshold: threshold()?,
            },
            other => {
                return Err(invalid(
                    "kind",
                    format!(
                        "{other:?}: must be delivery_latency, acceptance, api_latency or webhook_freshness"
                    ),
                ));
            }
        };
        let period = match spec.period.as_deref() {
            None => DEFAULT_PERIOD,
            Some(text) => match duration::parse(text) {
                Some(d)
                    if d >= Duration::from_secs(86_400)
                        && d <= Duration::from_secs(90 * 86_400) =>
                {
                    d
                }
                _ => return Err(invalid("period", format!("{text:?}: must be 1d to 90d"))),
            },
        };
        let tenant = spec
            .tenant
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        out.push(Slo {
            name: name.to_string(),
            sli,
            objective: spec.objective / 100.0,
            period,
            min_events: spec.min_events.unwrap_or(DEFAULT_MIN_EVENTS),
            tenant: tenant.map(str::to_string),
            description: spec.description.clone().unwrap_or_default(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: &str, threshold: Option<&str>) -> SloSpec {
        SloSpec {
            name: "s".into(),
            kind: kind.into(),
            objective: 99.9,
            threshold: threshold.map(str::to_string),
            period: None,
            min_events: None,
            tenant: None,
            description: None,
        }
    }

    #[test]
    fn objectives_are_read_with_defaults() {
        let read = read(&[spec("delivery_latency", Some("7s"))]).unwrap();
        assert_eq!(
            read[0].sli,
            Sli::DeliveryLatency {
                threshold: Duration::from_secs(7)
            }
        );
        assert!((read[0].error_budget() - 0.001).abs() < 1e-12);
        assert_eq!(read[0].period, DEFAULT_PERIOD);
        assert_eq!(read[0].min_events, 100);
    }

    #[test]
    fn faults_name_their_field() {
        let field = |specs: &[SloSpec]| match read(specs) {
            Err(SloError::Invalid { field, .. }) => field,
            Ok(_) => "none",
        };
        assert_eq!(field(&[spec("delivery_latency", None)]), "threshold");
        assert_eq!(field(&[spec("delivery_latency", Some("6s"))]), "threshold");
        assert_eq!(field(&[spec("acceptance", Some("7s"))]), "threshold");
        assert_eq!(field(&[spec("uptime", None)]), "kind");
        let mut hundred = spec("acceptance", None);
        hundred.objective = 100.0;
        assert_eq!(field(&[hundred]), "objective");
        let mut spaced = spec("acceptance", None);
        spaced.name = "a b".into();
        assert_eq!(field(&[spaced]), "name");
        assert_eq!(
            field(&[spec("acceptance", None), spec("acceptance", None)]),
            "name"
        );
        let mut long = spec("acceptance", None);
        long.period = Some("365d".into());
        assert_eq!(field(&[long]), "period");
    }
}
