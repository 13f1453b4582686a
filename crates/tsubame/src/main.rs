//! The `tsubame` binary: command line and wiring only. Each subcommand lives in its own
//! module; the libraries under `crates/` hold the behaviour.

mod admin_client;
mod bench;
mod bench_events;
mod bench_flood;
mod bench_http;
mod bench_idle;
mod bench_mix;
mod bench_queue;
mod bench_relay;
mod bench_smtp;
mod bench_spool;
mod cluster_mode;
mod config;
mod contacts_cmd;
mod datadir;
mod domain_cmd;
mod fdlimit;
mod login_cmd;
mod node_cmd;
mod ops_cmd;
mod queue_cmd;
mod serve;
mod sink_cmd;
mod suppression_cmd;
mod tenant_cmd;

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{LogFormat, Overrides};
use crate::datadir::DataDir;

// Why not the system allocator: every message allocates and frees buffers of a few KB on
// one tokio worker and often frees them on another (the spool writer, a delivery
// connection). glibc's malloc handles that cross-thread, mid-size pattern with its slowest
// paths (`malloc_consolidate`, `_int_free`, arena locks): about 11 % of a relay's CPU in
// `perf`. mimalloc's per-thread free lists cut that (bench/RESULTS.md, "Where the time
// goes (relay)"), and it builds from one C file, which keeps clean builds short. It is
// built without transparent huge pages (`no_thp`): with them, pages partly used by a
// backlog's long-lived small objects count 2 MiB each, and a 1 M message backlog cost
// ~60 % more RSS (bench/RESULTS.md, "Backlog memory").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tsubame",
    version,
    about = "High-volume email delivery platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: SMTP ingress, durable spool, admin HTTP API.
    Serve {
        /// Data directory (spool, TLS certificate, users, admin token).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// SMTP listen address (repeatable; replaces smtp.listen).
        #[arg(long)]
        smtp_listen: Vec<String>,
        /// HTTP listen address for health, metrics and the admin API.
        #[arg(long)]
        http_listen: Option<String>,
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Log format: human or json.
        #[arg(long)]
        log_format: Option<String>,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage SMTP AUTH users.
    User {
        #[command(subcommand)]
        command: UserCommand,
        /// Data directory of the server.
        #[arg(long, global = true, default_value = "./tsubame-data")]
        data_dir: PathBuf,
    },
    /// Inspect the queue of a running server.
    Queue {
        #[command(subcommand)]
        command: queue_cmd::QueueCommand,
        /// Data directory of the running server (holds its admin URL and token).
        #[arg(long, global = true, default_value = "./tsubame-data")]
        data_dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Cluster mode: the nodes, and draining this one.
    Node {
        #[command(subcommand)]
        command: node_cmd::NodeCommand,
        /// Data directory of the running server (holds its admin URL and token).
        #[arg(long, global = true, default_value = "./tsubame-data")]
        data_dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Load generator for capacity tests.
    Bench(bench::BenchArgs),
    /// Operations: service level objectives and their alerting rules.
    Ops {
        #[command(subcommand)]
        command: ops_cmd::OpsCommand,
    },
    /// A receiving SMTP server that behaves like a mailbox provider (staging, load tests).
    Sink(sink_cmd::SinkArgs),
    /// Manage tenants (the platform's customers).
    Tenant {
        #[command(subcommand)]
        command: tenant_cmd::TenantCommand,
        /// Data directory (holds the control database).
        #[arg(long, global = true, default_value = "./tsubame-data")]
        data_dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Manage tenants' sending domains and their DKIM keys.
    Domain {
        #[command(subcommand)]
        command: domain_cmd::DomainCommand,
        /// Data directory (holds the control database).
        #[arg(long, global = true, default_value = "./tsubame-data")]
        data_dir: PathBuf,
    },
    /// Manage tenants' suppression lists (addresses never sent to).
    Suppression {
        #[command(subcommand)]
        command: suppression_cmd::SuppressionCommand,
        /// Data directory (holds the control database).
        #[arg(long, global = true, default_value = "./tsubame-data")]
        data_dir: PathBuf,
    },
    /// Manage tenants' contacts (import CSV files, count).
    Contacts {
        #[command(subcommand)]
        command: contacts_cmd::ContactsCommand,
        /// Data directory (holds the control database).
        #[arg(long, global = true, default_value = "./tsubame-data")]
        data_dir: PathBuf,
    },
    /// Manage web console logins (tenants' people and the platform's operators).
    Login {
        #[command(subcommand)]
        command: login_cmd::LoginCommand,
        /// Data directory (holds the control database).
        #[arg(long, global = true, default_value = "./tsubame-data")]
        data_dir: PathBuf,
    },
    /// Manage tenants' API keys.
    Key {
        #[command(subcommand)]
        command: tenant_cmd::KeyCommand,
        /// Data directory (holds the control database).
        #[arg(long, global = true, default_value = "./tsubame-data")]
        data_dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file and print the effective settings.
    Check { file: PathBuf },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add or replace a user. The password is read from stdin (first line).
    Add { name: String },
    /// List users.
    Ls,
    /// Remove a user.
    Rm { name: String },
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            data_dir,
            smtp_listen,
            http_listen,
            config,
            log_format,
        } => {
            let raw = match &config {
                Some(path) => config::read(path)?,
                None => config::RawConfig::default(),
            };
            let overrides = Overrides {
                data_dir,
                smtp_listen: (!smtp_listen.is_empty()).then_some(smtp_listen),
                http_listen,
                log_format,
            };
            let config = config::validate(raw, &overrides)?;
            init_logging(config.log_format, &config.log_level);
            serve::run(config)
        }
        Command::Config {
            command: ConfigCommand::Check { file },
        } => {
            let config = config::validate(config::read(&file)?, &Overrides::default())?;
            println!("{}: OK", file.display());
            println!("{config:#?}");
            Ok(())
        }
        Command::User { command, data_dir } => user(command, &DataDir::new(data_dir)),
        Command::Queue {
            command,
            data_dir,
            json,
        } => queue_cmd::run(command, &DataDir::new(data_dir), json),
        Command::Node {
            command,
            data_dir,
            json,
        } => node_cmd::run(command, &DataDir::new(data_dir), json),
        Command::Bench(args) => bench::run(args),
        Command::Ops { command } => ops_cmd::run(command),
        Command::Sink(args) => sink_cmd::run(args),
        Command::Tenant {
            command,
            data_dir,
            json,
        } => tenant_cmd::tenant(command, &DataDir::new(data_dir), json),
        Command::Key {
            command,
            data_dir,
            json,
        } => tenant_cmd::key(command, &DataDir::new(data_dir), json),
        Command::Login { command, data_dir } => login_cmd::run(command, &DataDir::new(data_dir)),
        Command::Domain { command, data_dir } => domain_cmd::run(command, &DataDir::new(data_dir)),
        Command::Suppression { command, data_dir } => {
            suppression_cmd::run(command, &DataDir::new(data_dir))
        }
        Command::Contacts { command, data_dir } => {
            contacts_cmd::run(command, &DataDir::new(data_dir))
        }
    }
}

fn user(command: UserCommand, data: &DataDir) -> anyhow::Result<()> {
    let path = data.users();
    match command {
        UserCommand::Add { name } => {
            std::fs::create_dir_all(&data.root)?;
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("reading password from stdin")?;
            let password = password.trim_end_matches(['\r', '\n']);
            smtp_server::users::add(&path, &name, password)?;
            println!("user {name} saved");
        }
        UserCommand::Ls => {
            for name in smtp_server::users::load(&path)?.keys() {
                println!("{name}");
            }
        }
        UserCommand::Rm { name } => {
            if !smtp_server::users::remove(&path, &name)? {
                anyhow::bail!("no user named {name}");
            }
            println!("user {name} removed");
        }
    }
    Ok(())
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TSUBAME_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
