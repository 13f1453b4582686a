//! `tsubame domain`: a tenant's sending domains. `add` makes the DKIM key and prints the DNS
//! records to publish; `check` looks them up and says which are in place.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use delivery::route::dns::{Dns, DnsConfig, NameServers};
use dkim::Algorithm;
use store::{ControlPlane, ControlStore, SendingDomain};

use crate::datadir::DataDir;
use crate::tenant_cmd;

#[derive(clap::Subcommand, Debug)]
pub enum DomainCommand {
    /// Add a sending domain: makes its DKIM key and prints the DNS records to publish.
    Add {
        domain: String,
        #[arg(long)]
        tenant: String,
        /// rsa (2048 bits) or ed25519.
        #[arg(long, default_value = "rsa")]
        algorithm: String,
        /// DKIM selector (default: ts + this year and month).
        #[arg(long)]
        selector: Option<String>,
        #[command(flatten)]
        dns: RecordArgs,
    },
    /// Print the DNS records of a domain again.
    Records {
        domain: String,
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        dns: RecordArgs,
    },
    /// List a tenant's sending domains.
    Ls {
        #[arg(long)]
        tenant: String,
    },
    /// Remove a sending domain (mail from it is refused afterwards).
    Rm {
        domain: String,
        #[arg(long)]
        tenant: String,
    },
    /// Look the records up in DNS and say which are in place (exit 1 when DKIM is not).
    Check {
        domain: String,
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        dns: RecordArgs,
        /// DNS server to ask (default: the system's).
        #[arg(long)]
        resolver: Option<SocketAddr>,
    },
}

/// What the printed records point at.
#[derive(clap::Args, Debug)]
pub struct RecordArgs {
    /// This platform's outbound host (SPF `a:` and the return-path MX).
    #[arg(long)]
    mail_host: Option<String>,
    /// SPF mechanism instead of `a:<mail host>` (e.g. `include:_spf.example.net`).
    #[arg(long)]
    spf: Option<String>,
    /// Where DMARC aggregate reports should go.
    #[arg(long)]
    dmarc_rua: Option<String>,
}

impl RecordArgs {
    fn host(&self) -> String {
        self.mail_host.clone().unwrap_or_else(local_hostname)
    }

    fn spf(&self) -> String {
        self.spf
            .clone()
            .unwrap_or_else(|| format!("a:{}", self.host()))
    }
}

fn local_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into our buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if rc == 0 && end > 0 {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "localhost".into()
    }
}

fn print_records(domain: &SendingDomain, dns: &RecordArgs) -> anyhow::Result<Vec<dkim::DnsRecord>> {
    let algorithm = Algorithm::parse(&domain.algorithm).context("stored algorithm")?;
    let records = dkim::records(
        &domain.domain,
        &domain.selector,
        algorithm,
        &domain.public_key,
        &dns.spf(),
        dns.dmarc_rua.as_deref(),
        &dns.host(),
    );
    Ok(records)
}

/// One of a tenant's domains, or an error naming both.
async fn domain_of(
    store: &ControlPlane,
    tenant: &store::Tenant,
    domain: &str,
) -> anyhow::Result<SendingDomain> {
    store
        .sending_domain(&tenant.id, domain)
        .await?
        .with_context(|| format!("tenant {} has no domain {domain}", tenant.name))
}

pub fn run(command: DomainCommand, data: &DataDir) -> anyhow::Result<()> {
    tenant_cmd::runtime()?.block_on(async {
        let store = tenant_cmd::open(data).await?;
        match command {
            DomainCommand::Add {
                domain,
                tenant,
                algorithm,
                selector,
                dns,
            } => {
                let tenant = tenant_cmd::find(&store, &tenant).await?;
                let Some(algorithm) = Algorithm::parse(&algorithm) else {
                    bail!("--algorithm must be rsa or ed25519");
                };
                let new = tenancy::new_domain(&tenant.id, domain, algorithm, selector)?;
                let added = store.add_domain(new).await?;
                println!(
                    "domain {} added for tenant {}; publish:",
                    added.domain, tenant.name
                );
                show(&print_records(&added, &dns)?);
            }
            DomainCommand::Records {
                domain,
                tenant,
                dns,
            } => {
                let tenant = tenant_cmd::find(&store, &tenant).await?;
                let found = domain_of(&store, &tenant, &domain).await?;
                show(&print_records(&found, &dns)?);
            }
            DomainCommand::Ls { tenant } => {
                let tenant = tenant_cmd::find(&store, &tenant).await?;
                println!("{:<40} {:<12} ALGORITHM", "DOMAIN", "SELECTOR");
                for d in store.domains(&tenant.id).await? {
                    println!("{:<40} {:<12} {}", d.domain, d.selector, d.algorithm);
                }
            }
            DomainCommand::Rm { domain, tenant } => {
                let tenant = tenant_cmd::find(&store, &tenant).await?;
                if !store.remove_domain(&tenant.id, &domain).await? {
                    bail!("tenant {} has no domain {domain}", tenant.name);
                }
                println!("domain {domain} removed");
            }
            DomainCommand::Check {
                domain,
                tenant,
                dns,
                resolver,
            } => {
                let tenant = tenant_cmd::find(&store, &tenant).await?;
                let found = domain_of(&store, &tenant, &domain).await?;
                let resolver = Dns::new(DnsConfig {
                    servers: match resolver {
                        Some(addr) => NameServers::Listed(vec![addr]),
                        None => NameServers::System,
                    },
                    timeout: Duration::from_secs(5),
                    ..DnsConfig::default()
                })
                .map_err(|e| anyhow::anyhow!("resolver: {e}"))?;
                if !check(&resolver, &found, &print_records(&found, &dns)?).await? {
                    std::process::exit(1);
                }
            }
        }
        Ok(())
    })
}

fn show(records: &[dkim::DnsRecord]) {
    for r in records {
        println!("\n{} {} \"{}\"\n  ; {}", r.name, r.kind, r.value, r.purpose);
    }
}

/// Looks each record up; true when the DKIM key is published as it should be.
async fn check(
    dns: &Dns,
    domain: &SendingDomain,
    records: &[dkim::DnsRecord],
) -> anyhow::Result<bool> {
    let mut dkim_ok = false;
    for record in records.iter().filter(|r| r.kind == "TXT") {
        let found = dns
            .txt(&record.name)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let state = dkim::published::judge(record, &found, &domain.public_key);
        if record.name.contains("._domainkey.") {
            dkim_ok = state == dkim::published::Published::Ok;
        }
        let state = state.as_str().to_ascii_uppercase();
        println!("{state:<10} {} TXT", record.name);
    }
    Ok(dkim_ok)
}
