//! When each recipient of a campaign may be sent: the campaign's schedule (one instant, or a
//! local time in each recipient's zone) and then its sending window, both in the
//! recipient's zone ([`crate::zones::recipient_zone`]).

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::documents::Schedule;
use crate::local_time::{LocalSchedule, moment, send_instant};
use crate::window::SendWindow;
use crate::zones::recipient_zone;

/// The zone furthest ahead (UTC+14): a local-time campaign's first recipients live there.
const EARLIEST_ZONE: &str = "Pacific/Kiritimati";

/// A campaign's timing, read from its documents.
#[derive(Debug, Clone, Default)]
pub struct Timing {
    pub schedule: Option<Schedule>,
    pub window: Option<SendWindow>,
    /// The tenant's zone, for contacts whose zone and country say nothing.
    pub tenant_zone: Option<String>,
}

impl Timing {
    /// When the send starts: its instant, or for a local time the moment it comes first
    /// anywhere (UTC+14); `None` for "when started".
    pub fn starts_at(&self) -> Option<Timestamp> {
        match &self.schedule {
            None => None,
            Some(Schedule::At(at)) => Some(*at),
            Some(Schedule::Local(LocalSchedule { date, time, .. })) => {
                let zone = TimeZone::get(EARLIEST_ZONE).unwrap_or(TimeZone::UTC);
                moment(*date, *time, &zone)
            }
        }
    }

    /// The earliest instant a recipient may be sent, as seen at `now` (never before `now`).
    pub fn not_before(
        &self,
        timezone: Option<&str>,
        country: Option<&str>,
        now: Timestamp,
    ) -> Timestamp {
        let zone = || recipient_zone(timezone, country, self.tenant_zone.as_deref()).0;
        let mut zoned = None;
        let at = match &self.schedule {
            None => now,
            Some(Schedule::At(at)) => (*at).max(now),
            Some(Schedule::Local(local)) => {
                let z = zoned.get_or_insert_with(zone);
                send_instant(local, z, now)
            }
        };
        match &self.window {
            None => at,
            Some(window) => {
                let z = zoned.get_or_insert_with(zone);
                window.earliest(at, z)
            }
        }
    }
}

impl Timing {
    /// The timing a campaign's schedule and window documents say.
    pub fn of(campaign: &store::Campaign) -> Result<Timing, crate::documents::DocumentError> {
        let parse = |text: &str, field: &str| {
            serde_json::from_str::<serde_json::Value>(text).map_err(|_| {
                crate::documents::DocumentError {
                    field: field.into(),
                    message: "is not JSON".into(),
                }
            })
        };
        let schedule = match campaign.draft.schedule.as_deref() {
            Some(text) => Some(Schedule::read(&parse(text, "schedule")?)?),
            None => None,
        };
        let window = match campaign.draft.send_window.as_deref() {
            Some(text) => Some(crate::documents::read_window(&parse(text, "window")?)?),
            None => None,
        };
        Ok(Timing {
            schedule,
            window,
            tenant_zone: None,
        })
    }
}
