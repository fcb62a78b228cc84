use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use steward_gateway::evidence::EvidenceFile;
use steward_store::signing::{PublicKey, SigningKey, public_path};
use steward_store::{
    AuditReader, AuditRow, EvidenceStore, PruneRequest, QueryFilter, Signature, VerifyOptions, VerifyReport,
};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// List audit events, oldest first.
    Query(QueryArgs),
    /// Check the log: the hash chain, every checkpoint (truncation), signatures; exit 0 when it
    /// verifies, 1 naming what is wrong. Calls without outcome are reported, not failed.
    Verify {
        #[command(flatten)]
        db: DbArg,
        /// Require checkpoints and prune anchors signed by this Ed25519 public key (repeatable,
        /// for rotated keys); a third party verifies a copy of the database with it.
        #[arg(long = "public-key", value_name = "FILE")]
        public_keys: Vec<PathBuf>,
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
        /// Only events newer than this: 30s, 15m, 2h, 7d, a date (2026-01-31) or an RFC 3339 time.
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Only events after this sequence number (for incremental shipping).
        #[arg(long, value_name = "SEQ")]
        after_seq: Option<i64>,
    },
    /// Write a new Ed25519 signing key to FILE (mode 0600) and its public key to FILE.pub.
    Keygen {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Sign the chain head now: a checkpoint that `verify` checks the log against.
    Checkpoint {
        #[command(flatten)]
        db: DbArg,
        /// Ed25519 key (default: `audit.signing_key` of --config; without one, unsigned).
        #[arg(long, value_name = "FILE")]
        signing_key: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Delete old rows in batches behind an anchor `verify` starts from; keeps rows a sink has
    /// not delivered unless --force.
    Prune {
        #[command(flatten)]
        db: DbArg,
        /// Remove rows older than this: 90d, 12h, 1s, a date (2026-01-31) or an RFC 3339 time.
        #[arg(long, value_name = "DURATION|DATE")]
        before: String,
        /// Remove rows even when a sink has not delivered them.
        #[arg(long)]
        force: bool,
        /// Ed25519 key that signs the anchor (default: `audit.signing_key` of --config).
        #[arg(long, value_name = "FILE")]
        signing_key: Option<PathBuf>,
        /// Say what would go, remove nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Each sink's cursor, how far behind it is, and its last error.
    Sinks {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct DbArg {
    /// SQLite audit database (default: ./steward-data/steward.db when it exists, else
    /// $XDG_DATA_HOME/steward/audit.db).
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    pub db: Option<PathBuf>,
    /// The gateway's steward.yaml: its `store.sqlite`, and its `audit:` block (sinks, signing key).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl DbArg {
    fn file(&self) -> anyhow::Result<Option<EvidenceFile>> {
        self.config
            .as_deref()
            .map(EvidenceFile::load)
            .transpose()
            .map_err(anyhow::Error::msg)
    }

    /// The store: `--db`, else the config's, else the demo's or the proxy's default; said on
    /// stderr.
    fn path(&self) -> anyhow::Result<PathBuf> {
        let found = crate::store_location::locate(self.db.as_deref(), self.config.as_deref())?;
        found.announce();
        Ok(found.path)
    }
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
    /// Only this kind of event: decision, outcome, system, approval, checkpoint.
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
        AuditCommand::Verify { db, public_keys, json } => verify(&db, &public_keys, json),
        AuditCommand::Stats { db, json } => stats(&db, json),
        AuditCommand::Export {
            db,
            format,
            since,
            after_seq,
        } => export(&db, &format, since.as_deref(), after_seq),
        AuditCommand::Keygen { out } => keygen(&out),
        AuditCommand::Checkpoint { db, signing_key, json } => checkpoint(&db, signing_key.as_deref(), json),
        AuditCommand::Prune {
            db,
            before,
            force,
            signing_key,
            dry_run,
            json,
        } => prune(&db, &before, force, signing_key.as_deref(), dry_run, json),
        AuditCommand::Sinks { db, json } => sinks(&db, json),
    }
}

fn open(db: &DbArg) -> anyhow::Result<AuditReader> {
    Ok(AuditReader::open(&db.path()?)?)
}

/// The signing key: `--signing-key`, else the config's `audit.signing_key`.
fn signing_key(flag: Option<&Path>, file: Option<&EvidenceFile>) -> anyhow::Result<Option<SigningKey>> {
    let path = flag
        .map(Path::to_path_buf)
        .or_else(|| file.and_then(|f| f.audit.signing_key.clone()));
    Ok(path.as_deref().map(SigningKey::from_file).transpose()?)
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

fn verify(db: &DbArg, public_keys: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let reader = open(db)?;
    let keys = public_keys
        .iter()
        .map(|p| PublicKey::from_file(p))
        .collect::<Result<Vec<_>, _>>()?;
    let report = reader.verify_with(&VerifyOptions { public_keys: keys })?;
    if json {
        println!("{}", verify_json(&report));
    } else {
        print_verify(&report);
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn verify_json(r: &VerifyReport) -> serde_json::Value {
    serde_json::json!({
        "ok": r.ok(),
        "rows": r.rows,
        "first_seq": r.first_seq,
        "last_seq": r.last_seq,
        "last_hash": r.last_hash,
        "broken_seq": r.broken.as_ref().map(|b| b.0),
        "problem": r.broken.as_ref().map(|b| b.1.clone()),
        "truncated": r.truncated,
        "problems": r.problems,
        "notes": r.notes,
        "anchor": r.anchor,
        "rows_before_anchor": r.rows_before_anchor,
        "checkpoints": r.checkpoints,
        "calls_without_outcome": r.calls_without_outcome,
    })
}

fn print_verify(r: &VerifyReport) {
    if let Some((seq, problem)) = &r.broken {
        println!("audit log TAMPERED: chain broken at seq {seq}: {problem}");
    } else if let Some(t) = &r.truncated {
        println!(
            "audit log TRUNCATED: it ends at seq {}, but a {} checkpoint made at {} covers seq {}: rows {}..{} are missing",
            t.log_ends_at,
            if t.signed { "signed" } else { "unsigned" },
            t.checkpoint_ts,
            t.checkpoint_seq,
            t.log_ends_at + 1,
            t.checkpoint_seq
        );
    } else if r.problems.is_empty() {
        let from = if r.first_seq > 1 {
            format!(" from the prune anchor at seq {}", r.first_seq)
        } else {
            String::new()
        };
        println!(
            "audit log intact: {} event(s), chain verified{from} through seq {}",
            r.rows, r.last_seq
        );
    } else {
        println!("audit log FAILED verification:");
    }
    for p in &r.problems {
        println!("  problem: {p}");
    }
    if let Some(a) = &r.anchor {
        println!(
            "  anchor: the chain starts at seq {} (rows before {} pruned), {}",
            a.anchor.seq,
            a.anchor.pruned_before,
            signature_text(&a.signature)
        );
    }
    let c = &r.checkpoints;
    if c.total > 0 {
        println!(
            "  checkpoints: {} ({} signed and verified, {} unsigned, {} before the anchor)",
            c.total, c.verified, c.unsigned, c.before_anchor
        );
        if let Some(head) = &c.last_verified {
            println!(
                "  signed head: seq {} hash {} at {}{}",
                head.seq,
                head.hash,
                head.ts,
                head.public_key
                    .as_deref()
                    .and_then(PublicKey::from_hex)
                    .map(|k| format!(" (key {})", k.id()))
                    .unwrap_or_else(|| " (unsigned)".into())
            );
        }
    } else {
        println!("  checkpoints: none (`steward audit checkpoint` makes truncation detectable)");
    }
    for n in &r.notes {
        println!("  note: {n}");
    }
    for call in &r.calls_without_outcome.calls {
        println!(
            "    call without outcome: seq {} {} {} {}/{} decision {}",
            call.seq,
            call.ts,
            call.principal.as_deref().unwrap_or("-"),
            call.server.as_deref().unwrap_or("-"),
            call.tool.as_deref().unwrap_or("-"),
            call.decision_id.as_deref().unwrap_or("-")
        );
    }
    let more = r.calls_without_outcome.count as usize - r.calls_without_outcome.calls.len();
    if more > 0 {
        println!(
            "    … and {more} more (`audit verify --json` lists the first {})",
            steward_store::MAX_LISTED_OPEN_CALLS
        );
    }
}

fn signature_text(s: &Signature) -> String {
    match s {
        Signature::Valid { key_id } => format!("signed by key {key_id}"),
        Signature::OtherKey { key_id } => format!("signed by untrusted key {key_id}"),
        Signature::Invalid => "signature INVALID".into(),
        Signature::Unsigned => "unsigned".into(),
    }
}

fn keygen(out: &Path) -> anyhow::Result<ExitCode> {
    let key = SigningKey::generate(out)?;
    println!(
        "wrote {} (private: keep it away from whoever can write the audit database) and {} (public key {})",
        out.display(),
        public_path(out).display(),
        key.public_key().id()
    );
    println!(
        "use it with `audit: {{ signing_key: {{ file: {} }} }}` in steward.yaml, or --signing-key",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn checkpoint(db: &DbArg, key: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let file = db.file()?;
    let key = signing_key(key, file.as_ref())?;
    let store = EvidenceStore::open_existing(&db.path()?)?;
    let Some(cp) = store.checkpoint(key.as_ref(), &steward_gateway::identity::os_user())? else {
        bail!("the audit log is empty: there is no head to checkpoint");
    };
    if json {
        println!("{}", serde_json::to_string(&cp)?);
    } else {
        println!(
            "checkpoint #{}: seq {} hash {} (row of {}), recorded at seq {}, {}",
            cp.id,
            cp.seq,
            cp.hash,
            cp.head_ts,
            cp.event_seq,
            match &key {
                Some(k) => format!("signed with key {}", k.public_key().id()),
                None => "UNSIGNED".into(),
            }
        );
    }
    if key.is_none() {
        eprintln!(
            "steward: warning: the checkpoint is unsigned; anyone who can write the database could forge one. \
             Make a key with `steward audit keygen --out FILE` and pass --signing-key FILE"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn prune(
    db: &DbArg,
    before: &str,
    force: bool,
    key: Option<&Path>,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let file = db.file()?;
    let key = signing_key(key, file.as_ref())?;
    let cutoff = parse_since(before).context("--before")?;
    let store = EvidenceStore::open_existing(&db.path()?)?;
    let req = PruneRequest {
        before: cutoff.clone(),
        // With a config, its sinks count (a configured sink that never ran holds everything);
        // without one, every sink that has a cursor.
        sinks: file.as_ref().map(|f| f.audit.sink_names()),
        force,
        batch: 5_000,
    };
    let plan = store.plan_prune(&req)?;
    let held = plan
        .held_back_by
        .iter()
        .map(|(s, seq)| format!("{s} (delivered through seq {seq})"))
        .collect::<Vec<_>>()
        .join(", ");
    if dry_run {
        if json {
            println!("{}", serde_json::to_string(&plan)?);
        } else {
            println!(
                "would remove {} row(s) before {cutoff}; the log would start at seq {}",
                plan.remove, plan.keep_from
            );
            if !held.is_empty() {
                println!("kept for sinks that have not delivered them: {held}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if plan.remove == 0 && !plan.held_back_by.is_empty() {
        eprintln!(
            "steward: nothing pruned: the rows before {cutoff} have not been delivered to {held}; \
             wait for the sinks (`steward audit sinks`) or use --force"
        );
        return Ok(ExitCode::from(1));
    }
    let done = store.prune(&req, key.as_ref(), &steward_gateway::identity::os_user())?;
    if json {
        println!("{}", serde_json::to_string(&done)?);
    } else if done.removed == 0 {
        println!("nothing to prune: no row before {cutoff} (the newest row is always kept)");
    } else {
        println!(
            "pruned {} row(s) before {cutoff}; the chain now starts at seq {} ({} anchor)",
            done.removed,
            done.plan.keep_from,
            if key.is_some() { "signed" } else { "unsigned" }
        );
    }
    if !held.is_empty() {
        eprintln!("steward: kept rows not yet delivered to {held}");
    }
    Ok(ExitCode::SUCCESS)
}

fn sinks(db: &DbArg, json: bool) -> anyhow::Result<ExitCode> {
    let file = db.file()?;
    let reader = open(db)?;
    let head = reader.head_seq()?;
    let cursors = reader.sink_cursors()?;
    let configured: Vec<(String, &'static str)> = file
        .as_ref()
        .map(|f| {
            f.audit
                .sinks
                .iter()
                .map(|s| (s.name.clone(), s.kind.type_name()))
                .collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::new();
    for (name, kind) in &configured {
        let c = cursors.iter().find(|c| &c.sink == name);
        rows.push((name.clone(), kind.to_string(), c.cloned(), true));
    }
    for c in &cursors {
        if !configured.iter().any(|(n, _)| n == &c.sink) {
            rows.push((c.sink.clone(), "-".into(), Some(c.clone()), file.is_none()));
        }
    }
    if json {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for (name, kind, c, in_config) in &rows {
            let seq = c.as_ref().map(|c| c.seq).unwrap_or(0);
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "sink": name,
                    "type": kind,
                    "configured": in_config,
                    "cursor": seq,
                    "head": head,
                    "lag": (head - seq).max(0),
                    "delivered": c.as_ref().map(|c| c.delivered).unwrap_or(0),
                    "updated_at": c.as_ref().and_then(|c| c.updated_at.clone()),
                    "last_error": c.as_ref().and_then(|c| c.last_error.clone()),
                    "last_error_at": c.as_ref().and_then(|c| c.last_error_at.clone()),
                    "lease_owner": c.as_ref().and_then(|c| c.lease_owner.clone()),
                    "lease_until": c.as_ref().and_then(|c| c.lease_until.clone()),
                })
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no sinks (configure them under `audit: {{sinks: [...]}}` in steward.yaml; see docs/sinks.md)");
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = crate::output::table(["SINK", "TYPE", "CURSOR", "HEAD", "LAG", "DELIVERED AT", "LAST ERROR"]);
    for (name, kind, c, in_config) in &rows {
        let seq = c.as_ref().map(|c| c.seq).unwrap_or(0);
        let error = match c
            .as_ref()
            .and_then(|c| c.last_error.clone().map(|e| (c.last_error_at.clone(), e)))
        {
            Some((at, e)) => format!("{} {}", at.unwrap_or_default(), crate::output::clip(&e, 80)),
            None => "-".into(),
        };
        let note = match (in_config, c) {
            (false, _) => " (not in the config)",
            (true, None) => " (never ran)",
            _ => "",
        };
        t.add_row([
            name.clone(),
            kind.clone(),
            seq.to_string(),
            head.to_string(),
            (head - seq).max(0).to_string(),
            c.as_ref()
                .and_then(|c| c.updated_at.clone())
                .unwrap_or_else(|| "-".into()),
            format!("{error}{note}"),
        ]);
    }
    crate::output::print_table(&t);
    Ok(ExitCode::SUCCESS)
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

/// `30s`, `15m`, `2h`, `7d`, `1w`, a date (`2026-01-31`, midnight UTC) or an RFC 3339 time →
/// an RFC 3339 time in the format of the `ts` column.
pub(crate) fn parse_since(s: &str) -> anyhow::Result<String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
        return Ok(d
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .with_context(|| format!("cannot read '{s}'; use e.g. 30s, 15m, 2h, 7d, 2026-01-31 or an RFC 3339 time"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        "w" => n * 604_800,
        other => bail!("unknown unit '{other}' in '{s}'; use s, m, h, d or w"),
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
                writeln!(out, "{}", steward_store::cef_line(r))?;
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
