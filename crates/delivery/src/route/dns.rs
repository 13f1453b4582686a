//! DNS for delivery: MX sets and host addresses, with our own cache.
//!
//! hickory's cache is switched off. Ours keeps each answer until its TTL runs out (bounded by
//! `ttl_min`/`ttl_max`), caches negative answers for `negative_ttl`, and never caches a
//! temporary failure, so a truncated or failed lookup is retried rather than remembered
//! (hickory-dns issues #3959 and #2608 describe truncated answers cached as complete).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};

/// Which name servers to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameServers {
    /// Those in /etc/resolv.conf.
    System,
    /// These addresses (UDP, falling back to TCP for truncated answers).
    Listed(Vec<SocketAddr>),
}

/// Resolver settings, validated by the caller.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    pub servers: NameServers,
    /// Per query attempt.
    pub timeout: Duration,
    /// Lower bound for cached positive answers (a TTL of 0 would mean a lookup per message).
    pub ttl_min: Duration,
    /// Upper bound for cached positive answers.
    pub ttl_max: Duration,
    /// How long "no such domain" and "no records" are remembered.
    pub negative_ttl: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            servers: NameServers::System,
            timeout: Duration::from_secs(5),
            ttl_min: Duration::from_secs(5),
            ttl_max: Duration::from_secs(3600),
            negative_ttl: Duration::from_secs(300),
        }
    }
}

/// One mail exchanger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxHost {
    /// Lower-case host name without the trailing dot.
    pub name: String,
    pub preference: u16,
}

/// What DNS says about where a domain's mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxAnswer {
    /// Exchangers in preference order (ties by name). `implicit` when the domain had no
    /// MX records and its own A/AAAA records stand in (RFC 5321 §5.1).
    Hosts { hosts: Vec<MxHost>, implicit: bool },
    /// RFC 7505 null MX: the domain accepts no mail.
    NullMx,
    /// The domain does not exist, or has neither MX nor address records.
    NoDomain,
}

/// A lookup that could not be answered now; worth retrying later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DNS lookup for {name} failed: {reason}")]
pub struct DnsTempFailure {
    pub name: String,
    pub reason: String,
}

struct Cached<T> {
    value: T,
    until: Instant,
}

/// MX and address lookups with a TTL-honouring cache; cheap to clone.
#[derive(Clone)]
pub struct Dns {
    resolver: Arc<TokioResolver>,
    config: Arc<DnsConfig>,
    mx: Arc<Mutex<HashMap<String, Cached<MxAnswer>>>>,
    hosts: Arc<Mutex<HashMap<String, Cached<Vec<IpAddr>>>>>,
}

impl Dns {
    /// Builds the resolver. Fails only when the system configuration cannot be read.
    pub fn new(config: DnsConfig) -> Result<Dns, String> {
        let mut opts = ResolverOpts::default();
        opts.cache_size = 0;
        opts.timeout = config.timeout;
        opts.attempts = 2;
        opts.ndots = 0;
        opts.edns0 = true;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let provider = TokioRuntimeProvider::default();
        let builder = match &config.servers {
            NameServers::System => Resolver::builder(provider)
                .map_err(|e| format!("reading the system resolver configuration: {e}"))?,
            NameServers::Listed(addrs) => {
                let servers = addrs
                    .iter()
                    .map(|addr| {
                        let mut udp = ConnectionConfig::udp();
                        udp.port = addr.port();
                        let mut tcp = ConnectionConfig::tcp();
                        tcp.port = addr.port();
                        NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                    })
                    .collect();
                Resolver::builder_with_config(ResolverConfig::from_name_servers(servers), provider)
            }
        };
        let resolver = builder
            .with_options(opts)
            .build()
            .map_err(|e| format!("building the resolver: {e}"))?;
        Ok(Dns {
            resolver: Arc::new(resolver),
            config: Arc::new(config),
            mx: Default::default(),
            hosts: Default::default(),
        })
    }

    fn ttl(&self, valid_until: Instant) -> Instant {
        let now = Instant::now();
        let ttl = valid_until.saturating_duration_since(now);
        now + ttl.clamp(self.config.ttl_min, self.config.ttl_max)
    }

    /// Where mail for `domain` goes, from the cache when the answer is still fresh, with the
    /// time until which the answer may be reused.
    pub async fn mx(&self, domain: &str) -> Result<(MxAnswer, Instant), DnsTempFailure> {
        let key = domain.to_ascii_lowercase();
        if let Some(hit) = fresh(&self.mx, &key) {
            return Ok(hit);
        }
        let (answer, until) = self.lookup_mx(&key).await?;
        store(&self.mx, key, answer.clone(), until);
        Ok((answer, until))
    }

