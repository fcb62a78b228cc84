//! Audit log throughput: hash-chained appends into SQLite (callers waiting for their commit, and
//! fire-and-forget), chain verification, and the hash of one row. With `STEWARD_BENCH_PG_URL`
//! naming an empty PostgreSQL database, the same appends and verify run on PostgreSQL too.
//!
//! Run: `cargo bench -p steward-store --bench audit -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use steward_store::{AuditEvent, AuditLog, AuditReader, EventKind, PostgresConfig, Store, StoreLocation};

const BATCH: usize = 10_000;
const TASKS: usize = 64;

/// Decision ids are unique across iterations too, as in a real log (verify pairs decisions with
/// their outcomes by id; PostgreSQL keeps every iteration's rows in one database).
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

fn next_event() -> AuditEvent {
    decision_event(NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

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
                while next.fetch_add(1, Ordering::Relaxed) < BATCH {
                    log.append(next_event()).await.expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
}

enum Append {
    /// `TASKS` callers, each waiting for its own commit (strict durability).
    Awaited,
    /// Fire-and-forget, then one flush.
    Nowait,
}

fn bench_append(g: &mut BenchmarkGroup<'_, WallTime>, rt: &tokio::runtime::Runtime, log: &AuditLog, how: Append) {
    match how {
        Append::Awaited => g.bench_function("append 10k events, 64 tasks awaiting commit", |b| {
            b.iter(|| rt.block_on(append_concurrently(log)))
        }),
        Append::Nowait => g.bench_function("append_nowait 10k events, then flush", |b| {
            b.iter(|| {
                rt.block_on(async {
                    for _ in 0..BATCH {
                        log.append_nowait(next_event()).expect("append");
                    }
                    log.flush().await;
                })
            })
        }),
    };
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");

    let mut g = c.benchmark_group("audit");
    g.sample_size(10);
    g.throughput(Throughput::Elements(BATCH as u64));

    let log = AuditLog::open_sqlite(&dir.path().join("append.db")).expect("open");
    bench_append(&mut g, &rt, &log, Append::Awaited);
    log.close();

    let log = AuditLog::open_sqlite(&dir.path().join("nowait.db")).expect("open");
    bench_append(&mut g, &rt, &log, Append::Nowait);
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

/// The same appends and verify on PostgreSQL, when a database is named.
fn postgres_benches(c: &mut Criterion) {
    let Ok(url) = std::env::var("STEWARD_BENCH_PG_URL") else {
        return;
    };
    let rt = runtime();
    let store = Store::open(&StoreLocation::Postgres(PostgresConfig { url, pool: 16 }))
        .expect("open PostgreSQL")
        .with_instance(Some("bench".into()));
    let mut g = c.benchmark_group("audit-postgres");
    g.sample_size(10);
    g.throughput(Throughput::Elements(BATCH as u64));
    let log = store.audit_log().expect("audit log");
    bench_append(&mut g, &rt, &log, Append::Awaited);
    bench_append(&mut g, &rt, &log, Append::Nowait);
    log.close();
    let reader = store.reader().expect("reader");
    let rows = reader.verify().expect("verify").rows;
    g.throughput(Throughput::Elements(rows));
    g.bench_function("verify every row appended above", |b| {
        b.iter(|| assert!(reader.verify().expect("verify").ok()))
    });
    g.finish();
}

criterion_group!(audit, benches, postgres_benches);
criterion_main!(audit);
