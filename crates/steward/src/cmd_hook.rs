//! `steward hook`: the Claude Code hook door (PreToolUse, PostToolUse, SessionStart, ConfigChange).

use std::process::ExitCode;

use clap::Args;

#[derive(Args)]
pub struct HookArgs {}

pub fn run(_args: HookArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`steward hook` is not implemented yet")
}
