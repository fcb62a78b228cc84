//! `steward scan`: start or connect to every MCP server in the client configs, list what it
//! offers, and report poisoned descriptions, shadowing, drift since the previous scan and
//! unreachable servers. Wiring only: the work is `steward_gateway::survey`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use steward_gateway::survey::{self, SurveyOptions, SurveyReport, pins};
use steward_registry::{CheckOptions, Locations, Registry, check, discover, today};
use steward_scan::Severity;

#[derive(Args)]
pub struct ScanArgs {
    /// Home directory whose user-level client configs are read (default: $HOME); stdio servers
    /// are started with HOME set to it.
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Project directory whose project-level client configs are read (default: the current
    /// directory); stdio servers start there unless their config names a `cwd`.
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// A registry: each server's registry status is added to the report (default: as for
    /// `registry check`, when one is found).
    #[arg(long, value_name = "FILE", env = "STEWARD_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Time allowed for each server (start, initialize, every list), e.g. `15s`, `500ms`.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Sarif,
}

fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    let d = steward_gateway::config::parse_duration(s)?;
    if d.is_zero() {
        return Err("the timeout must be more than zero".into());
    }
    Ok(d)
}

/// Where the fingerprints of each (home, project) pair are kept:
/// `$XDG_DATA_HOME/steward/`, else `~/.local/share/steward/`, else `./steward-data/`.
fn pins_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        });
    match base {
        Some(b) => b.join("steward"),
        None => PathBuf::from("steward-data"),
    }
}

pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let project = match args.project {
        Some(p) => p,
        None => std::env::current_dir().context("cannot determine the current directory; give --project DIR")?,
    };
    let home = match args.home {
        Some(h) => h,
        None => match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(h) => PathBuf::from(h),
            None => {
                eprintln!("steward: error: $HOME is not set; give --home DIR");
                return Ok(ExitCode::from(2));
            }
        },
    };
    for (flag, dir) in [("--home", &home), ("--project", &project)] {
        if !dir.is_dir() {
            eprintln!("steward: error: {flag} {} is not a directory", dir.display());
            return Ok(ExitCode::from(2));
        }
    }
    let registry = match &args.registry {
        Some(path) => {
            let r = Registry::from_file(path);
            match r {
                Ok(r) => Some(r),
                Err(e) => {
                    eprintln!("steward: error: cannot load registry {}: {e}", path.display());
                    return Ok(ExitCode::from(2));
                }
            }
        }
        None => crate::cmd_registry::resolve_registry(None, &project)
            .ok()
            .and_then(|p| Registry::from_file(&p).ok()),
    };

    let discovery = discover(&Locations::new(&home, &project));
    let statuses = registry
        .as_ref()
        .map(|r| check(r, &discovery, today(), &CheckOptions { gateway: None }).results)
        .unwrap_or_default();
    let status_of = |f: &steward_registry::FoundServer| {
        statuses
            .iter()
            .find(|r| {
                r.kind == "server"
                    && r.client == f.client
                    && r.scope == f.scope
                    && r.server == f.name
                    && r.line == f.line
            })
            .map(|r| r.status.to_string())
    };
    let targets = survey::targets(&discovery.servers, &home, &project, &status_of);

    let pins_path = pins_dir().join(pins::file_name(&home, &project));
    let mut notes: Vec<String> = discovery
        .problems
        .iter()
        .map(|p| format!("{} config {}: {}", p.client, p.config_path.display(), p.message))
        .chain(discovery.skipped.iter().cloned())
        .collect();
    let before = match pins::load(&pins_path) {
        Ok(b) => b,
        Err(e) => {
            notes.push(format!("previous scan not used: {e}"));
            None
        }
    };
    let opts = SurveyOptions {
        timeout: args.timeout,
        ..SurveyOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let listings = runtime.block_on(survey::survey(&targets, &opts));
    let findings = survey::assess(&targets, &listings, before.as_ref());
    let next = survey::next_pins(&targets, &listings, before.as_ref(), &home, &project);
    let stored = match pins::save(&pins_path, &next) {
        Ok(()) => Some(pins_path.clone()),
        Err(e) => {
            notes.push(format!("fingerprints not stored in {}: {e}", pins_path.display()));
            None
        }
    };
    let report = SurveyReport {
        servers: survey::summaries(&targets, &listings),
        findings,
        notes,
        pins_file: stored,
    };
    match args.format {
        Format::Table => {
            print!("{}", survey::render::table(&report));
            for n in &report.notes {
                eprintln!("steward: note: {n}");
            }
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&survey::render::json(&report))?),
        Format::Sarif => println!(
            "{}",
            serde_json::to_string_pretty(&survey::render::sarif(&report, &project))?
        ),
    }
    Ok(if report.max_severity() == Some(Severity::High) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
