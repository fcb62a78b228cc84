//! `steward pins list|diff|approve|reset`: review and accept changed tools.
//!
//! Pins live in the proxy's audit database (`--db`, default `$XDG_DATA_HOME/steward/audit.db`)
//! or in the gateway's (`--config steward.yaml`, its `store.sqlite`). Tool definitions come
//! from upstream servers and may hide text from a terminal, so everything of theirs is printed
//! with control, invisible and bidirectional characters escaped.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use steward_scan as scan;
use steward_store::{Pin, PinDiff, PinError, PinState, PinStore};

use crate::paths::default_audit_db;

#[derive(Subcommand)]
pub enum PinsCommand {
    /// Every tool pin (or one server's) and whether it has drifted.
    List {
        #[command(flatten)]
        store: PinStoreArgs,
        /// Only this server's pins.
        #[arg(long, value_name = "SERVER")]
        server: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// What changed in drifted tools: SERVER/TOOL, every drifted tool of SERVER, or all.
    Diff {
        /// SERVER/TOOL or SERVER (default: every drifted tool).
        target: Option<String>,
        #[command(flatten)]
        store: PinStoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// Accept the current version of a drifted tool as its new pin.
    Approve {
        /// SERVER/TOOL
        target: String,
        #[command(flatten)]
        store: PinStoreArgs,
        /// Who approves (default: $USER).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        /// Approve only if the current version still has this fingerprint (from `pins diff`).
        #[arg(long, value_name = "SHA256")]
        fingerprint: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Forget pins (SERVER, or SERVER/TOOL): they are pinned afresh the next time they are listed.
    Reset {
        /// SERVER or SERVER/TOOL
        target: String,
        #[command(flatten)]
        store: PinStoreArgs,
    },
}

/// Where the pins are.
#[derive(Args)]
pub struct PinStoreArgs {
    /// The proxy's SQLite audit database (default: $XDG_DATA_HOME/steward/audit.db).
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    pub db: Option<PathBuf>,
    /// The gateway's config file; pins are in its `store.sqlite`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub fn run(cmd: PinsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PinsCommand::List { store, server, json } => list(&open(&store)?, server.as_deref(), json),
        PinsCommand::Diff { target, store, json } => diff(&open(&store)?, target.as_deref(), json),
        PinsCommand::Approve {
            target,
            store,
            by,
            fingerprint,
            json,
        } => approve(&open(&store)?, &target, by, fingerprint.as_deref(), json),
        PinsCommand::Reset { target, store } => reset(&open(&store)?, &target),
    }
}

fn open(args: &PinStoreArgs) -> anyhow::Result<PinStore> {
    let path = match (&args.db, &args.config) {
        (Some(db), _) => db.clone(),
        (None, Some(config)) => {
            let cfg = steward_gateway::config::GatewayConfig::from_file(config)
                .with_context(|| format!("reading gateway config {}", config.display()))?;
            if cfg.postgres.is_some() {
                bail!(
                    "{} keeps its state in PostgreSQL; `steward pins` reads SQLite stores only",
                    config.display()
                );
            }
            cfg.sqlite
        }
        (None, None) => default_audit_db(),
    };
    // Reading must not create an empty database somewhere by mistake.
    if !path.exists() {
        bail!(
            "no database at {} (pins are recorded by `steward proxy` and `steward serve`; pass --db or --config)",
            path.display()
        );
    }
    PinStore::open_sqlite(&path).with_context(|| format!("opening {}", path.display()))
}

/// `SERVER/TOOL` → (server, Some(tool)); `SERVER` → (server, None). Tool names may contain `/`.
fn split_target(target: &str) -> anyhow::Result<(&str, Option<&str>)> {
    let (server, tool) = match target.split_once('/') {
        Some((s, t)) => (s, Some(t)),
        None => (target, None),
    };
    if server.is_empty() || tool.is_some_and(str::is_empty) {
        bail!("expected SERVER/TOOL or SERVER, got '{}'", safe(target));
    }
    Ok((server, tool))
}

fn list(store: &PinStore, server: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let pins = store.list(server)?;
    if json {
        for p in &pins {
            crate::output::json_line(p)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if pins.is_empty() {
        println!(
            "no tool pins{}",
            server.map(|s| format!(" for server '{}'", safe(s))).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = crate::output::table(["SERVER/TOOL", "STATE", "SOURCE", "FINGERPRINT", "SINCE", "APPROVED BY"]);
    for p in &pins {
        t.add_row(row(p));
    }
    crate::output::print_table(&t);
    let drifted = pins.iter().filter(|p| p.state == PinState::Drifted).count();
    if drifted > 0 {
        println!(
            "\n{drifted} drifted: review with `steward pins diff`, accept with `steward pins approve SERVER/TOOL`"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn row(p: &Pin) -> [String; 6] {
    let fp = match (&p.state, &p.current_fingerprint) {
        (PinState::Drifted, Some(cur)) => format!("{} -> {}", short(&p.fingerprint), short(cur)),
        _ => short(&p.fingerprint).to_string(),
    };
    let since = match p.state {
        PinState::Drifted => p.drifted_at.clone(),
        PinState::Pinned => p.approved_at.clone().or_else(|| Some(p.first_seen.clone())),
    };
    [
        format!("{}/{}", safe(&p.server), safe(&p.tool)),
        p.state.as_str().to_string(),
        p.source.as_str().to_string(),
        fp,
        since.unwrap_or_default(),
        p.approved_by.as_deref().map(safe).unwrap_or_else(|| "-".into()),
    ]
}

/// `sha256:0123456789ab` (12 hex digits are plenty to tell versions apart on screen).
fn short(fp: &str) -> &str {
    let end = "sha256:".len() + 12;
    fp.get(..end).unwrap_or(fp)
}

fn diff(store: &PinStore, target: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let diffs: Vec<PinDiff> = match target.map(split_target).transpose()? {
        Some((server, Some(tool))) => vec![store.diff(server, tool).map_err(describe)?],
        Some((server, None)) => drifted(store, Some(server))?,
        None => drifted(store, None)?,
    };
    if json {
        for d in &diffs {
            let mut v = serde_json::to_value(d).unwrap_or(Value::Null);
            v["findings"] = json!(scan::scan_tool(&d.current));
            crate::output::json_line(&v)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if diffs.is_empty() {
        println!("no drifted tools");
        return Ok(ExitCode::SUCCESS);
    }
    for (i, d) in diffs.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print_diff(d);
    }
    Ok(ExitCode::SUCCESS)
}

fn drifted(store: &PinStore, server: Option<&str>) -> anyhow::Result<Vec<PinDiff>> {
    let mut out = Vec::new();
    for p in store.list(server)? {
        if p.state == PinState::Drifted {
            match store.diff(&p.server, &p.tool) {
                Ok(d) => out.push(d),
                // Approved or reverted by someone else since the list: nothing to show.
                Err(PinError::NotDrifted(_)) | Err(PinError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(out)
}

fn print_diff(d: &PinDiff) {
    let what = if d.changed.is_empty() {
        "differs from its declared fingerprint".to_string()
    } else {
        format!("{} changed", d.changed.join(", "))
    };
    println!("{}/{}: {what}", safe(&d.server), safe(&d.tool));
    println!("--- pinned  {}", d.pinned_fingerprint);
    println!("+++ current {}", d.current_fingerprint);
    let fields: Vec<&str> = if d.changed.is_empty() {
        FINGERPRINTED_FIELDS.to_vec()
    } else {
        d.changed.clone()
    };
    for field in fields {
        println!("@@ {field}");
        let before = lines(d.pinned.get(field));
        let after = lines(d.current.get(field));
        for line in line_diff(&before, &after) {
            println!("{line}");
        }
    }
    let findings = scan::scan_tool(&d.current);
    if findings.is_empty() {
        println!("description scan of the current version: no findings");
    } else {
        println!("description scan of the current version:");
        for f in findings {
            println!(
                "  {:<6} {} at {}: {}",
                f.severity.as_str(),
                f.kind,
                safe(&f.location),
                f.message
            );
        }
    }
    println!(
        "accept with: steward pins approve {}/{} --fingerprint {}",
        safe(&d.server),
        safe(&d.tool),
        d.current_fingerprint
    );
}

/// The members a fingerprint covers (shown in full when the pinned definition is unknown).
const FINGERPRINTED_FIELDS: [&str; 5] = ["name", "description", "inputSchema", "outputSchema", "annotations"];

/// A field as lines to compare: a string's own lines, anything else pretty JSON; absent is
/// no lines. Every line is made safe to print.
fn lines(v: Option<&Value>) -> Vec<String> {
    match v {
        None => Vec::new(),
        Some(Value::String(s)) => s.lines().map(safe).collect(),
        Some(other) => serde_json::to_string_pretty(other)
            .unwrap_or_default()
            .lines()
            .map(safe)
            .collect(),
    }
}

/// A line diff (longest common subsequence): ` ` kept, `-` pinned only, `+` current only.
/// Very long fields are shown whole rather than compared.
fn line_diff(a: &[String], b: &[String]) -> Vec<String> {
    const MAX_CELLS: usize = 4_000_000;
    if a.len().saturating_mul(b.len()) > MAX_CELLS {
        return a
            .iter()
            .map(|l| format!("- {l}"))
            .chain(b.iter().map(|l| format!("+ {l}")))
            .collect();
    }
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push(format!("  {}", a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("+ {}", b[j]));
            j += 1;
        } else {
            out.push(format!("- {}", a[i]));
            i += 1;
        }
    }
    out
}

fn approve(
    store: &PinStore,
    target: &str,
    by: Option<String>,
    fingerprint: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (server, Some(tool)) = split_target(target)? else {
        bail!("approve one tool at a time: SERVER/TOOL");
    };
    let by = by
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("USERNAME").ok())
        .unwrap_or_else(|| "cli".into());
    let result = match fingerprint {
        Some(fp) => store.approve_fingerprint(server, tool, &by, fp),
        None => store.approve(server, tool, &by),
    };
    let a = result.map_err(describe)?;
    if json {
        crate::output::json_line(&a)?;
    } else {
        println!(
            "approved {}/{}: {} -> {} (by {})",
            safe(&a.server),
            safe(&a.tool),
            short(&a.from),
            short(&a.to),
            safe(&a.by)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn reset(store: &PinStore, target: &str) -> anyhow::Result<ExitCode> {
    let (server, tool) = split_target(target)?;
    let n = store.reset(server, tool)?;
    if n == 0 {
        eprintln!("steward: no pins matched '{}'", safe(target));
        return Ok(ExitCode::from(1));
    }
    println!(
        "removed {n} pin{}; {} will be pinned afresh the next time it is listed",
        if n == 1 { "" } else { "s" },
        safe(target)
    );
    Ok(ExitCode::SUCCESS)
}

/// Pin errors with the next step spelled out.
fn describe(e: PinError) -> anyhow::Error {
    match e {
        PinError::NotFound(what) => anyhow::anyhow!("no pin for {} (see `steward pins list`)", safe(&what)),
        other => other.into(),
    }
}

/// Text from an upstream server made safe for a terminal: control, invisible, bidirectional
/// and tag characters are written as `\u{…}` escapes so the reviewer sees them.
fn safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let hidden = c.is_control()
            || matches!(c,
                '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}'
                | '\u{E0000}'..='\u{E007F}' | '\u{E0100}'..='\u{E01EF}');
        if hidden {
            out.push_str(&format!("\\u{{{:04X}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_at_the_first_slash() {
        assert_eq!(split_target("fs/read_file").unwrap(), ("fs", Some("read_file")));
        assert_eq!(split_target("fs").unwrap(), ("fs", None));
        assert_eq!(split_target("gw/ns/tool").unwrap(), ("gw", Some("ns/tool")));
        assert!(split_target("/x").is_err());
        assert!(split_target("x/").is_err());
    }

    #[test]
    fn hidden_characters_are_escaped_for_the_terminal() {
        assert_eq!(safe("a\u{1b}[2Jb"), "a\\u{001B}[2Jb");
        assert_eq!(safe("x\u{200B}y\u{202E}z\u{E0041}"), "x\\u{200B}y\\u{202E}z\\u{E0041}");
        assert_eq!(safe("plain café"), "plain café");
    }

    #[test]
    fn line_diff_marks_changes() {
        let a: Vec<String> = ["one", "two", "three"].map(String::from).to_vec();
        let b: Vec<String> = ["one", "2", "three", "four"].map(String::from).to_vec();
        assert_eq!(line_diff(&a, &b), vec!["  one", "+ 2", "- two", "  three", "+ four"]);
    }

    #[test]
    fn end_to_end_on_a_real_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let store = PinStore::open_sqlite(&path).unwrap();
        store
            .check("calc", &json!({"name": "add", "description": "Adds"}))
            .unwrap();
        store
            .check("calc", &json!({"name": "add", "description": "Adds\u{1b}[8m hidden"}))
            .unwrap();
        let args = PinStoreArgs {
            db: Some(path.clone()),
            config: None,
        };
        let opened = open(&args).unwrap();
        assert_eq!(drifted(&opened, None).unwrap().len(), 1);
        assert_eq!(list(&opened, None, false).unwrap(), ExitCode::SUCCESS);
        assert_eq!(diff(&opened, Some("calc/add"), false).unwrap(), ExitCode::SUCCESS);
        assert!(approve(&opened, "calc", None, None, false).is_err());
        assert!(approve(&opened, "calc/add", Some("alice".into()), Some("sha256:00"), false).is_err());
        assert_eq!(
            approve(&opened, "calc/add", Some("alice".into()), None, false).unwrap(),
            ExitCode::SUCCESS
        );
        assert!(drifted(&opened, None).unwrap().is_empty());
        assert_eq!(reset(&opened, "calc/add").unwrap(), ExitCode::SUCCESS);
        assert_eq!(reset(&opened, "calc/add").unwrap(), ExitCode::from(1));
        let missing = PinStoreArgs {
            db: Some(dir.path().join("nope.db")),
            config: None,
        };
        assert!(open(&missing).is_err());
        assert!(!dir.path().join("nope.db").exists());
    }

    #[test]
    fn config_points_at_the_gateway_store() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("steward.yaml");
        std::fs::write(&cfg, "store: { sqlite: ./data/gw.db }\n").unwrap();
        let args = PinStoreArgs {
            db: None,
            config: Some(cfg),
        };
        let err = open(&args).err().unwrap().to_string();
        assert!(err.contains("gw.db"), "{err}");
        PinStore::open_sqlite(&dir.path().join("data/gw.db")).unwrap();
        assert!(open(&args).is_ok());
    }
}
