use clap::{Parser, Subcommand, ValueEnum};

use crate::{
    cmd_approvals, cmd_audit, cmd_hook, cmd_init, cmd_keys, cmd_pins, cmd_policy, cmd_proxy, cmd_registry, cmd_report,
    cmd_scan, cmd_serve,
};

/// Steward: decide, hold and audit every tool call AI agents make through MCP.
#[derive(Parser)]
#[command(name = "steward", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the central HTTP gateway (embedded defaults without --config).
    Serve(cmd_serve::ServeArgs),
    /// API keys for the HTTP gateway: create (printed once), list, revoke.
    #[command(subcommand)]
    Keys(cmd_keys::KeysCommand),
    /// Wrap a stdio MCP server: every tool call is decided by policy and audited.
    Proxy(cmd_proxy::ProxyArgs),
    /// Check, explain and test policies.
    #[command(subcommand)]
    Policy(cmd_policy::PolicyCommand),
    /// Calls waiting for a human: list, show, approve, deny.
    #[command(subcommand)]
    Approvals(cmd_approvals::ApprovalsCommand),
    /// Query, verify, export, checkpoint, prune and ship the audit log.
    #[command(subcommand)]
    Audit(cmd_audit::AuditCommand),
    /// Compliance evidence for a period (SOC 2, ISO 27001) as HTML or JSON.
    Report(cmd_report::ReportArgs),
    /// The approved-server registry: lint it, check client configs against it, export it.
    #[command(subcommand)]
    Registry(cmd_registry::RegistryCommand),
    /// Review and accept changed tools (tool pins against rug pulls).
    #[command(subcommand)]
    Pins(cmd_pins::PinsCommand),
    /// Start or connect to every MCP server in the client configs and report poisoned
    /// descriptions, shadowing, drift since the previous scan and unreachable servers.
    /// Exit 1 on any HIGH finding.
    Scan(cmd_scan::ScanArgs),
    /// Claude Code hook: reads the hook event on stdin, answers with the hook decision.
    Hook(cmd_hook::HookArgs),
    /// Set up a project for a governance tier (Claude Code settings, policy, registry).
    Init(cmd_init::InitArgs),
    /// Audit a repository's MCP and Claude Code governance set-up.
    Doctor(cmd_init::DoctorArgs),
    /// Print a shell completion script: `steward completions bash > /etc/bash_completion.d/steward`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `steward man | man -l -`.
    Man,
}

impl Command {
    /// Whether the command only prints and exits: a closed stdout may end it at once. The
    /// proxy and the hook speak on stdout and the gateway runs on; they handle it themselves.
    pub fn prints_and_exits(&self) -> bool {
        !matches!(self, Command::Proxy(_) | Command::Serve(_) | Command::Hook(_))
    }

    pub fn default_log_level(&self) -> &'static str {
        match self {
            Command::Proxy(_) | Command::Serve(_) => "info",
            _ => "warn",
        }
    }
}
