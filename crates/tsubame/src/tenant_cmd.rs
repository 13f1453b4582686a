//! `tsubame tenant` and `tsubame key`: the control plane from the command line, on the data
//! directory's database (the server may be running: SQLite's WAL lets both at it).

use anyhow::{Context, bail};
use store::{ControlPlane, ControlStore, Scopes, Tenant};

use crate::datadir::DataDir;

#[derive(clap::Subcommand, Debug)]
pub enum TenantCommand {
    /// Add a tenant (letters, digits, '.', '_', '-').
    Add {
        name: String,
        /// Messages per second accepted from it (default: no limit).
        #[arg(long)]
        rate: Option<i64>,
        /// Messages per UTC day (default: no quota).
        #[arg(long)]
        daily_quota: Option<i64>,
    },
    /// List tenants.
    Ls,
    /// Remove a tenant and everything it owns (keys included).
    Rm { name: String },
    /// Suspend a tenant: its API keys and SMTP logins are refused with the reason.
    Suspend {
        name: String,
        /// Told to the tenant's clients (one line).
        #[arg(long)]
        reason: String,
    },
    /// Lift a tenant's suspension.
    Reactivate { name: String },
    /// How the tenant's campaign opens and clicks are tracked: off, anonymous (client
    /// addresses truncated; the default) or full.
    Tracking { name: String, mode: String },
    /// The tenant's time zone (IANA name, e.g. Asia/Tokyo; "none" clears it): campaigns'
    /// local times and sending windows use it for contacts whose zone and country say
    /// nothing.
    Zone { name: String, zone: String },
}

#[derive(clap::Subcommand, Debug)]
pub enum KeyCommand {
    /// Make an API key; it is printed once and stored only as a hash.
    Add {
        /// The tenant (name or id).
        #[arg(long)]
        tenant: String,
        /// A label for the key.
        #[arg(long, default_value = "default")]
        name: String,
        /// What it may do: send, read, manage (comma-separated) or all.
        #[arg(long, default_value = "send")]
        scopes: String,
    },
    /// List a tenant's keys (never their secrets).
    Ls {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a key by its id (the part after `tsb_`, as `key ls` shows it).
    Revoke {
        #[arg(long)]
        tenant: String,
        id: String,
    },
}

/// A small runtime for one command on the control database.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// The control plane the server of this data directory uses: the shared PostgreSQL whose
/// address `serve` left there, else the directory's SQLite database (created if needed).
pub(crate) async fn open(data: &DataDir) -> anyhow::Result<ControlPlane> {
    std::fs::create_dir_all(&data.root)
        .with_context(|| format!("creating {}", data.root.display()))?;
    let marker = data.control_postgres();
    if let Ok(url) = std::fs::read_to_string(&marker) {
        let url = url.trim();
        return ControlPlane::open(&data.control(), Some(url))
            .await
            .with_context(|| {
                format!(
                    "connecting to the control plane named in {}",
                    marker.display()
                )
            });
    }
    let path = data.control();
    ControlPlane::open(&path, None)
        .await
        .with_context(|| format!("opening {}", path.display()))
}

/// A tenant by name or id, or an error naming it.
pub(crate) async fn find(store: &ControlPlane, tenant: &str) -> anyhow::Result<Tenant> {
    match store.tenant(tenant).await? {
        Some(found) => Ok(found),
        None => bail!("no tenant named {tenant:?}"),
    }
}

fn limit(value: Option<i64>) -> String {
    value.map_or("-".into(), |v| v.to_string())
}

pub fn tenant(command: TenantCommand, data: &DataDir, json: bool) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let store = open(data).await?;
        match command {
            TenantCommand::Add {
                name,
                rate,
                daily_quota,
            } => {
                let tenant = store.add_tenant(&name).await?;
                if rate.is_some() || daily_quota.is_some() {
                    store.set_tenant_limits(&tenant.id, rate, daily_quota).await?;
                }
                println!("tenant {} added ({})", tenant.name, tenant.id);
            }
            TenantCommand::Ls => {
                let tenants = store.tenants().await?;
                if json {
                    let rows: Vec<_> = tenants
                        .iter()
                        .map(|t| {
                            serde_json::json!({ "id": t.id, "name": t.name, "created_ms": t.created_ms,
                                "rate_per_sec": t.rate_per_sec, "daily_quota": t.daily_quota,
                                "suspended": t.suspended })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                } else {
                    println!(
                        "{:<24} {:<20} {:>10} {:>12}  STATUS",
                        "NAME", "ID", "RATE/S", "DAILY QUOTA"
                    );
                    for t in tenants {
                        let status = t
                            .suspended
                            .as_deref()
                            .map_or("active".to_string(), |why| format!("suspended: {why}"));
                        println!(
                            "{:<24} {:<20} {:>10} {:>12}  {status}",
                            t.name,
                            t.id,
                            limit(t.rate_per_sec),
                            limit(t.daily_quota)
                        );
                    }
                }
            }
            TenantCommand::Rm { name } => {
                let tenant = find(&store, &name).await?;
                store.remove_tenant(&tenant.id).await?;
                println!("tenant {} removed", tenant.name);
            }
            TenantCommand::Suspend { name, reason } => {
                let tenant = find(&store, &name).await?;
                store.set_tenant_suspended(&tenant.id, Some(&reason)).await?;
                println!("tenant {} suspended", tenant.name);
            }
            TenantCommand::Reactivate { name } => {
                let tenant = find(&store, &name).await?;
                store.set_tenant_suspended(&tenant.id, None).await?;
                println!("tenant {} reactivated", tenant.name);
            }
            TenantCommand::Tracking { name, mode } => {
                let Some(mode) = store::TrackingMode::parse(&mode) else {
                    bail!("tracking mode must be off, anonymous or full");
                };
                let tenant = find(&store, &name).await?;
                store::CampaignStore::set_tracking_mode(&store, &tenant.id, mode).await?;
                println!("tenant {} tracking: {}", tenant.name, mode.as_str());
            }
            TenantCommand::Zone { name, zone } => {
                let zone = (zone != "none").then_some(zone);
                if let Some(zone) = &zone
                    && jiff::tz::TimeZone::get(zone).is_err()
                {
                    bail!("{zone:?} is not a time zone name (IANA, e.g. Asia/Tokyo)");
                }
                let tenant = find(&store, &name).await?;
                store::CampaignStore::set_tenant_zone(&store, &tenant.id, zone.as_deref()).await?;
                println!(
                    "tenant {} time zone: {}",
                    tenant.name,
                    zone.as_deref().unwrap_or("none (UTC)")
                );
            }
        }
        Ok(())
    })
}

