//! `steward init --tier` and `steward doctor`: project set-up and repository audit.

use std::process::ExitCode;

use clap::Args;

#[derive(Args)]
pub struct InitArgs {}

#[derive(Args)]
pub struct DoctorArgs {}

pub fn init(_args: InitArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`steward init` is not implemented yet")
}

pub fn doctor(_args: DoctorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`steward doctor` is not implemented yet")
}
