//! The zone a recipient is taken to live in: the contact's own, else its country's usual
//! zone, else the tenant's, else UTC. A country spanning several zones maps to the one most
//! of its people live in (the United States to New York, Russia to Moscow, Australia to
//! Sydney, Brazil to São Paulo...): a stated approximation, which the contact's own zone
//! overrides.

use jiff::tz::TimeZone;

/// Usual zones of countries by ISO 3166-1 alpha-2 code, sorted by code.
const USUAL: &[(&str, &str)] = &[
    ("AE", "Asia/Dubai"),
    ("AR", "America/Argentina/Buenos_Aires"),
    ("AT", "Europe/Vienna"),
    ("AU", "Australia/Sydney"),
    ("BD", "Asia/Dhaka"),
    ("BE", "Europe/Brussels"),
    ("BR", "America/Sao_Paulo"),
    ("CA", "America/Toronto"),
    ("CH", "Europe/Zurich"),
    ("CL", "America/Santiago"),
    ("CN", "Asia/Shanghai"),
    ("CO", "America/Bogota"),
    ("CZ", "Europe/Prague"),
    ("DE", "Europe/Berlin"),
    ("DK", "Europe/Copenhagen"),
    ("EG", "Africa/Cairo"),
    ("ES", "Europe/Madrid"),
    ("FI", "Europe/Helsinki"),
    ("FR", "Europe/Paris"),
    ("GB", "Europe/London"),
    ("GR", "Europe/Athens"),
    ("HK", "Asia/Hong_Kong"),
    ("ID", "Asia/Jakarta"),
    ("IE", "Europe/Dublin"),
    ("IL", "Asia/Jerusalem"),
    ("IN", "Asia/Kolkata"),
    ("IR", "Asia/Tehran"),
    ("IT", "Europe/Rome"),
    ("JP", "Asia/Tokyo"),
    ("KE", "Africa/Nairobi"),
    ("KI", "Pacific/Tarawa"),
    ("KR", "Asia/Seoul"),
    ("LK", "Asia/Colombo"),
    ("MM", "Asia/Yangon"),
    ("MX", "America/Mexico_City"),
    ("MY", "Asia/Kuala_Lumpur"),
    ("NG", "Africa/Lagos"),
    ("NL", "Europe/Amsterdam"),
    ("NO", "Europe/Oslo"),
    ("NP", "Asia/Kathmandu"),
    ("NZ", "Pacific/Auckland"),
    ("PE", "America/Lima"),
    ("PH", "Asia/Manila"),
    ("PK", "Asia/Karachi"),
    ("PL", "Europe/Warsaw"),
    ("PT", "Europe/Lisbon"),
    ("RO", "Europe/Bucharest"),
    ("RU", "Europe/Moscow"),
    ("SA", "Asia/Riyadh"),
    ("SE", "Europe/Stockholm"),
    ("SG", "Asia/Singapore"),
    ("TH", "Asia/Bangkok"),
    ("TR", "Europe/Istanbul"),
    ("TW", "Asia/Taipei"),
    ("UA", "Europe/Kyiv"),
    ("US", "America/New_York"),
    ("VN", "Asia/Ho_Chi_Minh"),
    ("ZA", "Africa/Johannesburg"),
];

/// A country's usual zone name, if the table knows the country.
pub fn usual_zone(country: &str) -> Option<&'static str> {
    let code = country.trim().to_ascii_uppercase();
    USUAL
        .binary_search_by(|(c, _)| (*c).cmp(code.as_str()))
        .ok()
        .map(|i| USUAL[i].1)
}

/// Where a recipient's zone came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneSource {
    Contact,
    Country,
    Tenant,
    Utc,
}

/// The recipient's zone: the contact's, its country's usual one, the tenant's, or UTC, the
/// first that names a zone the time zone database knows.
pub fn recipient_zone(
    contact: Option<&str>,
    country: Option<&str>,
    tenant: Option<&str>,
) -> (TimeZone, ZoneSource) {
    let candidates = [
        (contact, ZoneSource::Contact),
        (country.and_then(usual_zone), ZoneSource::Country),
        (tenant, ZoneSource::Tenant),
    ];
    for (name, source) in candidates {
        if let Some(zone) = name.and_then(|n| TimeZone::get(n).ok()) {
            return (zone, source);
        }
    }
    (TimeZone::UTC, ZoneSource::Utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_every_zone_exists() {
        assert!(USUAL.windows(2).all(|w| w[0].0 < w[1].0), "sorted by code");
        for (code, zone) in USUAL {
            assert!(
                TimeZone::get(zone).is_ok(),
                "{code}: {zone} is not a known zone"
            );
        }
    }

    #[test]
    fn the_first_known_zone_wins() {
        let (_, source) = recipient_zone(Some("Asia/Tokyo"), Some("US"), Some("Europe/Paris"));
        assert_eq!(source, ZoneSource::Contact);
        let (zone, source) = recipient_zone(Some("Not/AZone"), Some("in"), None);
        assert_eq!(source, ZoneSource::Country);
        assert_eq!(zone.iana_name(), Some("Asia/Kolkata"));
        let (_, source) = recipient_zone(None, Some("XX"), Some("Europe/Paris"));
        assert_eq!(source, ZoneSource::Tenant);
        assert_eq!(recipient_zone(None, None, None).1, ZoneSource::Utc);
    }
}
