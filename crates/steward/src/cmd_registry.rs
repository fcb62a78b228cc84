//! `steward registry check|lint|export`: the approved-server registry and client-config checks.

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum RegistryCommand {
    /// Not yet implemented.
    Lint,
}

pub fn run(_cmd: RegistryCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`steward registry` is not implemented yet")
}
