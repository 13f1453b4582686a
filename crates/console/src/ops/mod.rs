//! The operators' pages: the platform at a glance, queues per site with their actions,
//! a message looked up by id across tenants, tenants (create, limits, suspend), the
//! effective shaping per provider, the platform's audit log, and operations built in:
//! alerts and silences, objectives with their budgets and burn rates, the on-call rotation,
//! the reports archive and capacity forecasts.

pub mod alerts;
pub mod audit;
pub mod cluster;
pub mod forecast;
pub mod messages;
pub mod oncall;
pub mod overview;
pub mod queues;
pub mod rates;
pub mod reports;
pub mod shaping;
pub mod slo;
pub mod tenants;
