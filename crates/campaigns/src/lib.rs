//! Campaigns: a newsletter or announcement sent to lists and segments of a tenant's
//! contacts. So far: [`local_time`], the moment a recipient gets a campaign sent "at 09:00
//! in each recipient's time zone", and [`zones`], the zone a recipient is taken to live in
//! when the contact has none, and [`window`], the days and hours a campaign may send in
//! the recipient's zone; [`documents`] reads and checks a campaign's audience, schedule and
//! window as the API takes them; [`ab`] and [`winner`] run A/B tests; [`desk`] is how the
//! console reaches the API's campaign calls.

pub mod ab;
pub mod desk;
pub mod documents;
pub mod expand;
pub mod local_time;
pub mod plan;
pub mod runner;
pub mod timing;
pub mod window;
pub mod winner;
pub mod zones;
