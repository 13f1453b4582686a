//! `tsubame ops`: the operations tools on the command line.

use std::path::PathBuf;

use anyhow::Context;

use crate::config::{self, Overrides};

#[derive(clap::Subcommand, Debug)]
pub enum OpsCommand {
    /// Write the config's [[slo]] objectives as Prometheus recording and alerting rules
    /// (tsubame-slo-rules.yml) and Sloth SLO specs (tsubame-slo-sloth.yml).
    ExportRules {
        /// TOML configuration file holding the [[slo]] tables.
        #[arg(long)]
        config: PathBuf,
        /// Directory to write the files in.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// The service name in the Sloth specs.
        #[arg(long, default_value = "tsubame")]
        service: String,
    },
}

pub fn run(command: OpsCommand) -> anyhow::Result<()> {
    match command {
        OpsCommand::ExportRules {
            config: file,
            out,
            service,
        } => {
            let config = config::validate(config::read(&file)?, &Overrides::default())?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            for (name, text) in [
                (
                    "tsubame-slo-rules.yml",
                    ops::rules::prometheus_rules(&config.slos),
                ),
                (
                    "tsubame-slo-sloth.yml",
                    ops::rules::sloth_spec(&config.slos, &service),
                ),
            ] {
                let path = out.join(name);
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("{}", path.display());
            }
            Ok(())
        }
    }
}
