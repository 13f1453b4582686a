//! Routing: which hosts take a recipient domain's mail, and which *site* (shared queue and
//! budget) that makes it part of.
//!
//! Static routes from the configuration win (smarthosts, test sinks); otherwise DNS MX, with
//! the domain's own address records as the implicit MX. A site is the ordered set of
//! exchangers: every domain hosted on the same MX hosts shares one site.

pub mod dns;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::connection::Credentials;
use crate::tls::TlsPolicy;
use dns::{Dns, MxAnswer};

/// A host and port to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or IP address literal.
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Which recipient domains a static route applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainPattern {
    /// Exactly this domain (lower case).
    Exact(String),
    /// `*.example.com`: any subdomain of example.com, not example.com itself.
    Subdomains(String),
    /// `*`: every domain.
    Any,
}

impl DomainPattern {
    /// Parses `example.com`, `*.example.com` or `*`.
    pub fn parse(text: &str) -> Result<DomainPattern, String> {
        let text = text.trim().to_ascii_lowercase();
        if text == "*" {
            return Ok(DomainPattern::Any);
        }
        let (pattern, domain) = match text.strip_prefix("*.") {
            Some(rest) => (
                DomainPattern::Subdomains(rest.to_string()),
                rest.to_string(),
            ),
            None => (DomainPattern::Exact(text.clone()), text.clone()),
        };
        let valid = !domain.is_empty()
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            return Err(format!("{text:?} is not a domain, *.domain or *"));
        }
        Ok(pattern)
    }

    fn matches(&self, domain: &str) -> bool {
        match self {
            DomainPattern::Exact(d) => d == domain,
            DomainPattern::Subdomains(d) => domain
                .strip_suffix(d.as_str())
                .is_some_and(|head| head.ends_with('.')),
            DomainPattern::Any => true,
        }
    }
}

/// A route from the configuration.
#[derive(Debug, Clone)]
pub struct StaticRoute {
    pub pattern: DomainPattern,
    /// Tried in order.
    pub hosts: Vec<HostPort>,
    /// TLS policy for this route; the default policy when `None`.
    pub tls: Option<TlsPolicy>,
    /// SMTP AUTH towards these hosts (requires TLS).
    pub auth: Option<Credentials>,
}

/// Where a domain's mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The site this route belongs to: its queue and shaping budget.
    pub site: Arc<str>,
    /// Hosts in the order to try them.
    pub hosts: Vec<HostPort>,
    pub tls: TlsPolicy,
    pub auth: Option<Credentials>,
}

/// Why a domain cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// RFC 7505 null MX: bounce with 5.1.10.
    #[error("domain {0} accepts no mail (null MX)")]
    NullMx(String),
    /// NXDOMAIN, or neither MX nor address records: bounce with 5.1.2.
    #[error("domain {0} does not exist or has no mail exchanger")]
    NoDomain(String),
    /// The lookup failed for now: defer with 4.4.3.
    #[error(transparent)]
    Temporary(#[from] dns::DnsTempFailure),
}

/// Routing settings, validated by the caller.
#[derive(Debug, Clone)]
pub struct RoutingConfig {
    pub statics: Vec<StaticRoute>,
    /// Policy for MX routes and static routes without their own.
    pub default_tls: TlsPolicy,
    /// Port for MX hosts (25; tests use another).
    pub mx_port: u16,
}

struct CachedRoute {
    route: Arc<Route>,
    until: Instant,
}

/// Resolves recipient domains to routes; cheap to clone.
#[derive(Clone)]
pub struct Router {
    dns: Dns,
    config: Arc<RoutingConfig>,
    cache: Arc<Mutex<HashMap<Arc<str>, CachedRoute>>>,
}

/// How long a static route's answer is kept (they never change while running).
const STATIC_ROUTE_TTL: Duration = Duration::from_secs(3600);

