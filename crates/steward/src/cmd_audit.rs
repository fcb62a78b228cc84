use std::process::ExitCode;

use anyhow::{Context, bail};
use steward_store::{AuditReader, AuditRow, QueryFilter};

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// List audit events, oldest first.
    Query(QueryArgs),
    /// Check the hash chain: exit 0 when intact, 1 naming the first broken row.
    Verify {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        json: bool,
    },
    /// Counts by effect, risk, outcome, tool and principal.
    Stats {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        json: bool,
    },
    /// Export events for a SIEM: JSON lines, CSV or CEF, oldest first, to stdout.
    Export {
        #[command(flatten)]
        db: DbArg,
        /// jsonl, csv or cef.
        #[arg(long, value_name = "FORMAT", default_value = "jsonl")]
        format: String,
        /// Only events newer than this: 30s, 15m, 2h, 7d, or an RFC 3339 time.
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Only events after this sequence number (for incremental shipping).
        #[arg(long, value_name = "SEQ")]
        after_seq: Option<i64>,
    },
}

#[derive(Args)]
pub struct DbArg {
    /// SQLite audit database (default: ./steward-data/steward.db when it exists, else
    /// $XDG_DATA_HOME/steward/audit.db).
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    pub db: Option<PathBuf>,
    /// The gateway's steward.yaml: its `store.sqlite`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// Only events newer than this: 30s, 15m, 2h, 7d, or an RFC 3339 time.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Only decisions with this effect: allow, deny, approve.
    #[arg(long, value_name = "EFFECT")]
    pub effect: Option<String>,
    /// Only this tool: a SERVER/TOOL glob, or a TOOL glob on any server.
    #[arg(long, value_name = "GLOB")]
    pub tool: Option<String>,
    /// Only this principal.
    #[arg(long, value_name = "P")]
    pub principal: Option<String>,
    /// Only this kind of event: decision, outcome, system.
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// At most this many (the newest) events.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Query(args) => query(args),
        AuditCommand::Verify { db, json } => verify(&db, json),
        AuditCommand::Stats { db, json } => stats(&db, json),
        AuditCommand::Export {
            db,
            format,
            since,
            after_seq,
        } => export(&db, &format, since.as_deref(), after_seq),
    }
}

fn open(db: &DbArg) -> anyhow::Result<AuditReader> {
    let found = crate::store_location::locate(db.db.as_deref(), db.config.as_deref())?;
    found.announce();
    Ok(AuditReader::open(&found.path)?)
}

