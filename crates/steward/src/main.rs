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
mod doctor_report;
mod logging;
mod output;
mod paths;
mod store_location;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if cli.command.prints_and_exits() {
        output::exit_quietly_on_closed_stdout();
    }
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
        cli::Command::Completions { shell } => {
            clap_complete::generate(shell, &mut cli::Cli::command(), "steward", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        cli::Command::Man => clap_mangen::Man::new(cli::Cli::command())
            .render(&mut std::io::stdout())
            .map(|()| ExitCode::SUCCESS)
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("steward: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
