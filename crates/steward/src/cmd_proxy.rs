use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use steward_gateway::identity::{os_user, server_name_from_command};
use steward_gateway::sandbox::{NetRule, Network, Profile, SandboxSpec};
use steward_gateway::{ProxyExit, ProxyOptions, run_proxy};
use steward_policy::{Policy, Principal};

use std::path::PathBuf;

use crate::paths::default_audit_db;
use clap::Args;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  steward proxy --policy policy.yaml -- npx -y @modelcontextprotocol/server-everything\n  steward proxy --sandbox npx --allow-read ./docs -- npx -y @modelcontextprotocol/server-filesystem ./docs"
)]
pub struct ProxyArgs {
    /// Policy file (YAML). Without it the built-in baseline policy applies.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Name of the server in policy and audit (default: derived from the command).
    #[arg(long, value_name = "NAME")]
    pub server: Option<String>,
    /// Who is calling (default: the OS user).
    #[arg(long, value_name = "NAME")]
    pub principal: Option<String>,
    /// SQLite audit database (default: $XDG_DATA_HOME/steward/audit.db).
    #[arg(long, value_name = "PATH")]
    pub audit_db: Option<PathBuf>,
    /// Read the `audit:` block (sinks, checkpoints, signing key, retention) from this YAML file,
    /// e.g. the gateway's steward.yaml; see docs/sinks.md.
    #[arg(long, value_name = "FILE")]
    pub audit_config: Option<PathBuf>,
    /// Largest message accepted from the client, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = steward_gateway::ProxyOptions::DEFAULT_MAX_CLIENT_MESSAGE)]
    pub max_message_bytes: usize,
    /// POST new pending approvals to this URL (repeatable); see docs/approvals.md.
    #[arg(long = "webhook", value_name = "URL")]
    pub webhooks: Vec<String>,
    /// Payload of --webhook: json (generic) or slack (Slack incoming webhook).
    #[arg(long, value_name = "FORMAT", default_value = "json")]
    pub webhook_format: String,
    /// Start the server in a sandbox with this profile: node, npx, python, uvx or minimal
    /// (no network, no home directory; see docs/sandbox.md).
    #[arg(long, value_name = "PROFILE")]
    pub sandbox: Option<String>,
    /// With --sandbox: a path the server may read (repeatable).
    #[arg(long = "allow-read", value_name = "PATH", requires = "sandbox")]
    pub allow_read: Vec<String>,
    /// With --sandbox: a path the server may read and write (repeatable).
    #[arg(long = "allow-write", value_name = "PATH", requires = "sandbox")]
    pub allow_write: Vec<String>,
    /// With --sandbox: a TCP HOST:PORT the server may connect to (repeatable; the kernel
    /// enforces the port).
    #[arg(long = "allow-net", value_name = "HOST:PORT", requires = "sandbox")]
    pub allow_net: Vec<String>,
    /// With --sandbox: start even when the kernel lacks a facility, skipping it (logged and audited).
    #[arg(long = "sandbox-best-effort", requires = "sandbox")]
    pub sandbox_best_effort: bool,
    /// Serve the approver tools (list_pending_approvals, show_approval, approve, deny) over
    /// stdio against the audit database's approvals, as --principal, with no upstream command;
    /// see docs/approvals.md.
    #[arg(long, conflicts_with_all = ["server", "webhooks", "sandbox", "audit_config"])]
    pub approvals: bool,
    /// The upstream server command and its arguments, after `--`.
    #[arg(last = true, required_unless_present = "approvals", value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let policy = match &args.policy {
        Some(path) => Policy::from_file(path).with_context(|| format!("cannot load policy {}", path.display()))?,
        None => {
            eprintln!(
                "steward: no --policy given; using the built-in baseline policy (default allow, detectors on, \
                 dangerous HIGH-risk and all CRITICAL calls need approval)"
            );
            Policy::baseline()
        }
    };
    if args.approvals {
        return run_approvals(args, policy);
    }
    let server = args
        .server
        .clone()
        .unwrap_or_else(|| server_name_from_command(&args.command));
    let principal = match &args.principal {
        Some(p) => Principal::new(p.clone(), "asserted"),
        None => Principal::new(os_user(), "os-user"),
    };
    let audit_db = args.audit_db.clone().unwrap_or_else(default_audit_db);
    tracing::info!(server = %server, principal = %principal.id, policy = %policy.source_name(), policy_version = %policy.version(), audit_db = %audit_db.display(), "steward proxy starting");

    let format: steward_gateway::notify::WebhookFormat = args.webhook_format.parse().map_err(anyhow::Error::msg)?;
    let webhooks: Vec<steward_gateway::notify::Webhook> = args
        .webhooks
        .iter()
        .map(|url| steward_gateway::notify::Webhook {
            url: url.clone(),
            format,
        })
        .collect();
    for w in &webhooks {
        w.validate().map_err(anyhow::Error::msg).context("--webhook")?;
    }
    let sandbox = sandbox_spec(&args)?;
    let audit = match &args.audit_config {
        Some(path) => {
            steward_gateway::evidence::EvidenceFile::load(path)
                .map_err(anyhow::Error::msg)
                .context("--audit-config")?
                .audit
        }
        None => Default::default(),
    };
    let opts = ProxyOptions {
        policy: Arc::new(policy),
        server: server.clone(),
        principal,
        audit_db,
        command: args.command,
        max_client_message: args.max_message_bytes,
        max_upstream_message: ProxyOptions::DEFAULT_MAX_UPSTREAM_MESSAGE,
        shutdown_grace: Duration::from_secs(2),
        webhooks,
        policy_path: args.policy.clone(),
        sandbox,
        audit,
    };
    // One thread: the proxy relays one client's messages; handing them between worker threads
    // only adds wake-ups (the audit writer has a thread of its own).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let exit = runtime.block_on(run_proxy(opts));
    // The stdin reader may still sit in a blocking read on a thread of its own: do not wait for it.
    runtime.shutdown_background();
    match exit? {
        ProxyExit::Clean => Ok(ExitCode::SUCCESS),
        ProxyExit::UpstreamDied { status } => {
            eprintln!(
                "steward: upstream server '{server}' exited unexpectedly ({status}); requests in flight were answered with errors"
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// `steward proxy --approvals`: the approver's MCP server over stdio.
fn run_approvals(args: ProxyArgs, policy: Policy) -> anyhow::Result<ExitCode> {
    if !args.command.is_empty() {
        anyhow::bail!("--approvals runs no upstream: remove the command after --");
    }
    let principal = match &args.principal {
        Some(p) => Principal::new(p.clone(), "asserted"),
        None => Principal::new(os_user(), "os-user"),
    };
    let audit_db = args.audit_db.clone().unwrap_or_else(default_audit_db);
    tracing::info!(principal = %principal.id, audit_db = %audit_db.display(), "steward approver (stdio) starting");
    let opts = steward_gateway::approver::stdio::StdioOptions {
        policy: Arc::new(policy),
        policy_path: args.policy.clone(),
        principal,
        audit_db,
        max_message: args.max_message_bytes,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let done = runtime.block_on(steward_gateway::approver::stdio::run(opts));
    runtime.shutdown_background();
    done?;
    Ok(ExitCode::SUCCESS)
}

/// `--sandbox PROFILE --allow-read/--allow-write/--allow-net ...` as a sandbox spec.
fn sandbox_spec(args: &ProxyArgs) -> anyhow::Result<Option<SandboxSpec>> {
    let Some(profile) = &args.sandbox else {
        return Ok(None);
    };
    let profile: Profile = profile.parse().map_err(anyhow::Error::msg).context("--sandbox")?;
    let rules = args
        .allow_net
        .iter()
        .map(|r| r.parse::<NetRule>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)
        .context("--allow-net")?;
    Ok(Some(SandboxSpec {
        profile: Some(profile),
        read: args.allow_read.clone(),
        write: args.allow_write.clone(),
        network: if rules.is_empty() {
            Network::None
        } else {
            Network::Allow(rules)
        },
        best_effort: args.sandbox_best_effort,
        ..SandboxSpec::default()
    }))
}
