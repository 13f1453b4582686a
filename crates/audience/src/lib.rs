//! A tenant's audience, the part without I/O: what a contact may hold and what a segment
//! means. The store keeps the records; this crate decides what goes in and what a tenant's
//! segment text selects.
//!
//! # Layout
//! - [`fields`]: contact addresses, time zones, locales and countries, normalised and checked.
//! - [`values`]: property values checked against the tenant's declarations (from JSON, for
//!   the APIs, and from text, for imports) and shown back.
//! - [`import`]: CSV columns mapped to contact fields and properties, rows checked, the
//!   file's encoding (UTF-8 or Shift_JIS) told from its first bytes.
//! - [`segment`]: the segment language: [`segment::lexer`] → [`segment::parser`] (positions
//!   kept) → [`segment::check`] (names resolved against declarations and lists, types
//!   checked) → a [`store::Condition`] the store runs as a parameterised query.

pub mod fields;
pub mod import;
pub mod segment;
pub mod values;

pub use segment::{SegmentError, parse_segment};
pub use values::ValueError;
