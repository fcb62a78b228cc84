use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use steward_gateway::config::{GatewayConfig, Transport};
use steward_gateway::serve;
use steward_policy::Policy;

#[derive(Args)]
#[command(
    after_help = "Without --config Steward runs on embedded defaults: 127.0.0.1:8787, SQLite under ./steward-data,\nthe built-in baseline policy and a built-in demo server at /mcp/demo."
)]
pub struct ServeArgs {
    /// Gateway configuration (steward.yaml); see docs/gateway.md.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen address, overriding the config (e.g. 127.0.0.1:9000).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Under `auth: none`, who the console at /ui opens as (default: the OS user). Never the
    /// `anonymous` caller, so the operator can approve what local clients asked for.
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = match &args.config {
        Some(path) => GatewayConfig::from_file(path)?,
        None => GatewayConfig::embedded(),
    };
    if let Some(listen) = &args.listen {
        cfg.listen = listen
            .parse()
            .with_context(|| format!("--listen '{listen}' is not HOST:PORT"))?;
    }
    if let Some(name) = &args.operator {
        let name = name.trim();
        if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
            anyhow::bail!("--operator must be a name of 1 to 256 printable characters");
        }
        if name.eq_ignore_ascii_case(steward_gateway::auth::ANONYMOUS) {
            anyhow::bail!(
                "--operator cannot be '{}': that is who unauthenticated callers are, and nobody approves their own call",
                steward_gateway::auth::ANONYMOUS
            );
        }
        cfg.console.operator = Some(name.to_string());
    }
    let (policy, policy_name) = match &cfg.policy {
        Some(p) => (
            Policy::from_file(p).with_context(|| format!("cannot load policy {}", p.display()))?,
            p.display().to_string(),
        ),
        None => (Policy::baseline(), "built-in baseline".to_string()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let version = policy.version().to_string();
        // From here on SIGTERM/SIGINT shut down cleanly, even while the gateway is starting.
        let shutdown = shutdown_signal();
        // Bound before anything says the gateway listens: a busy port fails here, silently.
        let listener = serve::bind(cfg.listen).await?;
        let st = serve::build_state(cfg.clone(), Arc::new(policy)).await?;
        // Edits to the policy file (or SIGHUP) reload it; a broken file keeps the old policy.
        let _watch = cfg.policy.clone().map(|path| {
            let target = st.clone();
            steward_gateway::reload::spawn(steward_gateway::reload::Reloader::new(
                path,
                version.clone(),
                move |p| target.relay.replace_policy(p),
            ))
        });
        announce(&cfg, &policy_name, &version);
        serve::run(st, listener, shutdown).await?;
        eprintln!("steward: stopped; audit log flushed");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn announce(cfg: &GatewayConfig, policy: &str, version: &str) {
    let base = format!("http://{}", cfg.listen);
    eprintln!("steward: gateway listening on {base}");
    eprintln!(
        "  config:  {}",
        cfg.source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "none (embedded defaults)".into())
    );
    eprintln!("  policy:  {policy} (version {version})");
    eprintln!("  audit:   {} (SQLite)", cfg.sqlite.display());
    let mut auth = Vec::new();
    if cfg.auth.api_keys {
        auth.push("API keys".to_string());
    }
    for o in &cfg.auth.oidc {
        auth.push(format!("OIDC {}", o.issuer));
    }
    if cfg.auth.none {
        auth.push("NONE: anyone who can reach this loopback address can call tools as 'anonymous'".to_string());
    }
    eprintln!("  auth:    {}", auth.join(", "));
    if cfg.console.enabled {
        let who = if cfg.auth.none {
            format!(
                " (opens as the local operator '{}')",
                cfg.console
                    .operator
                    .clone()
                    .unwrap_or_else(steward_gateway::identity::os_user)
            )
        } else {
            String::new()
        };
        eprintln!("  console: {base}/ui{who}");
    }
    eprintln!("  servers:");
    for (name, s) in &cfg.servers {
        let what = match &s.transport {
            Transport::Stdio { command, .. } => format!("stdio `{command}`"),
            Transport::Http { url, .. } => format!("HTTP {url}"),
            Transport::Demo => "built-in demo (lookup_order, run_command, approve_expense)".to_string(),
        };
        eprintln!("    {base}/mcp/{name}  ← {what}");
    }
    if cfg.servers.contains_key(steward_gateway::config::DEMO_SERVER) {
        eprintln!("\nTry it with Claude Code:\n  claude mcp add --transport http steward-demo {base}/mcp/demo");
        eprintln!(
            "Then ask for `ls` (allowed), `rm -rf /` (needs approval) and `cat ~/.ssh/id_rsa` (denied) with run_command."
        );
    }
}

fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    let signal = steward_gateway::shutdown_signal();
    async move {
        signal.await;
        eprintln!("steward: shutting down: finishing in-flight calls");
    }
}