    async fn lookup_mx(&self, domain: &str) -> Result<(MxAnswer, Instant), DnsTempFailure> {
        let fqdn = format!("{domain}.");
        let negative = Instant::now() + self.config.negative_ttl;
        match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => {
                let mut hosts: Vec<MxHost> = lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::MX(mx) => Some(MxHost {
                            name: host_name(&mx.exchange.to_ascii()),
                            preference: mx.preference,
                        }),
                        _ => None,
                    })
                    .collect();
                let until = self.ttl(lookup.valid_until());
                // RFC 7505 §3: a single MX with an empty exchange ("."); treat any "." as null.
                if hosts.iter().any(|h| h.name.is_empty()) {
                    return Ok((MxAnswer::NullMx, until));
                }
                if hosts.is_empty() {
                    return self.implicit_mx(domain).await;
                }
                // Name as the tie-break keeps the site key stable across round-robin answers.
                hosts.sort_by(|a, b| (a.preference, &a.name).cmp(&(b.preference, &b.name)));
                Ok((
                    MxAnswer::Hosts {
                        hosts,
                        implicit: false,
                    },
                    until,
                ))
            }
            Err(err) if err.is_nx_domain() => Ok((MxAnswer::NoDomain, negative)),
            Err(err) if err.is_no_records_found() => self.implicit_mx(domain).await,
            Err(err) => Err(temp_failure(domain, &err)),
        }
    }

    /// RFC 5321 §5.1: without MX records the domain itself is the exchanger, if it has an
    /// address.
    async fn implicit_mx(&self, domain: &str) -> Result<(MxAnswer, Instant), DnsTempFailure> {
        match self.addresses(domain).await? {
            addrs if addrs.is_empty() => Ok((
                MxAnswer::NoDomain,
                Instant::now() + self.config.negative_ttl,
            )),
            _ => Ok((
                MxAnswer::Hosts {
                    hosts: vec![MxHost {
                        name: domain.to_string(),
                        preference: 0,
                    }],
                    implicit: true,
                },
                Instant::now() + self.config.ttl_min,
            )),
        }
    }

    /// The TXT strings at a name (each record's strings joined), uncached: for checking what
    /// a tenant published (DKIM, SPF, DMARC). Empty when there are none.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsTempFailure> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.txt_lookup(fqdn.as_str()).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part).into_owned())
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(err) if err.is_nx_domain() || err.is_no_records_found() => Ok(Vec::new()),
            Err(err) => Err(temp_failure(name, &err)),
        }
    }

    /// IPv4 and IPv6 addresses of a host (IPv4 first); empty when it has none.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsTempFailure> {
        let key = host.to_ascii_lowercase();
        if let Ok(ip) = key.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if let Some((hit, _)) = fresh(&self.hosts, &key) {
            return Ok(hit);
        }
        let fqdn = format!("{key}.");
        let (addrs, until) = match self.resolver.lookup_ip(fqdn.as_str()).await {
            Ok(lookup) => {
                let mut addrs: Vec<IpAddr> = lookup.iter().collect();
                addrs.sort_by_key(|ip| ip.is_ipv6());
                (addrs, self.ttl(lookup.valid_until()))
            }
            Err(err) if err.is_nx_domain() || err.is_no_records_found() => {
                (Vec::new(), Instant::now() + self.config.negative_ttl)
            }
            Err(err) => return Err(temp_failure(&key, &err)),
        };
        store(&self.hosts, key, addrs.clone(), until);
        Ok(addrs)
    }

    /// Forgets every cached answer (operators' "flush DNS").
    pub fn clear(&self) {
        self.mx.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.hosts.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

fn host_name(ascii: &str) -> String {
    ascii.trim_end_matches('.').to_ascii_lowercase()
}

fn temp_failure(name: &str, err: &NetError) -> DnsTempFailure {
    DnsTempFailure {
        name: name.to_string(),
        reason: err.to_string(),
    }
}

fn fresh<T: Clone>(cache: &Mutex<HashMap<String, Cached<T>>>, key: &str) -> Option<(T, Instant)> {
    let cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .get(key)
        .filter(|c| c.until > Instant::now())
        .map(|c| (c.value.clone(), c.until))
}

/// Bound on cached names; when reached, expired entries go first, then everything.
const CACHE_ENTRIES_MAX: usize = 100_000;

fn store<T>(cache: &Mutex<HashMap<String, Cached<T>>>, key: String, value: T, until: Instant) {
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= CACHE_ENTRIES_MAX {
        let now = Instant::now();
        cache.retain(|_, c| c.until > now);
        if cache.len() >= CACHE_ENTRIES_MAX {
            cache.clear();
        }
    }
    cache.insert(key, Cached { value, until });
}
