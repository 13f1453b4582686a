//! Operations built in: the platform's service level objectives, alerts with priorities,
//! a response objective and on-call escalation, notifications, reports and capacity
//! forecasts.
//!
//! - [`slo`], [`budget`], [`window`], [`tracker`]: `[[slo]]`, error budgets and burn rates
//!   over the standard windows with a minimum-event guard, the multi-window policy, the
//!   server's own counters; [`rules`]: the same as Prometheus rules and Sloth specs.
//! - [`alerts`]: built-in rules, conditions from observations, priorities from impact, the
//!   engine (grouping, de-duplication, inhibition, silences, escalation); [`lifecycle`]:
//!   one alert's life and the response windows; [`oncall`]: the rotation.
//! - [`notify`]: Slack, PagerDuty Events v2, signed webhook and mail payloads, sent with
//!   retries; [`report`]: the chat and monthly reports; [`forecast`]: capacity forecasts.
//! - [`runner`]: all of it inside the server, with [`observe`] and [`activity`] gathering
//!   what it looks at and [`clock`] the time it runs on; [`config`]: `[ops]`.

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
