//! `steward init --tier` and `steward doctor`: project set-up and repository audit.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use steward_registry::doctor::{DoctorOptions, Level, doctor as run_doctor, failed};
use steward_registry::tier::{Action, InitOptions, Tier, init as run_init};
use steward_registry::today;

#[derive(Clone, Copy, ValueEnum)]
pub enum TierArg {
    Starter,
    Standard,
    Strict,
    Regulated,
}

impl From<TierArg> for Tier {
    fn from(t: TierArg) -> Tier {
        match t {
            TierArg::Starter => Tier::Starter,
            TierArg::Standard => Tier::Standard,
            TierArg::Strict => Tier::Strict,
            TierArg::Regulated => Tier::Regulated,
        }
    }
}

#[derive(Args)]
#[command(
    after_help = "Writes .claude/settings.json (deny rules, hooks wired to `steward hook`), a CLAUDE.md section, \
    .claude/steward/registry.yaml and .claude/steward/policy.yaml.\nExisting settings are merged (your entries are kept); \
    an existing registry or policy is kept unless --force is given."
)]
pub struct InitArgs {
    /// The governance tier.
    #[arg(long, value_enum)]
    pub tier: TierArg,
    /// The project directory (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Overwrite an existing registry and policy (and replace a settings.json that is not valid JSON).
    #[arg(long)]
    pub force: bool,
    /// The command the hooks run.
    #[arg(long, value_name = "CMD", default_value = "steward hook")]
    pub hook_command: String,
}

#[derive(Args)]
pub struct DoctorArgs {
    /// The repository to audit (default: the current directory).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// text, json (one finding per line) or sarif (SARIF 2.1.0, for code-scanning UIs).
    #[arg(long, value_enum, default_value_t = DoctorFormat::Text)]
    pub format: DoctorFormat,
    /// The same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DoctorFormat {
    Text,
    Json,
    Sarif,
}

pub fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::current_dir().context("cannot determine the current directory; give --dir DIR")?,
    };
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let tier: Tier = args.tier.into();
    let opts = InitOptions {
        dir: dir.clone(),
        tier,
        force: args.force,
        hook_command: args.hook_command,
        today: today(),
    };
    let actions = run_init(&opts).with_context(|| format!("cannot set up {} for the {tier} tier", dir.display()))?;
    println!("steward init --tier {tier} in {}", dir.display());
    for (file, action) in &actions {
        let what = match action {
            Action::Created => "created".to_string(),
            Action::Updated(how) => format!("updated: {how}"),
            Action::Unchanged => "unchanged".to_string(),
            Action::Kept(why) => format!("kept: {why}"),
        };
        println!("  {file:<32} {what}");
    }
    println!("\nnext: commit these files, then run `steward doctor` (and `steward registry check`) in CI.");
    Ok(ExitCode::SUCCESS)
}

pub fn doctor(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::current_dir().context("cannot determine the current directory")?,
    };
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let opts = DoctorOptions {
        dir: dir.clone(),
        today: today(),
        path_env: std::env::var_os("PATH"),
    };
    let mut findings = run_doctor(&opts);
    findings.extend(sandbox_finding(&dir));
    let format = if args.json { DoctorFormat::Json } else { args.format };
    match format {
        DoctorFormat::Text => {
            println!("steward doctor {}", dir.display());
            let mut t = crate::output::table(["LEVEL", "CHECK", "FINDING"]);
            for f in &findings {
                t.add_row([f.level.to_string(), f.check.to_string(), f.message.clone()]);
            }
            crate::output::print_table(&t);
            let count = |l: Level| findings.iter().filter(|f| f.level == l).count();
            println!(
                "\n{} passed, {} warning(s), {} failed",
                count(Level::Pass),
                count(Level::Warn),
                count(Level::Fail)
            );
        }
        DoctorFormat::Json => {
            for f in &findings {
                crate::output::json_line(&crate::doctor_report::json(f))?;
            }
        }
        DoctorFormat::Sarif => crate::output::json_line(&crate::doctor_report::sarif(&findings, &dir))?,
    }
    Ok(if failed(&findings) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// When registry entries require a sandbox: whether this machine can enforce one.
fn sandbox_finding(dir: &std::path::Path) -> Option<steward_registry::doctor::Finding> {
    use steward_gateway::sandbox::{Facility, facilities};
    let registry = steward_registry::Registry::from_file(&dir.join(steward_registry::tier::REGISTRY_PATH)).ok()?;
    let required: Vec<&str> = registry
        .approved
        .iter()
        .filter(|a| a.sandbox_required)
        .map(|a| a.name.as_str())
        .collect();
    if required.is_empty() {
        return None;
    }
    let missing: Vec<String> = facilities()
        .into_iter()
        .filter(|(f, has, _)| !has && matches!(f, Facility::Landlock | Facility::Seccomp))
        .map(|(f, _, why)| format!("{f} ({why})"))
        .collect();
    Some(if missing.is_empty() {
        steward_registry::doctor::Finding {
            level: Level::Pass,
            check: "sandbox",
            message: format!(
                "this machine enforces the sandbox that {} require(s) (Landlock, seccomp)",
                required.join(", ")
            ),
        }
    } else {
        steward_registry::doctor::Finding {
            level: Level::Fail,
            check: "sandbox",
            message: format!(
                "{} require(s) a sandbox, but this machine lacks {}: they will not start here (docs/sandbox.md)",
                required.join(", "),
                missing.join(", ")
            ),
        }
    })
}
