//! Audit: events/s sustained into SQLite through `AuditLog::append` (each caller waits for its
//! commit, as a governed call does), the latency one sequential caller sees, and how fast the
//! chain verifies (in-process and through `steward audit verify`).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::ensure;
use serde::Serialize;
use steward_store::{AuditEvent, AuditLog, AuditReader, EventKind};

use crate::Env;
use crate::stats::{Latency, nanos};
use crate::stdio_bench::ECHO_TEXT;

#[derive(Debug, Serialize)]
pub struct AuditResult {
    pub events: usize,
    pub tasks: usize,
    pub seconds: f64,
    pub events_per_s: f64,
    /// One caller appending and waiting for each commit in turn.
    pub sequential_append: Latency,
    pub verify_rows: u64,
    pub verify_seconds: f64,
    pub verify_rows_per_s: f64,
    /// `steward audit verify --db` on the same file, process start included.
    pub cli_verify_seconds: f64,
    pub cli_verify_rows_per_s: f64,
    pub db_bytes: u64,
}

/// A decision event shaped like the ones the pipeline writes for the benchmarked call.
pub fn decision_event(i: usize) -> AuditEvent {
    let mut e = AuditEvent::new(EventKind::Decision);
    e.decision_id = Some(format!("0196f3a2-7c41-7d2e-9a51-{i:012x}"));
    e.principal = Some("alice".into());
    e.client = Some("steward-bench/1".into());
    e.session = Some("5f0c9f57-8f5e-4a43-9b0e-2f3c1f6f4e21".into());
    e.door = Some("proxy".into());
    e.server = Some("bench".into());
    e.tool = Some("echo".into());
    e.method = Some("tools/call".into());
    e.args = Some(serde_json::json!({ "text": ECHO_TEXT }));
    e.args_digest = Some("9f2b5c0d4e7a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c".into());
    e.effect = Some("allow".into());
    e.risk = Some("LOW".into());
    e.reason = Some("rule echo-ops".into());
    e.rule_ids = vec!["echo-ops".into()];
    e.policy_version = Some("8c476bd821848abd".into());
    e
}

pub async fn run(env: &Env, events: usize, tasks: usize) -> anyhow::Result<AuditResult> {
    let path = env.dir.join("audit-bench.db");
    let log = AuditLog::open_sqlite(&path)?;

    // Sequential: what one stdio session pays per call for its decision row.
    let mut seq = Vec::with_capacity(2000);
    for i in 0..2000 {
        let start = Instant::now();
        log.append(decision_event(i)).await?;
        seq.push(nanos(start.elapsed()));
    }

    // Sustained: many callers at once, as a busy gateway has.
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let (log, next) = (log.clone(), next.clone());
        handles.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= events {
                    return anyhow::Ok(());
                }
                log.append(decision_event(i)).await?;
            }
        }));
    }
    for h in handles {
        h.await??;
    }
    let seconds = start.elapsed().as_secs_f64();
    log.close();

    let reader = AuditReader::open(&path)?;
    let start = Instant::now();
    let report = reader.verify()?;
    let verify_seconds = start.elapsed().as_secs_f64();
    ensure!(
        report.ok(),
        "the benchmark's own audit log does not verify: {:?}",
        report.broken
    );
    ensure!(
        report.rows as usize == events + 2000,
        "expected {} rows, found {}",
        events + 2000,
        report.rows
    );

    let start = Instant::now();
    let out = Command::new(&env.steward)
        .args(["audit", "verify", "--db"])
        .arg(&path)
        .output()?;
    let cli_verify_seconds = start.elapsed().as_secs_f64();
    ensure!(
        out.status.success(),
        "steward audit verify failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    Ok(AuditResult {
        events,
        tasks,
        seconds,
        events_per_s: events as f64 / seconds,
        sequential_append: Latency::of(&mut seq),
        verify_rows: report.rows,
        verify_seconds,
        verify_rows_per_s: report.rows as f64 / verify_seconds,
        cli_verify_seconds,
        cli_verify_rows_per_s: report.rows as f64 / cli_verify_seconds,
        db_bytes: [path.clone(), path.with_extension("db-wal")]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum(),
    })
}
