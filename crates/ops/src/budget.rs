//! Error budgets and burn rates. A burn rate is how fast a window spends the budget: the
//! window's bad share over the allowed bad share (1 spends exactly the budget over the
//! period; 14.4 spends 2 % of a 30-day budget in an hour). Alerts follow the multi-window
//! policy of Google's SRE workbook: both a long and a short window must burn fast, so an
//! alert starts quickly and stops soon after the burning does.

use std::time::Duration;

use crate::slo::Slo;

/// The windows burn rates are kept over.
pub const WINDOWS: [Duration; 6] = [
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(86_400),
    Duration::from_secs(3 * 86_400),
];

/// Good and total events in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub good: u64,
    pub total: u64,
}

impl Counts {
    pub fn bad(&self) -> u64 {
        self.total.saturating_sub(self.good)
    }
}

/// The window's burn rate, or `None` when it saw fewer than the objective's minimum
/// events (one late message at night is not an incident).
pub fn burn_rate(slo: &Slo, counts: Counts) -> Option<f64> {
    if counts.total == 0 || counts.total < slo.min_events {
        return None;
    }
    Some(counts.bad() as f64 / counts.total as f64 / slo.error_budget())
}

/// The share of the period's budget left (1 untouched, 0 spent, negative overspent),
/// from the period's counts.
pub fn budget_left(slo: &Slo, period: Counts) -> f64 {
    if period.total == 0 {
        return 1.0;
    }
    let allowed = period.total as f64 * slo.error_budget();
    1.0 - period.bad() as f64 / allowed
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Wakes someone: the budget goes within hours to days.
    Page,
    /// Work for the day: the budget goes by the end of the period.
    Ticket,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// One rule of the policy: both windows burn at `factor` or faster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnRule {
    pub severity: Severity,
    pub factor: f64,
    pub long: Duration,
    pub short: Duration,
}

/// Page at 14.4× over 1 h and 5 m, or 6× over 6 h and 30 m; ticket at 1× over 3 d (and
/// 6 h, so the ticket clears once the burning has stopped).
pub const POLICY: [BurnRule; 3] = [
    BurnRule {
        severity: Severity::Page,
        factor: 14.4,
        long: Duration::from_secs(3600),
        short: Duration::from_secs(5 * 60),
    },
    BurnRule {
        severity: Severity::Page,
        factor: 6.0,
        long: Duration::from_secs(6 * 3600),
        short: Duration::from_secs(30 * 60),
    },
    BurnRule {
        severity: Severity::Ticket,
        factor: 1.0,
        long: Duration::from_secs(3 * 86_400),
        short: Duration::from_secs(6 * 3600),
    },
];

/// The burn rates of one objective over [`WINDOWS`] (`None`: too few events).
#[derive(Debug, Clone, PartialEq)]
pub struct Burn {
    pub rates: Vec<(Duration, Option<f64>)>,
}

impl Burn {
    pub fn of(slo: &Slo, counts: impl Fn(Duration) -> Counts) -> Burn {
        Burn {
            rates: WINDOWS
                .iter()
                .map(|w| (*w, burn_rate(slo, counts(*w))))
                .collect(),
        }
    }

    pub fn rate(&self, window: Duration) -> Option<f64> {
        self.rates
            .iter()
            .find(|(w, _)| *w == window)
            .and_then(|(_, r)| *r)
    }

    /// The first rule of [`POLICY`] both of whose windows burn fast enough.
    pub fn firing(&self) -> Option<BurnRule> {
        POLICY.iter().copied().find(|rule| {
            let fast = |w| self.rate(w).is_some_and(|r| r >= rule.factor);
            fast(rule.long) && fast(rule.short)
        })
    }
}

/// When the budget left runs out at the last hour's burn rate: budget left × period ÷ rate
/// (a rate of 1 spends a whole budget in a period). None when not burning or already spent.
pub fn exhaustion(slo: &Slo, period: Counts, burn: &Burn) -> Option<Duration> {
    let left = budget_left(slo, period);
    let rate = burn.rate(Duration::from_secs(3600))?;
    if left <= 0.0 || rate <= 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(
        (left * slo.period.as_secs_f64() / rate).min(1e10),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::Sli;

    fn slo() -> Slo {
        Slo {
            name: "delivery".into(),
            sli: Sli::DeliveryLatency {
                threshold: Duration::from_secs(7),
            },
            objective: 0.999,
            period: Duration::from_secs(30 * 86_400),
            min_events: 100,
            tenant: None,
            description: String::new(),
        }
    }

    #[test]
    fn burn_rates_and_budget() {
        let slo = slo();
        let c = |good, total| Counts { good, total };
        // 1 % bad against a 0.1 % budget: ten times too fast.
        assert!((burn_rate(&slo, c(9_900, 10_000)).unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(burn_rate(&slo, c(0, 99)), None, "under the minimum");
        assert_eq!(burn_rate(&slo, c(0, 0)), None);
        assert!((budget_left(&slo, c(999_500, 1_000_000)) - 0.5).abs() < 1e-9);
        assert!(budget_left(&slo, c(990_000, 1_000_000)) < 0.0);
        assert_eq!(budget_left(&slo, c(0, 0)), 1.0);
        // Half the budget left, burning at 10×: a 30-day budget lasts 30 d × 0.5 ÷ 10.
        let burning = Burn::of(&slo, |_| c(9_900, 10_000));
        let left = exhaustion(&slo, c(999_500, 1_000_000), &burning).unwrap();
        assert_eq!(left.as_secs(), 30 * 86_400 / 20);
        let calm = Burn::of(&slo, |_| c(10_000, 10_000));
        assert_eq!(exhaustion(&slo, c(999_500, 1_000_000), &calm), None);
    }

    #[test]
    fn both_windows_must_burn() {
        let slo = slo();
        let minute = 60;
        // 2 % bad (20×) in the last 5 m and the last hour: page.
        let burning = Burn::of(&slo, |w| {
            if w.as_secs() <= 3600 {
                Counts {
                    good: 9_800,
                    total: 10_000,
                }
            } else {
                Counts {
                    good: 999_000,
                    total: 1_000_000,
                }
            }
        });
        let rule = burning.firing().unwrap();
        assert_eq!((rule.severity, rule.factor), (Severity::Page, 14.4));
        // The hour burned but the last 5 minutes are clean: it has stopped, no page.
        let stopped = Burn::of(&slo, |w| {
            if w.as_secs() == 5 * minute {
                Counts {
                    good: 10_000,
                    total: 10_000,
                }
            } else {
                Counts {
                    good: 9_800,
                    total: 10_000,
                }
            }
        });
        assert_eq!(
            stopped.firing().map(|r| r.factor),
            Some(6.0),
            "6 h and 30 m still burn"
        );
        // A slow steady burn over days: a ticket.
        let slow = Burn::of(&slo, |_| Counts {
            good: 99_850,
            total: 100_000,
        });
        assert_eq!(slow.firing().map(|r| r.severity), Some(Severity::Ticket));
        // Too few events anywhere: nothing, however bad.
        let quiet = Burn::of(&slo, |_| Counts { good: 0, total: 3 });
        assert_eq!(quiet.firing(), None);
    }
}
