//! The operators' pages: the platform at a glance, queues per site with their actions,
//! a message looked up by id across tenants, tenants (create, limits, suspend), the
//! effective shaping per provider, and the platform's audit log.

pub mod audit;
pub mod messages;
pub mod overview;
pub mod queues;
pub mod rates;
pub mod shaping;
pub mod tenants;
