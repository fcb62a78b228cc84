use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, bail};
use serde_json::json;
use steward_gateway::identity::os_user;
use steward_policy::{Call, Policy, Principal, Severity, ToolAnnotations};

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Validate policy files: exit 0 when valid, 1 with `file:line:col` findings otherwise.
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Decide one call and show each step that led to the decision.
    Explain(ExplainArgs),
}

#[derive(Args)]
pub struct ExplainArgs {
    /// Policy file (default: the built-in baseline policy).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The calling principal (default: the OS user).
    #[arg(long, value_name = "NAME")]
    pub principal: Option<String>,
    /// Extra roles the principal holds (as a gateway's authentication would give).
    #[arg(long, value_name = "ROLES", value_delimiter = ',')]
    pub roles: Vec<String>,
    /// The tool, as SERVER/TOOL.
    #[arg(long, value_name = "SERVER/TOOL")]
    pub tool: String,
    /// The call's arguments as a JSON object.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub args: String,
    /// The tool's MCP annotations as JSON, e.g. '{"readOnlyHint":true}'.
    #[arg(long, value_name = "JSON")]
    pub annotations: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Check { files } => check(&files),
        PolicyCommand::Explain(args) => explain(args),
    }
}

fn check(files: &[std::path::PathBuf]) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for path in files {
        let name = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{name}: error: cannot read: {e}");
                failed = true;
                continue;
            }
        };
        let diagnostics = Policy::check_yaml(&text, &name);
        for d in &diagnostics {
            eprintln!("{}", d.render(&name));
        }
        let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
        if errors > 0 {
            eprintln!("{name}: invalid ({errors} error(s))");
            failed = true;
        } else {
            let policy = Policy::from_yaml(&text, &name)?;
            let warnings = diagnostics.len();
            println!("{name}: ok ({} rule(s), version {}{})", policy.rule_count(), policy.version(),
                if warnings > 0 { format!(", {warnings} warning(s)") } else { String::new() });
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn explain(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let policy = match &args.policy {
        Some(p) => Policy::from_file(p)?,
        None => Policy::baseline(),
    };
    let Some((server, tool)) = args.tool.split_once('/') else {
        bail!("--tool must be SERVER/TOOL, e.g. --tool it-ops/ssh-exec (got '{}')", args.tool);
    };
    let call_args: serde_json::Value = serde_json::from_str(&args.args).context("--args is not valid JSON")?;
    if !call_args.is_object() {
        bail!("--args must be a JSON object, e.g. --args '{{\"command\":\"ls\"}}'");
    }
    let annotations: Option<ToolAnnotations> = match &args.annotations {
        Some(a) => Some(serde_json::from_str(a).context("--annotations is not a valid annotations object")?),
        None => None,
    };
    let mut principal = Principal::new(args.principal.clone().unwrap_or_else(os_user), "cli");
    principal.roles = args.roles.clone();
    let call = Call {
        annotations: annotations.as_ref(),
        door: "cli",
        now: SystemTime::now(),
        ..Call::tool_call(&principal, server, tool, &call_args)
    };
    let d = policy.explain(&call);
    if args.json {
        let out = json!({
            "effect": d.effect.as_str(),
            "risk": d.risk.as_str(),
            "flags": d.flags,
            "rules": d.rule_ids,
            "reasons": d.reasons,
            "policy": policy.source_name(),
            "policy_version": d.policy_version,
            "findings": d.findings.iter().map(|f| json!({"flag": f.flag, "risk": f.risk.as_str(), "detail": f.detail})).collect::<Vec<_>>(),
            "steps": d.steps,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("call:      {}/{} by {} with {}", server, tool, principal.id, call_args);
        println!("policy:    {} (version {})", policy.source_name(), d.policy_version);
        println!();
        for (i, s) in d.steps.iter().enumerate() {
            println!("  {}. {:<13} {}", i + 1, s.stage, s.detail);
        }
        println!();
        println!("decision:  {}", d.effect.as_str().to_uppercase());
        println!("risk:      {}", d.risk);
        println!("flags:     {}", if d.flags.is_empty() { "none".into() } else { d.flags.join(", ") });
        println!("rules:     {}", if d.rule_ids.is_empty() { "none".into() } else { d.rule_ids.join(", ") });
        println!("reason:    {}", d.reason());
    }
    Ok(ExitCode::SUCCESS)
}
