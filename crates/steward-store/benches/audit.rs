//! Audit log throughput: hash-chained appends into SQLite (callers waiting for their commit, and
//! fire-and-forget), chain verification, and the hash of one row.
//!
//! Run: `cargo bench -p steward-store --bench audit -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use steward_store::{AuditEvent, AuditLog, AuditReader, EventKind};

const BATCH: usize = 10_000;
const TASKS: usize = 64;

/// A decision event shaped like the pipeline's for a ~300-byte `tools/call`.
fn decision_event(i: usize) -> AuditEvent {
    let mut e = AuditEvent::new(EventKind::Decision);
    e.decision_id = Some(format!("0196f3a2-7c41-7d2e-9a51-{i:012x}"));
    e.principal = Some("alice".into());
    e.client = Some("claude-code/2.1.0".into());
    e.session = Some("5f0c9f57-8f5e-4a43-9b0e-2f3c1f6f4e21".into());
    e.door = Some("gateway".into());
    e.server = Some("it-ops".into());
    e.tool = Some("ssh-exec".into());
    e.method = Some("tools/call".into());
    e.args = Some(serde_json::json!({
        "host": "web-01",
        "command": "journalctl -u app --since '1 hour ago' --no-pager | grep -i error | wc -l && df -h / /srv && uptime",
        "timeout": 30,
    }));
    e.args_digest = Some("9f2b5c0d4e7a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c".into());
    e.effect = Some("allow".into());
    e.risk = Some("HIGH".into());
    e.reason = Some("rule senior-operators".into());
    e.rule_ids = vec!["senior-operators".into()];
    e.policy_version = Some("8c476bd821848abd".into());
    e
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// `BATCH` events appended by `TASKS` callers, each waiting for its own commit (strict durability).
async fn append_concurrently(log: &AuditLog) {
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (log, next) = (log.clone(), next.clone());
            tokio::spawn(async move {
                // Each call its own decision id, as in a real log (verify pairs decisions with
                // their outcomes by id).
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= BATCH {
                        break;
                    }
                    log.append(decision_event(i)).await.expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");

    let mut g = c.benchmark_group("audit");
    g.sample_size(10);
    g.throughput(Throughput::Elements(BATCH as u64));

    let log = AuditLog::open_sqlite(&dir.path().join("append.db")).expect("open");
    g.bench_function("append 10k events, 64 tasks awaiting commit", |b| {
        b.iter(|| rt.block_on(append_concurrently(&log)))
    });
    log.close();

    let log = AuditLog::open_sqlite(&dir.path().join("nowait.db")).expect("open");
    g.bench_function("append_nowait 10k events, then flush", |b| {
        b.iter(|| {
            rt.block_on(async {
                for i in 0..BATCH {
                    log.append_nowait(decision_event(i)).expect("append");
                }
                log.flush().await;
            })
        })
    });
    log.close();

    let path = dir.path().join("verify.db");
    let log = AuditLog::open_sqlite(&path).expect("open");
    rt.block_on(append_concurrently(&log));
    log.close();
    let reader = AuditReader::open(&path).expect("reader");
    g.bench_function("verify 10k rows", |b| {
        b.iter(|| {
            let report = reader.verify().expect("verify");
            assert!(report.ok() && report.rows == BATCH as u64);
        })
    });
    g.finish();

    let row = reader.query(&Default::default()).expect("query").pop().expect("a row");
    c.bench_function("audit/hash of one row (AuditRow::compute_hash)", |b| {
        b.iter(|| black_box(&row).compute_hash())
    });
}

criterion_group!(audit, benches);
criterion_main!(audit);
