//! `steward report`: compliance evidence for a period, as HTML or JSON (see
//! `steward_gateway::evidence::report`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use steward_gateway::evidence::EvidenceFile;
use steward_gateway::evidence::report::{ReportRequest, build, render_html};
use steward_store::signing::PublicKey;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  steward report --since 90d --config steward.yaml --format html --out evidence.html\n  steward report --since 2026-01-01 --db audit.db --policy policy.yaml --format json"
)]
pub struct ReportArgs {
    /// The period: events newer than this (30d, 12h, a date such as 2026-01-31, or an RFC 3339 time).
    #[arg(long, value_name = "DURATION|DATE", default_value = "90d")]
    pub since: String,
    /// The gateway's steward.yaml: its store, policy and registry.
    #[arg(long, value_name = "FILE", conflicts_with = "db")]
    pub config: Option<PathBuf>,
    /// SQLite audit database (default: ./steward-data/steward.db when it exists, else
    /// $XDG_DATA_HOME/steward/audit.db).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Policy file (default: --config's policy, else the built-in baseline).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Approved-server registry (default: --config's registry).
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,
    /// html (one self-contained file) or json (the same content).
    #[arg(long, value_name = "FORMAT", default_value = "html")]
    pub format: String,
    /// Write here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Require checkpoints and anchors signed by this Ed25519 public key (repeatable).
    #[arg(long = "public-key", value_name = "FILE")]
    pub public_keys: Vec<PathBuf>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    if !matches!(args.format.as_str(), "html" | "json") {
        bail!("--format must be html or json (got '{}')", args.format);
    }
    let file = args
        .config
        .as_deref()
        .map(EvidenceFile::load)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let req = ReportRequest {
        db: match (&args.db, &file) {
            (Some(db), _) => db.clone(),
            (None, Some(f)) => f.sqlite.clone(),
            (None, None) => {
                let found = crate::store_location::locate(None, None)?;
                found.announce();
                found.path
            }
        },
        config: args.config.clone(),
        policy: args
            .policy
            .clone()
            .or_else(|| file.as_ref().and_then(|f| f.policy.clone())),
        registry: args
            .registry
            .clone()
            .or_else(|| file.as_ref().and_then(|f| f.registry.clone())),
        since: crate::cmd_audit::parse_since(&args.since).context("--since")?,
        public_keys: args
            .public_keys
            .iter()
            .map(|p| PublicKey::from_file(p))
            .collect::<Result<_, _>>()?,
    };
    let report = build(&req)?;
    let text = match args.format.as_str() {
        "json" => serde_json::to_string_pretty(&report)? + "\n",
        _ => render_html(&report),
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "steward: wrote the {} report ({} to {}) to {}",
                args.format,
                report.period.since,
                report.period.until,
                path.display()
            );
        }
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
