//! `steward registry check|lint|export`: the approved-server registry and client-config checks.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use steward_policy::Severity;
use steward_registry::export::{ExportOptions, claude_managed};
use steward_registry::{CheckOptions, Locations, Registry, check, discover, lint, report, today};

#[derive(Subcommand)]
pub enum RegistryCommand {
    /// Validate a registry file: schema errors with file:line:col, unpinned or `latest` versions,
    /// expired or soon-expiring approvals, missing rationale, a name both approved and denied.
    /// Exit 0 when there are no errors, 1 otherwise.
    Lint {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Find every MCP server in every known client config and classify it against the registry
    /// (APPROVED, UNAPPROVED, DENIED, EXPIRED, PENDING, DRIFT). Exit 1 on any violation.
    Check(CheckArgs),
    /// Export the registry for a client.
    #[command(subcommand)]
    Export(ExportCommand),
}

#[derive(Args)]
pub struct CheckArgs {
    /// The registry (default: $STEWARD_REGISTRY, else PROJECT/.claude/steward/registry.yaml,
    /// else PROJECT/mcp-registry.yaml).
    #[arg(long, value_name = "FILE", env = "STEWARD_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Home directory whose user-level client configs are read (default: $HOME).
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Project directory whose project-level client configs are read (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Prefix for system-wide configs such as /etc/claude-code/managed-mcp.json (default: /).
    #[arg(long, value_name = "DIR")]
    pub system_root: Option<PathBuf>,
    /// The Steward gateway's base URL: servers at URL/mcp/NAME are registry server NAME
    /// (default: the registry's metadata.gateway).
    #[arg(long, value_name = "URL")]
    pub gateway: Option<String>,
    /// Only the current project's entries of ~/.claude.json, not every project's.
    #[arg(long)]
    pub this_project_only: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Sarif,
}

#[derive(Subcommand)]
pub enum ExportCommand {
    /// Claude Code managed settings: a managed-settings.json fragment (allowedMcpServers by exact
    /// serverCommand or serverUrl, deniedMcpServers) and a managed-mcp.json that routes every
    /// approved server through `steward proxy` (or the gateway with --gateway).
    ClaudeManaged(ExportArgs),
}

#[derive(Args)]
pub struct ExportArgs {
    /// The registry (default: as for `registry check`).
    #[arg(long, value_name = "FILE", env = "STEWARD_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Route approved servers through the gateway at this base URL (URL/mcp/NAME).
    #[arg(long, value_name = "URL")]
    pub gateway: Option<String>,
    /// Write managed-settings.json and managed-mcp.json into DIR (default: print both as one
    /// JSON object on stdout).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The steward program in the generated commands.
    #[arg(long, value_name = "PATH", default_value = "steward")]
    pub steward: String,
    /// Policy file the generated `steward proxy` commands use (--policy).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<String>,
}

pub fn run(cmd: RegistryCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RegistryCommand::Lint { files } => lint_files(&files),
        RegistryCommand::Check(args) => check_cmd(args),
        RegistryCommand::Export(ExportCommand::ClaudeManaged(args)) => export(args),
    }
}

fn lint_files(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let today = today();
    for path in files {
        let name = path.display().to_string();
        let text = match steward_registry::read_registry_text(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{name}: error: {e}");
                failed = true;
                continue;
            }
        };
        let diagnostics = lint(&text, &name, today);
        for d in &diagnostics {
            eprintln!("{}", d.render(&name));
        }
        let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
        let warnings = diagnostics.len() - errors;
        if errors > 0 {
            eprintln!("{name}: invalid ({errors} error(s), {warnings} warning(s))");
            failed = true;
        } else {
            let r = Registry::from_yaml(&text, &name)?;
            println!(
                "{name}: ok ({} approved, {} pending review, {} denied{})",
                r.approved.len(),
                r.pending_review.len(),
                r.denied.len(),
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

/// The registry to use: the flag, else the project's, else a clear error.
pub fn resolve_registry(flag: Option<&Path>, project: &Path) -> anyhow::Result<PathBuf> {
    if let Some(p) = flag {
        if !p.exists() {
            bail!("registry file {} does not exist", p.display());
        }
        return Ok(p.to_path_buf());
    }
    let candidates = [
        project.join(steward_registry::tier::REGISTRY_PATH),
        project.join("mcp-registry.yaml"),
    ];
    candidates.iter().find(|p| p.is_file()).cloned().with_context(|| {
        format!(
            "no registry file: give --registry FILE (or set STEWARD_REGISTRY); looked for {}",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        )
    })
}

fn home_dir() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .context("$HOME is not set; give --home DIR")
}

fn check_cmd(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let project = match args.project {
        Some(p) => p,
        None => std::env::current_dir().context("cannot determine the current directory; give --project DIR")?,
    };
    let home = match args.home {
        Some(h) => h,
        None => home_dir()?,
    };
    let registry_path = resolve_registry(args.registry.as_deref(), &project)?;
    let registry = Registry::from_file(&registry_path)
        .with_context(|| format!("cannot load registry {}", registry_path.display()))?;
    let mut loc = Locations::new(&home, &project);
    if let Some(root) = args.system_root {
        loc.system_root = root;
    }
    loc.all_projects = !args.this_project_only;
    let discovery = discover(&loc);
    let result = check(&registry, &discovery, today(), &CheckOptions { gateway: args.gateway });
    match args.format {
        Format::Table => {
            let rows = report::table_rows(&result, Some(&home));
            if rows.is_empty() {
                println!("no MCP servers found in any known client config");
            } else {
                let mut t = crate::output::table(report::TABLE_HEADERS);
                for r in rows {
                    t.add_row(r);
                }
                crate::output::print_table(&t);
            }
            println!("\n{}", report::summary_line(&result));
            for s in &result.skipped {
                eprintln!("steward: not checked: {s}");
            }
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&report::json(&result))?),
        Format::Sarif => println!("{}", serde_json::to_string_pretty(&report::sarif(&result, &project))?),
    }
    Ok(if result.violations() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let project = std::env::current_dir().context("cannot determine the current directory")?;
    let registry_path = resolve_registry(args.registry.as_deref(), &project)?;
    let registry = Registry::from_file(&registry_path)
        .with_context(|| format!("cannot load registry {}", registry_path.display()))?;
    let opts = ExportOptions {
        gateway: args.gateway,
        steward: args.steward,
        policy: args.policy,
    };
    let managed = claude_managed(&registry, today(), &opts);
    for s in &managed.skipped {
        eprintln!("steward: left out: {s}");
    }
    match args.out {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            for (file, value) in [
                ("managed-settings.json", &managed.managed_settings),
                ("managed-mcp.json", &managed.managed_mcp),
            ] {
                let path = dir.join(file);
                std::fs::write(&path, serde_json::to_string_pretty(value)? + "\n")
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("wrote {}", path.display());
            }
        }
        None => {
            let both = serde_json::json!({
                "managed-settings.json": managed.managed_settings,
                "managed-mcp.json": managed.managed_mcp,
            });
            println!("{}", serde_json::to_string_pretty(&both)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
