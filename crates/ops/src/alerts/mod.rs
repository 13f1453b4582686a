//! Alerts: the built-in rules ([`rule`]), their priorities from impact ([`priority`]), the
//! engine that groups, de-duplicates, inhibits, silences and escalates ([`engine`]),
//! silences and maintenance windows ([`silence`]).

pub mod conditions;
pub mod engine;
pub mod priority;
pub mod rule;
pub mod silence;

pub use engine::{Change, ChangeKind, Engine, EngineError, OpenAlert, Signal};
pub use priority::{Impact, priority};
pub use rule::Rule;
pub use silence::{Maintenance, Silence};