fn query(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let reader = open(&args.db)?;
    let since = args.since.as_deref().map(parse_since).transpose()?;
    if let Some(e) = &args.effect
        && !["allow", "deny", "approve"].contains(&e.to_ascii_lowercase().as_str())
    {
        bail!("--effect must be allow, deny or approve (got '{e}')");
    }
    let rows = reader.query(&QueryFilter {
        since,
        effect: args.effect.clone(),
        tool: args.tool.clone(),
        principal: args.principal.clone(),
        kind: args.kind.clone(),
        decision_id: None,
        limit: args.limit,
    })?;
    if args.json {
        for row in &rows {
            crate::output::json_line(&row.to_json())?;
        }
    } else {
        print_table(&rows);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(rows: &[AuditRow]) {
    let mut t = crate::output::table([
        "SEQ",
        "TIME",
        "KIND",
        "PRINCIPAL",
        "SERVER/TOOL",
        "EFFECT",
        "RISK",
        "REASON / OUTCOME",
    ]);
    if let Some(seq) = t.column_mut(0) {
        seq.set_cell_alignment(comfy_table::CellAlignment::Right);
    }
    for r in rows {
        let target = match (&r.server, &r.tool) {
            (Some(s), Some(t)) => format!("{s}/{t}"),
            (Some(s), None) => format!("{s} {}", r.method.as_deref().unwrap_or("")),
            _ => "-".into(),
        };
        let tail = match (&r.outcome, &r.reason) {
            (Some(o), _) => format!(
                "{o}{}",
                r.duration_ms.map(|d| format!(" in {d:.1} ms")).unwrap_or_default()
            ),
            (None, Some(reason)) => reason.clone(),
            _ => String::new(),
        };
        t.add_row([
            r.seq.to_string(),
            r.ts.clone(),
            r.kind.clone(),
            r.principal.clone().unwrap_or_else(|| "-".into()),
            target,
            r.effect.clone().unwrap_or_else(|| "-".into()),
            r.risk.clone().unwrap_or_else(|| "-".into()),
            crate::output::clip(&tail, 200),
        ]);
    }
    crate::output::print_table(&t);
}

fn verify(db: &DbArg, json: bool) -> anyhow::Result<ExitCode> {
    let reader = open(db)?;
    let report = reader.verify()?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "ok": report.ok(),
                "rows": report.rows,
                "last_seq": report.last_seq,
                "broken_seq": report.broken.as_ref().map(|b| b.0),
                "problem": report.broken.as_ref().map(|b| b.1.clone()),
            })
        );
    }
    match &report.broken {
        None => {
            if !json {
                println!(
                    "audit log intact: {} event(s), chain verified through seq {}",
                    report.rows, report.last_seq
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some((seq, problem)) => {
            if !json {
                println!("audit log TAMPERED: chain broken at seq {seq}: {problem}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

fn stats(db: &DbArg, json: bool) -> anyhow::Result<ExitCode> {
    let s = open(db)?.stats()?;
    if json {
        crate::output::json_line(&s)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("events:      {}", s.events);
    println!("from:        {}", s.first_ts.as_deref().unwrap_or("-"));
    println!("to:          {}", s.last_ts.as_deref().unwrap_or("-"));
    let line = |name: &str, m: &std::collections::BTreeMap<String, u64>| {
        let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!(
            "{name:<12} {}",
            if parts.is_empty() { "-".into() } else { parts.join(", ") }
        );
    };
    line("kinds:", &s.by_kind);
    line("effects:", &s.by_effect);
    line("risks:", &s.by_risk);
    line("outcomes:", &s.by_outcome);
    println!("top tools:");
    for (t, n) in &s.top_tools {
        println!("  {n:>8}  {t}");
    }
    println!("top principals:");
    for (p, n) in &s.top_principals {
        println!("  {n:>8}  {p}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `30s`, `15m`, `2h`, `7d`, `1w`, or an RFC 3339 time → an RFC 3339 lower bound.
fn parse_since(s: &str) -> anyhow::Result<String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .with_context(|| format!("--since: cannot read '{s}'; use e.g. 30s, 15m, 2h, 7d or an RFC 3339 time"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        "w" => n * 604_800,
        other => bail!("--since: unknown unit '{other}'; use s, m, h, d or w"),
    };
    let since = chrono::Utc::now() - chrono::Duration::seconds(secs.min(100 * 365 * 86_400));
    Ok(since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn export(db: &DbArg, format: &str, since: Option<&str>, after_seq: Option<i64>) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let reader = open(db)?;
    let since = since.map(parse_since).transpose()?;
    let rows = reader.query(&QueryFilter {
        since,
        ..QueryFilter::default()
    })?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let rows = rows.iter().filter(|r| after_seq.is_none_or(|a| r.seq > a));
    match format {
        "jsonl" => {
            for r in rows {
                writeln!(out, "{}", r.to_json())?;
            }
        }
        "csv" => {
            writeln!(
                out,
                "seq,ts,kind,decision_id,principal,client,door,server,tool,method,effect,risk,flags,reason,rule_ids,outcome,duration_ms,args_digest,policy_version,hash"
            )?;
            for r in rows {
                let f = |v: &Option<String>| csv_field(v.as_deref().unwrap_or(""));
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    r.seq,
                    csv_field(&r.ts),
                    csv_field(&r.kind),
                    f(&r.decision_id),
                    f(&r.principal),
                    f(&r.client),
                    f(&r.door),
                    f(&r.server),
                    f(&r.tool),
                    f(&r.method),
                    f(&r.effect),
                    f(&r.risk),
                    f(&r.flags),
                    f(&r.reason),
                    f(&r.rule_ids),
                    f(&r.outcome),
                    r.duration_ms.map(|d| d.to_string()).unwrap_or_default(),
                    f(&r.args_digest),
                    f(&r.policy_version),
                    csv_field(&r.hash)
                )?;
            }
        }
        "cef" => {
            for r in rows {
                writeln!(out, "{}", cef_line(r))?;
            }
        }
        other => bail!("--format must be jsonl, csv or cef (got '{other}')"),
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn csv_field(s: &str) -> String {
    // Leading =, +, -, @ would be formulas in a spreadsheet.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One event in ArcSight Common Event Format.
fn cef_line(r: &AuditRow) -> String {
    let header = |s: &str| s.replace('\\', "\\\\").replace('|', "\\|");
    let ext = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('=', "\\=")
            .replace('\n', "\\n")
            .replace('\r', "\\r")
    };
    let severity = match (r.effect.as_deref(), r.risk.as_deref()) {
        (_, Some("CRITICAL")) => 9,
        (Some("deny"), _) => 7,
        (Some("approve"), _) | (_, Some("HIGH")) => 6,
        (_, Some("MEDIUM")) => 4,
        _ => 2,
    };
    let signature = format!(
        "{}:{}",
        r.kind,
        r.effect.as_deref().or(r.outcome.as_deref()).unwrap_or("event")
    );
    let name = match (&r.server, &r.tool) {
        (Some(s), Some(t)) => format!(
            "{} {s}/{t}",
            r.effect.as_deref().or(r.outcome.as_deref()).unwrap_or(&r.kind)
        ),
        _ => r.reason.clone().unwrap_or_else(|| r.kind.clone()),
    };
    let mut fields = vec![
        format!("rt={}", ext(&r.ts)),
        format!("cn1={}", r.seq),
        "cn1Label=seq".to_string(),
    ];
    let mut push = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            fields.push(format!("{k}={}", ext(v)));
        }
    };
    push("suser", &r.principal);
    push("app", &r.door);
    push("destinationServiceName", &r.server);
    push("act", &r.effect);
    push("outcome", &r.outcome);
    push("reason", &r.reason);
    push("requestClientApplication", &r.client);
    push("cs1", &r.tool);
    push("cs2", &r.risk);
    push("cs3", &r.decision_id);
    push("cs4", &r.flags);
    push("cs5", &r.rule_ids);
    push("cs6", &r.policy_version);
    fields.push(
        "cs1Label=tool cs2Label=risk cs3Label=decisionId cs4Label=flags cs5Label=rules cs6Label=policyVersion"
            .to_string(),
    );
    format!(
        "CEF:0|Steward|steward|{}|{}|{}|{severity}|{}",
        env!("CARGO_PKG_VERSION"),
        header(&signature),
        header(&name),
        fields.join(" ")
    )
}
