//! `tsubame login`: console logins on the data directory's database. Passwords are read
//! from the first line of stdin and stored argon2-hashed.

use std::io::BufRead;

use anyhow::{Context, bail};
use store::{ConsoleStore, Role};

use crate::datadir::DataDir;
use crate::tenant_cmd::{find, open, runtime};

#[derive(clap::Subcommand, Debug)]
pub enum LoginCommand {
    /// Add a login: a tenant's person (--tenant and --role) or an operator (--operator).
    Add {
        /// E-mail address the person signs in with.
        email: String,
        /// The tenant (name or id) the person works for.
        #[arg(long, conflicts_with = "operator")]
        tenant: Option<String>,
        /// owner, developer, marketer or viewer.
        #[arg(long, default_value = "viewer")]
        role: String,
        /// One of the platform's operators (every tenant, queues, shaping).
        #[arg(long)]
        operator: bool,
        /// The name the person is shown by (default: the address).
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List logins (one tenant's with --tenant).
    Ls {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Remove a login; its sessions end.
    Rm { email: String },
    /// Set a new password (read from stdin); every session of the login ends.
    Passwd { email: String },
}

fn read_password() -> anyhow::Result<String> {
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("reading the password from stdin")?;
    Ok(password.trim_end_matches(['\r', '\n']).to_string())
}

fn hash(password: &str) -> anyhow::Result<String> {
    console::auth::passwords::hash(password).map_err(|e| anyhow::anyhow!("{e}"))
}

pub fn run(command: LoginCommand, data: &DataDir) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let store = open(data).await?;
        match command {
            LoginCommand::Add {
                email,
                tenant,
                role,
                operator,
                name,
            } => {
                let (tenant_id, role) = if operator {
                    (None, Role::Operator)
                } else {
                    let Some(tenant) = tenant else {
                        bail!("give --tenant NAME (a tenant's login) or --operator");
                    };
                    let role = Role::parse(&role)
                        .filter(|r| Role::TENANT_ROLES.contains(r))
                        .with_context(|| {
                            format!("--role {role:?}: owner, developer, marketer or viewer")
                        })?;
                    (Some(find(&store, &tenant).await?.id), role)
                };
                let password_hash = hash(&read_password()?)?;
                let login = store
                    .add_login(&email, tenant_id.as_deref(), role, &password_hash)
                    .await?;
                if !name.is_empty()
                    && let Err(err) = store.set_display_name(&login.id, &name).await
                {
                    store.remove_login(&login.id).await?;
                    return Err(err.into());
                }
                store
                    .audit(
                        tenant_id.as_deref(),
                        "cli",
                        "login.add",
                        &login.email,
                        "local",
                    )
                    .await?;
                println!("login {} added ({})", login.email, role.as_str());
            }
            LoginCommand::Ls { tenant } => {
                let tenant_id = match tenant {
                    Some(name) => Some(find(&store, &name).await?.id),
                    None => None,
                };
                println!(
                    "{:<40} {:<10} {:<20} {:<5} NAME",
                    "EMAIL", "ROLE", "TENANT", "TOTP"
                );
                for login in store.logins(tenant_id.as_deref()).await? {
                    println!(
                        "{:<40} {:<10} {:<20} {:<5} {}",
                        login.email,
                        login.role.as_str(),
                        login.tenant_id.as_deref().unwrap_or("-"),
                        if login.totp_secret.is_some() {
                            "on"
                        } else {
                            "off"
                        },
                        login.display_name
                    );
                }
            }
            LoginCommand::Rm { email } => {
                let Some(login) = store.login(&email).await? else {
                    bail!("no login {email}");
                };
                store.remove_login(&login.id).await?;
                store
                    .audit(
                        login.tenant_id.as_deref(),
                        "cli",
                        "login.remove",
                        &login.email,
                        "local",
                    )
                    .await?;
                println!("login {} removed", login.email);
            }
            LoginCommand::Passwd { email } => {
                let Some(login) = store.login(&email).await? else {
                    bail!("no login {email}");
                };
                let password_hash = hash(&read_password()?)?;
                store.set_password(&login.id, &password_hash, None).await?;
                store
                    .audit(
                        login.tenant_id.as_deref(),
                        "cli",
                        "login.password",
                        &login.email,
                        "local",
                    )
                    .await?;
                println!("password of {} changed; its sessions ended", login.email);
            }
        }
        Ok(())
    })
}
