//! The alert rules built in: what each watches, how its alerts group, and where its runbook
//! is. A rule's name is its `alertname` label (silences match on it).

/// Every rule the server evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// An objective's budget burns fast (the multi-window policy).
    SloBurn,
    /// At the 6-hour burn rate, an objective's budget is gone within a day.
    BudgetExhaustion,
    /// The spool refuses to store messages.
    SpoolUnavailable,
    /// The spool's disk is nearly full.
    DiskNearlyFull,
    /// At its recent growth, the spool's disk is full within hours.
    DiskFilling,
    /// A queued message has waited too long.
    OldestMessage,
    /// Outbound mail gets nowhere: every site tried lately failed and none delivered.
    RouteDown,
    /// A provider's reply rules suspended our sending (Yahoo's TSS04 and the like).
    ProviderSuspended,
    /// A provider defers far more than it did.
    DeferralJump,
    /// MX or address lookups fail.
    DnsFailures,
    /// The server's TLS certificate expires soon.
    TlsExpiry,
    /// A tenant's webhook endpoint has failed for long.
    WebhookFailing,
    /// A tenant bounces over the abuse threshold.
    TenantBounceRate,
    /// A tenant's recipients complain over the abuse threshold.
    TenantComplaintRate,
    /// The queue grows faster than it drains.
    BacklogGrowth,
}

impl Rule {
    pub const ALL: [Rule; 15] = [
        Rule::SloBurn,
        Rule::BudgetExhaustion,
        Rule::SpoolUnavailable,
        Rule::DiskNearlyFull,
        Rule::DiskFilling,
        Rule::OldestMessage,
        Rule::RouteDown,
        Rule::ProviderSuspended,
        Rule::DeferralJump,
        Rule::DnsFailures,
        Rule::TlsExpiry,
        Rule::WebhookFailing,
        Rule::TenantBounceRate,
        Rule::TenantComplaintRate,
        Rule::BacklogGrowth,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::SloBurn => "slo_burn",
            Rule::BudgetExhaustion => "budget_exhaustion",
            Rule::SpoolUnavailable => "spool_unavailable",
            Rule::DiskNearlyFull => "disk_nearly_full",
            Rule::DiskFilling => "disk_filling",
            Rule::OldestMessage => "oldest_message",
            Rule::RouteDown => "route_down",
            Rule::ProviderSuspended => "provider_suspended",
            Rule::DeferralJump => "deferral_jump",
            Rule::DnsFailures => "dns_failures",
            Rule::TlsExpiry => "tls_expiry",
            Rule::WebhookFailing => "webhook_failing",
            Rule::TenantBounceRate => "tenant_bounce_rate",
            Rule::TenantComplaintRate => "tenant_complaint_rate",
            Rule::BacklogGrowth => "backlog_growth",
        }
    }

    pub fn parse(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The labels one alert of this rule stands for: signals that agree on them become one
    /// alert (a provider's three sites deferring are one incident, not three pages).
    pub fn group_by(self) -> &'static [&'static str] {
        match self {
            Rule::SloBurn | Rule::BudgetExhaustion => &["slo"],
            Rule::ProviderSuspended | Rule::DeferralJump => &["provider"],
            Rule::WebhookFailing | Rule::TenantBounceRate | Rule::TenantComplaintRate => {
                &["tenant"]
            }
            _ => &[],
        }
    }

    /// The anchor of the rule's runbook in docs/operations.md.
    pub fn runbook_anchor(self) -> String {
        format!("alert-{}", self.name().replace('_', "-"))
    }
}

/// Inhibition: while an alert of `source` fires, alerts of `targets` that agree with it on
/// `equal` are held back (they are symptoms of it). A dead spool explains everything; a
/// dead route or a resolver that fails explains deferrals and a growing queue; a suspension explains its
/// provider's deferrals.
pub struct Inhibit {
    pub source: Rule,
    pub targets: &'static [Rule],
    pub equal: &'static [&'static str],
}

pub const INHIBITIONS: &[Inhibit] = &[
    Inhibit {
        source: Rule::SpoolUnavailable,
        targets: &[
            Rule::DiskNearlyFull,
            Rule::DiskFilling,
            Rule::OldestMessage,
            Rule::BacklogGrowth,
            Rule::DeferralJump,
            Rule::ProviderSuspended,
            Rule::DnsFailures,
        ],
        equal: &[],
    },
    Inhibit {
        source: Rule::RouteDown,
        targets: &[
            Rule::DeferralJump,
            Rule::ProviderSuspended,
            Rule::OldestMessage,
            Rule::BacklogGrowth,
        ],
        equal: &[],
    },
    Inhibit {
        source: Rule::DnsFailures,
        targets: &[Rule::DeferralJump, Rule::OldestMessage, Rule::BacklogGrowth],
        equal: &[],
    },
    Inhibit {
        source: Rule::ProviderSuspended,
        targets: &[Rule::DeferralJump],
        equal: &["provider"],
    },
    Inhibit {
        source: Rule::DiskNearlyFull,
        targets: &[Rule::DiskFilling],
        equal: &[],
    },
];
