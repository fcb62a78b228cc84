//! `steward`: the command line. Wiring only: every behaviour lives in the library crates.

mod cli;
mod cmd_approvals;
mod cmd_audit;
mod cmd_hook;
mod cmd_init;
mod cmd_keys;
mod cmd_pins;
mod cmd_policy;
mod cmd_proxy;
mod cmd_registry;
mod cmd_report;
mod cmd_scan;
mod cmd_serve;
mod logging;
mod paths;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format, cli.command.default_log_level());
    let result = match cli.command {
        cli::Command::Serve(args) => cmd_serve::run(args),
        cli::Command::Keys(cmd) => cmd_keys::run(cmd),
        cli::Command::Proxy(args) => cmd_proxy::run(args),
        cli::Command::Policy(cmd) => cmd_policy::run(cmd),
        cli::Command::Approvals(cmd) => cmd_approvals::run(cmd),
        cli::Command::Audit(cmd) => cmd_audit::run(cmd),
        cli::Command::Registry(cmd) => cmd_registry::run(cmd),
        cli::Command::Report(args) => cmd_report::run(args),
        cli::Command::Pins(cmd) => cmd_pins::run(cmd),
        cli::Command::Scan(args) => cmd_scan::run(args),
        cli::Command::Hook(args) => cmd_hook::run(args),
        cli::Command::Init(args) => cmd_init::init(args),
        cli::Command::Doctor(args) => cmd_init::doctor(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("steward: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
