//! Opens and clicks made by machines, left out of human rates.
//!
//! - Mail privacy proxies fetch every image when the message arrives, whoever reads it:
//!   Apple Mail Privacy Protection (a bare `Mozilla/5.0` agent), Yahoo's and other
//!   prefetching proxies, and any fetch within seconds of sending.
//! - Security scanners (Microsoft Defender, Mimecast, Proofpoint, Barracuda...) follow every
//!   link seconds after delivery, with their own agents or headless browsers.
//!
//! Gmail's image proxy (`GoogleImageProxy`) fetches when a person opens the message, so it
//! counts as human unless it comes within seconds of sending.

/// An open this soon after sending is a prefetch.
pub const OPEN_PREFETCH_SECS: i64 = 2;
/// A click this soon after sending is a scanner's.
pub const CLICK_SCAN_SECS: i64 = 10;

/// Agents of scanners, prefetchers and tools, lower case.
const MACHINE_AGENTS: &[&str] = &[
    "bot",
    "crawler",
    "spider",
    "scanner",
    "preview",
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "java/",
    "okhttp",
    "headlesschrome",
    "phantomjs",
    "barracuda",
    "mimecast",
    "proofpoint",
    "symantec",
    "trendmicro",
    "forcepoint",
    "msoffice",
    "microsoft office",
    "yahoomailproxy",
    "ymailproxy",
];

fn agent_is_machine(user_agent: &str) -> bool {
    let ua = user_agent.trim();
    if ua.is_empty() || ua == "Mozilla/5.0" {
        return true;
    }
    let lower = ua.to_ascii_lowercase();
    MACHINE_AGENTS.iter().any(|m| lower.contains(m))
}

/// Why an open counts as a machine's, or `None` for a person's.
pub fn open_by_machine(user_agent: &str, seconds_after_send: i64) -> Option<&'static str> {
    if agent_is_machine(user_agent) {
        return Some("agent");
    }
    (seconds_after_send < OPEN_PREFETCH_SECS).then_some("prefetch")
}

/// Why a click counts as a machine's, or `None` for a person's.
pub fn click_by_machine(user_agent: &str, seconds_after_send: i64) -> Option<&'static str> {
    if agent_is_machine(user_agent) {
        return Some("agent");
    }
    (seconds_after_send < CLICK_SCAN_SECS).then_some("too_soon")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

    #[test]
    fn people_and_machines() {
        assert_eq!(open_by_machine(FIREFOX, 3600), None);
        assert_eq!(
            open_by_machine(
                "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
                600
            ),
            None,
            "Gmail fetches when a person opens"
        );
        assert_eq!(
            open_by_machine("Mozilla/5.0", 600),
            Some("agent"),
            "Apple MPP"
        );
        assert_eq!(open_by_machine(FIREFOX, 1), Some("prefetch"));
        assert_eq!(open_by_machine("", 600), Some("agent"));
        assert_eq!(click_by_machine(FIREFOX, 120), None);
        assert_eq!(click_by_machine(FIREFOX, 3), Some("too_soon"));
        assert_eq!(
            click_by_machine(
                "Mozilla/5.0 (X11) AppleWebKit/537.36 HeadlessChrome/120.0",
                600
            ),
            Some("agent")
        );
        assert_eq!(click_by_machine("python-requests/2.31", 600), Some("agent"));
    }
}
