//! Open and click tracking for campaigns.
//!
//! - [`token`]: what a tracking link says (message, recipient, link number, the target URL
//!   of a click), signed with this platform's key: no database row per link, and a forged
//!   or altered token is refused.
//! - [`rewrite`]: a message's HTML with its links pointing through the tracking host and
//!   an open pixel before `</body>`.
//! - [`machine`]: whether an open or click was made by a machine (a mail privacy proxy
//!   fetching every image, a security scanner following every link seconds after
//!   delivery), so human rates leave it out.

pub mod machine;
pub mod rewrite;
pub mod token;