pub fn key(command: KeyCommand, data: &DataDir, json: bool) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let store = open(data).await?;
        match command {
            KeyCommand::Add {
                tenant,
                name,
                scopes,
            } => {
                let tenant = find(&store, &tenant).await?;
                let scopes = Scopes::parse(&scopes)?;
                let new = store.add_key(&tenant.id, &name, scopes).await?;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({ "id": new.key.id, "tenant": tenant.name,
                            "scopes": scopes.to_text(), "key": new.token })
                    );
                } else {
                    println!("{}", new.token);
                    eprintln!(
                        "key {} for tenant {} ({}): shown once, keep it now",
                        new.key.id,
                        tenant.name,
                        scopes.to_text()
                    );
                }
            }
            KeyCommand::Ls { tenant } => {
                let tenant = find(&store, &tenant).await?;
                let keys = store.keys(&tenant.id).await?;
                if json {
                    let rows: Vec<_> = keys
                        .iter()
                        .map(|k| {
                            serde_json::json!({ "id": k.id, "name": k.name, "scopes": k.scopes.to_text(),
                                "created_ms": k.created_ms, "revoked_ms": k.revoked_ms })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                } else {
                    println!("{:<14} {:<20} {:<18} STATE", "ID", "NAME", "SCOPES");
                    for k in keys {
                        let state = if k.revoked_ms.is_some() { "revoked" } else { "active" };
                        println!("{:<14} {:<20} {:<18} {}", k.id, k.name, k.scopes.to_text(), state);
                    }
                }
            }
            KeyCommand::Revoke { tenant, id } => {
                let tenant = find(&store, &tenant).await?;
                if !store.revoke_key(&tenant.id, &id).await? {
                    bail!("tenant {} has no active key {id}", tenant.name);
                }
                println!("key {id} revoked");
            }
        }
        Ok(())
    })
}