impl Router {
    pub fn new(dns: Dns, config: RoutingConfig) -> Router {
        Router {
            dns,
            config: Arc::new(config),
            cache: Default::default(),
        }
    }

    /// The resolver, for host address lookups at connect time.
    pub fn dns(&self) -> &Dns {
        &self.dns
    }

    /// The route for `domain` (lower case).
    pub async fn route(&self, domain: &str) -> Result<Arc<Route>, RouteError> {
        if let Some(route) = self.cached(domain) {
            return Ok(route);
        }
        let (route, until) = match self
            .config
            .statics
            .iter()
            .find(|r| r.pattern.matches(domain))
        {
            Some(static_route) => (
                self.static_route(static_route),
                Instant::now() + STATIC_ROUTE_TTL,
            ),
            None => match smtp_wire::address::address_literal(domain) {
                Some(ip) => (
                    self.literal_route(domain, ip),
                    Instant::now() + STATIC_ROUTE_TTL,
                ),
                None => self.mx_route(domain).await?,
            },
        };
        let route = Arc::new(route);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= 100_000 {
            let now = Instant::now();
            cache.retain(|_, c| c.until > now);
        }
        cache.insert(
            Arc::from(domain),
            CachedRoute {
                route: route.clone(),
                until,
            },
        );
        Ok(route)
    }

    /// The cached route, if still fresh (no I/O).
    pub fn cached(&self, domain: &str) -> Option<Arc<Route>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(domain)
            .filter(|c| c.until > Instant::now())
            .map(|c| c.route.clone())
    }

    fn static_route(&self, route: &StaticRoute) -> Route {
        let hosts: Vec<String> = route.hosts.iter().map(|h| h.to_string()).collect();
        Route {
            site: Arc::from(format!("route:{}", hosts.join(",")).as_str()),
            hosts: route.hosts.clone(),
            tls: route.tls.unwrap_or(self.config.default_tls),
            auth: route.auth.clone(),
        }
    }

    /// An address literal (`user@[192.0.2.1]`) names its host: no MX lookup (RFC 5321
    /// §5.1). Each literal is a site of its own.
    fn literal_route(&self, domain: &str, ip: std::net::IpAddr) -> Route {
        Route {
            site: Arc::from(domain),
            hosts: vec![HostPort {
                host: ip.to_string(),
                port: self.config.mx_port,
            }],
            tls: self.config.default_tls,
            auth: None,
        }
    }

    async fn mx_route(&self, domain: &str) -> Result<(Route, Instant), RouteError> {
        let (answer, until) = self.dns.mx(domain).await?;
        match answer {
            MxAnswer::NullMx => Err(RouteError::NullMx(domain.to_string())),
            MxAnswer::NoDomain => Err(RouteError::NoDomain(domain.to_string())),
            MxAnswer::Hosts { hosts, .. } => {
                let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
                let route = Route {
                    site: Arc::from(names.join(",").as_str()),
                    hosts: hosts
                        .iter()
                        .map(|h| HostPort {
                            host: h.name.clone(),
                            port: self.config.mx_port,
                        })
                        .collect(),
                    tls: self.config.default_tls,
                    auth: None,
                };
                Ok((route, until))
            }
        }
    }

    /// Forgets cached routes and DNS answers.
    pub fn clear(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.dns.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_documented() {
        let exact = DomainPattern::parse("Example.COM").unwrap();
        assert!(exact.matches("example.com"));
        assert!(!exact.matches("sub.example.com"));
        let subs = DomainPattern::parse("*.example.com").unwrap();
        assert!(subs.matches("a.example.com"));
        assert!(subs.matches("a.b.example.com"));
        assert!(!subs.matches("example.com"));
        assert!(!subs.matches("badexample.com"));
        assert!(DomainPattern::parse("*").unwrap().matches("anything.test"));
        for bad in ["", "*.", "a..b", "exa mple.com", "**.x"] {
            assert!(DomainPattern::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
