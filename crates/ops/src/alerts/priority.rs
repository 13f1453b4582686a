//! Priorities from impact, by documented rules (docs/operations.md#alert-priorities). An
//! alert's priority says how fast someone must answer it (P1 15 min … P4 60 min), so it
//! follows what is at stake: mail lost or refused, how many tenants and messages wait, how
//! fast an objective's budget burns, and how soon a coming problem (an expiring
//! certificate, a filling disk) starts to hurt.

use std::time::Duration;

use crate::budget::Severity;
use crate::lifecycle::Priority;

/// Who and what an alert touches.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impact {
    /// Mail may be refused or lost (the spool cannot store, its disk is nearly full).
    pub loss: bool,
    /// Every tenant is affected (server-wide conditions).
    pub all_tenants: bool,
    /// Tenants affected when not all.
    pub tenants: u64,
    /// Messages (recipients) delayed or at risk.
    pub messages: u64,
    /// An objective's burn: the policy's severity and the factor that fired.
    pub burn: Option<(Severity, f64)>,
    /// When the impact starts, for conditions that warn ahead (none: it has started).
    pub starts_in: Option<Duration>,
}

/// Messages waiting that make a server-wide delay P1 rather than P2.
pub const MANY_MESSAGES: u64 = 10_000;
/// Messages waiting that make a single provider's or tenant's problem P2 rather than P3.
pub const SOME_MESSAGES: u64 = 1_000;

/// The rules, first match wins:
///
/// 1. Mail at risk of loss or refusal → P1.
/// 2. A page burn at 14.4× or more (2 % of a 30-day budget per hour) → P1.
/// 3. All tenants with 10,000 or more messages delayed → P1.
/// 4. A warning ahead: impact in more than 7 days → P4, in more than 1 day → P3, sooner → P2.
/// 5. Any other page burn (6×) → P2.
/// 6. All tenants, or two or more, or 1,000 or more messages → P2.
/// 7. A ticket burn, a single tenant, or any messages → P3.
/// 8. Otherwise → P4.
pub fn priority(impact: &Impact) -> Priority {
    let paging = |min: f64| matches!(impact.burn, Some((Severity::Page, f)) if f >= min);
    if impact.loss || paging(14.4) || (impact.all_tenants && impact.messages >= MANY_MESSAGES) {
        return Priority::P1;
    }
    if let Some(ahead) = impact.starts_in {
        let day = Duration::from_secs(86_400);
        return if ahead > 7 * day {
            Priority::P4
        } else if ahead > day {
            Priority::P3
        } else {
            Priority::P2
        };
    }
    if paging(0.0) || impact.all_tenants || impact.tenants >= 2 || impact.messages >= SOME_MESSAGES
    {
        return Priority::P2;
    }
    if impact.burn.is_some() || impact.tenants == 1 || impact.messages > 0 {
        return Priority::P3;
    }
    Priority::P4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_rules() {
        let p = |i: Impact| priority(&i);
        assert_eq!(
            p(Impact {
                loss: true,
                ..Default::default()
            }),
            Priority::P1
        );
        let page = |f| Impact {
            burn: Some((Severity::Page, f)),
            ..Default::default()
        };
        assert_eq!(p(page(30.0)), Priority::P1);
        assert_eq!(p(page(6.0)), Priority::P2);
        let ticket = Impact {
            burn: Some((Severity::Ticket, 1.0)),
            ..Default::default()
        };
        assert_eq!(p(ticket), Priority::P3);
        let everyone = |messages| Impact {
            all_tenants: true,
            messages,
            ..Default::default()
        };
        assert_eq!(p(everyone(50_000)), Priority::P1);
        assert_eq!(p(everyone(10)), Priority::P2);
        let tenants = |tenants, messages| Impact {
            tenants,
            messages,
            ..Default::default()
        };
        assert_eq!(p(tenants(1, 10)), Priority::P3);
        assert_eq!(p(tenants(2, 10)), Priority::P2);
        assert_eq!(p(tenants(1, 5_000)), Priority::P2);
        assert_eq!(p(Impact::default()), Priority::P4);
        let ahead = |days: u64| Impact {
            all_tenants: true,
            starts_in: Some(Duration::from_secs(days * 86_400)),
            ..Default::default()
        };
        assert_eq!(p(ahead(20)), Priority::P4);
        assert_eq!(p(ahead(3)), Priority::P3);
        assert_eq!(p(ahead(0)), Priority::P2);
    }
}
