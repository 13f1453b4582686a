//! Operations built in (issue 17, under construction): the platform's service level
//! objectives and what follows from them.
//!
//! - [`slo`]: `[[slo]]` in the config, checked once: what is measured (delivery latency,
//!   acceptance, API latency, webhook freshness), the objective, the period, a tenant.
//! - [`budget`]: error budgets and burn rates over the standard windows from counts of
//!   good and total events, with a minimum-event guard; the multi-window burn-rate alert
//!   policy (page at 14.4× over 1 h and 5 m or 6× over 6 h and 30 m, ticket at 1× over 3 d).
//! - [`window`]: the server's own per-minute counters of good and total events, from
//!   which the burn rates are computed without Prometheus; [`tracker`] keeps them for
//!   every objective and answers its status.
//! - [`lifecycle`]: an alert's life (triggered → acknowledged → resolved), escalation
//!   L1 → L2 → L3, the response window per priority and its attainment, miss reasons.
//! - [`rules`]: the same objectives and alerts as Prometheus recording and alerting rules
//!   and as Sloth SLO specs (`tsubame ops export-rules`), for teams that run Prometheus.

pub mod activity;
pub mod alerts;
pub mod budget;
pub mod clock;
pub mod config;
pub mod duration;
pub mod forecast;
pub mod lifecycle;
pub mod notify;
pub mod observe;
pub mod oncall;
pub mod report;
pub mod rules;
pub mod runner;
pub mod slo;
pub mod tls;
pub mod tracker;
pub mod window;
