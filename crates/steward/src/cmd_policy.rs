use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use steward_gateway::identity::os_user;
use steward_policy::testing::TestFile;
use steward_policy::{Call, Decision, Policy, PolicyError, Principal, Severity, ToolAnnotations};

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Validate policy files: exit 0 when valid, 1 with `file:line:col` findings otherwise.
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Decide one call and show each step that led to the decision.
    Explain(ExplainArgs),
    /// Run policy test files (YAML): one line per case, exit 1 on any failure.
    Test(TestArgs),
}

#[derive(Args)]
#[command(
    after_help = "Example:\n  steward policy test examples/it-ops/policy.test.yaml examples/expenses/policy.test.yaml"
)]
pub struct TestArgs {
    /// Test files: `policy: FILE` (relative to the test file) and `tests: [...]`.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Test this policy instead of the one each file names.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Print each step of every decision, not only of failed cases.
    #[arg(long, short)]
    pub verbose: bool,
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
    /// The call's arguments as a JSON object, or `@FILE` to read them from a file (arguments
    /// larger than the command line allows).
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub args: String,
    /// The tool's MCP annotations as JSON, e.g. '{"readOnlyHint":true}'.
    #[arg(long, value_name = "JSON")]
    pub annotations: Option<String>,
    /// The MCP method to decide (tools/call, resources/read, prompts/get, or a list method).
    #[arg(long, value_name = "METHOD", default_value = "tools/call")]
    pub method: String,
    /// When the call happens (RFC 3339), for time conditions (default: now).
    #[arg(long, value_name = "TIME")]
    pub time: Option<String>,
    /// The client's name, as `request.client_name` (default: none).
    #[arg(long, value_name = "NAME")]
    pub client: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Check { files } => check(&files),
        PolicyCommand::Explain(args) => explain(args),
        PolicyCommand::Test(args) => test(args),
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
            println!(
                "{name}: ok ({} rule(s), version {}{})",
                policy.rule_count(),
                policy.version(),
                if warnings > 0 {
                    format!(", {warnings} warning(s)")
                } else {
                    String::new()
                }
            );
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
        bail!(
            "--tool must be SERVER/TOOL, e.g. --tool it-ops/ssh-exec (got '{}')",
            args.tool
        );
    };
    let text = match args.args.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("--args @{path}: cannot read the file"))?,
        None => args.args.clone(),
    };
    let call_args: serde_json::Value = serde_json::from_str(&text).context("--args is not valid JSON")?;
    if !call_args.is_object() {
        bail!("--args must be a JSON object, e.g. --args '{{\"command\":\"ls\"}}'");
    }
    let annotations: Option<ToolAnnotations> = match &args.annotations {
        Some(a) => Some(serde_json::from_str(a).context("--annotations is not a valid annotations object")?),
        None => None,
    };
    let now = match &args.time {
        Some(t) => SystemTime::from(
            chrono::DateTime::parse_from_rfc3339(t)
                .with_context(|| format!("--time '{t}' is not RFC 3339, e.g. 2026-03-02T09:30:00+01:00"))?,
        ),
        None => SystemTime::now(),
    };
    if !steward_policy::GOVERNED_METHODS.contains(&args.method.as_str()) {
        bail!(
            "--method must be one of {} (got '{}')",
            steward_policy::GOVERNED_METHODS.join(", "),
            args.method
        );
    }
    let mut principal = Principal::new(args.principal.clone().unwrap_or_else(os_user), "cli");
    principal.roles = args.roles.clone();
    let call = Call {
        annotations: annotations.as_ref(),
        door: "cli",
        method: &args.method,
        client_name: args.client.as_deref(),
        now,
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
            "operation": d.operation,
            "approvers": d.approvers,
            "shadow": d.shadow,
            "findings": d.findings.iter().map(|f| json!({"flag": f.flag, "risk": f.risk.as_str(), "detail": f.detail})).collect::<Vec<_>>(),
            "steps": d.steps,
        });
        crate::output::json_line(&out)?;
    } else {
        println!("call:      {}/{} by {} with {}", server, tool, principal.id, call_args);
        println!("policy:    {} (version {})", policy.source_name(), d.policy_version);
        println!();
        print_steps(&d, "  ");
        println!();
        print_summary(&d, "");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(d: &Decision, indent: &str) {
    println!("{indent}decision:  {}", d.effect.as_str().to_uppercase());
    println!("{indent}risk:      {}", d.risk);
    println!(
        "{indent}flags:     {}",
        if d.flags.is_empty() {
            "none".into()
        } else {
            d.flags.join(", ")
        }
    );
    if let Some(op) = &d.operation {
        println!("{indent}operation: {op}");
    }
    println!(
        "{indent}rules:     {}",
        if d.rule_ids.is_empty() {
            "none".into()
        } else {
            d.rule_ids.join(", ")
        }
    );
    if let Some(a) = &d.approvers {
        let roles = if a.roles.is_empty() {
            "any role".to_string()
        } else {
            a.roles.join(" or ")
        };
        println!("{indent}approvers: {} of {roles}", a.count);
    }
    println!("{indent}reason:    {}", d.reason());
    if let Some(s) = &d.shadow {
        println!(
            "{indent}shadow:    would {} ({}){}",
            s.effect,
            s.reasons.join("; "),
            if s.rule_ids.is_empty() {
                String::new()
            } else {
                format!(" [rules {}]", s.rule_ids.join(", "))
            }
        );
    }
}

fn print_steps(d: &Decision, indent: &str) {
    for (i, s) in d.steps.iter().enumerate() {
        println!("{indent}{}. {:<13} {}", i + 1, s.stage, s.detail);
    }
}

/// Loads a policy for a test file, reporting why it cannot be loaded.
fn load_policy(path: &Path) -> Result<Policy, String> {
    Policy::from_file(path).map_err(|e| match e {
        PolicyError::Invalid { .. } => e.to_string(),
        other => other.to_string(),
    })
}

fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let (mut passed, mut failed, mut broken) = (0usize, 0usize, 0usize);
    for file in &args.files {
        let name = file.display().to_string();
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{name}: error: cannot read: {e}");
                broken += 1;
                continue;
            }
        };
        let suite = match TestFile::from_yaml(&text, &name) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                broken += 1;
                continue;
            }
        };
        let policy_path = match (&args.policy, &suite.policy) {
            (Some(p), _) => p.clone(),
            (None, Some(p)) => file.parent().unwrap_or(Path::new(".")).join(p),
            (None, None) => {
                eprintln!("{name}: error: no `policy:` in the test file and no --policy given");
                broken += 1;
                continue;
            }
        };
        let policy = match load_policy(&policy_path) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                eprintln!("{name}: cannot run: the policy {} does not load", policy_path.display());
                broken += 1;
                continue;
            }
        };
        println!(
            "{name} (policy {}, version {})",
            policy_path.display(),
            policy.version()
        );
        for case in &suite.cases {
            let result = case.run(&policy);
            if result.passed() {
                passed += 1;
                println!("  PASS  {}", case.name.value);
                if args.verbose {
                    print_steps(&result.decision, "          ");
                }
            } else {
                failed += 1;
                println!("  FAIL  {}  ({name}:{})", case.name.value, case.line());
                for f in &result.failures {
                    println!("        - {f}");
                }
                print_summary(&result.decision, "        ");
                print_steps(&result.decision, "          ");
            }
        }
    }
    let broken_note = if broken > 0 {
        format!(", {broken} file(s) could not run")
    } else {
        String::new()
    };
    println!("{passed} passed, {failed} failed{broken_note}");
    Ok(if failed > 0 || broken > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
