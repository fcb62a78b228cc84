//! Checkpoints, truncation, retention, sink cursors and migrations against real SQLite files.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use steward_store::signing::{PublicKey, SigningKey, public_path};
use steward_store::{
    AuditEvent, AuditLog, AuditReader, EventKind, EvidenceStore, Lease, PruneRequest, Signature, VerifyOptions,
};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn call(i: usize, ts: Option<&str>) -> AuditEvent {
    let mut e = AuditEvent::new(EventKind::Decision);
    if let Some(ts) = ts {
        e.ts = ts.into();
    }
    e.decision_id = Some(format!("d-{i}"));
    e.principal = Some("alice".into());
    e.door = Some("gateway".into());
    e.server = Some("demo".into());
    e.tool = Some("lookup_order".into());
    e.method = Some("tools/call".into());
    e.effect = Some("allow".into());
    e
}

fn outcome(i: usize, ts: Option<&str>) -> AuditEvent {
    let mut e = call(i, ts);
    e.kind = EventKind::Outcome;
    e.effect = None;
    e.outcome = Some("ok".into());
    e
}

/// `n` calls, each a decision and an outcome row, with the given timestamp (now when `None`).
fn fill(path: &Path, n: usize, ts: Option<&str>) {
    let log = AuditLog::open_sqlite(path).unwrap();
    rt().block_on(async {
        for i in 0..n {
            log.append(call(i, ts)).await.unwrap();
            log.append(outcome(i, ts)).await.unwrap();
        }
    });
    log.close();
}

fn sql(path: &Path, statement: &str) {
    Connection::open(path).unwrap().execute_batch(statement).unwrap();
}

#[test]
fn cutting_rows_after_a_checkpoint_is_named_as_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let key = SigningKey::generate(&dir.path().join("k")).unwrap();
    fill(&db, 5, None);
    let store = EvidenceStore::open_existing(&db).unwrap();
    let cp = store.checkpoint(Some(&key), "test").unwrap().unwrap();
    assert_eq!((cp.seq, cp.event_seq), (10, 11));
    let report = AuditReader::open(&db).unwrap().verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.checkpoints.verified, 1);
    assert_eq!(report.checkpoints.last_verified.as_ref().map(|c| c.seq), Some(10));

    sql(&db, "DELETE FROM audit_events WHERE seq > 7");
    let report = AuditReader::open(&db).unwrap().verify().unwrap();
    assert!(!report.ok());
    assert!(report.broken.is_none(), "the rows left still chain: {report:?}");
    let t = report.truncated.expect("truncation");
    assert_eq!((t.log_ends_at, t.checkpoint_seq, t.signed), (7, 11, true));

    // Removing only the checkpoint's own event row is caught too.
    let dir2 = tempfile::tempdir().unwrap();
    let db2 = dir2.path().join("audit.db");
    fill(&db2, 2, None);
    EvidenceStore::open_existing(&db2)
        .unwrap()
        .checkpoint(None, "t")
        .unwrap();
    sql(&db2, "DELETE FROM audit_events WHERE seq = 5");
    let report = AuditReader::open(&db2).unwrap().verify().unwrap();
    assert_eq!(report.truncated.map(|t| t.log_ends_at), Some(4));
}

#[test]
fn signatures_are_checked_against_the_trusted_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let key = SigningKey::generate(&dir.path().join("k")).unwrap();
    let other = SigningKey::generate(&dir.path().join("other")).unwrap();
    fill(&db, 2, None);
    let store = EvidenceStore::open_existing(&db).unwrap();
    store.checkpoint(Some(&key), "test").unwrap();
    let reader = AuditReader::open(&db).unwrap();
    let trusted = PublicKey::from_file(&public_path(&dir.path().join("k"))).unwrap();
    let ok = reader
        .verify_with(&VerifyOptions {
            public_keys: vec![trusted],
        })
        .unwrap();
    assert!(ok.ok(), "{ok:?}");
    let wrong = reader
        .verify_with(&VerifyOptions {
            public_keys: vec![other.public_key()],
        })
        .unwrap();
    assert!(
        !wrong.ok() && wrong.problems[0].contains("not a trusted key"),
        "{wrong:?}"
    );

    // An unsigned checkpoint passes alone, but not when a key is required.
    store.checkpoint(None, "test").unwrap();
    let report = reader.verify().unwrap();
    assert!(
        report.ok() && report.notes.iter().any(|n| n.contains("unsigned")),
        "{report:?}"
    );
    let required = reader
        .verify_with(&VerifyOptions {
            public_keys: vec![key.public_key()],
        })
        .unwrap();
    assert!(required.problems.iter().any(|p| p.contains("unsigned")), "{required:?}");

    // Editing a signed checkpoint breaks its signature.
    sql(
        &db,
        "UPDATE audit_checkpoints SET head_ts = '2020-01-01T00:00:00.000Z' WHERE id = 1",
    );
    let report = reader.verify().unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("does not verify")),
        "{report:?}"
    );
    // Deleting the checkpoint rows leaves their events in the chain, which names them.
    sql(&db, "DELETE FROM audit_checkpoints");
    let report = reader.verify().unwrap();
    assert_eq!(
        report
            .problems
            .iter()
            .filter(|p| p.contains("missing from the checkpoint table"))
            .count(),
        2,
        "{report:?}"
    );
    assert_eq!(Signature::check(Some("zz"), Some("00"), b"m", &[]), Signature::Invalid);
}

#[test]
fn prune_keeps_a_signed_anchor_and_the_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let key = SigningKey::generate(&dir.path().join("k")).unwrap();
    fill(&db, 10, Some("2020-01-01T00:00:00.000Z"));
    fill(&db, 3, None);
    let store = EvidenceStore::open_existing(&db).unwrap();
    store.checkpoint(Some(&key), "test").unwrap();
    let req = PruneRequest {
        before: "2025-01-01T00:00:00.000Z".into(),
        sinks: None,
        force: false,
        batch: 7,
    };
    let plan = store.plan_prune(&req).unwrap();
    assert_eq!((plan.first_seq, plan.keep_from, plan.remove), (Some(1), 21, 20));
    let done = store.prune(&req, Some(&key), "test").unwrap();
    assert_eq!(done.removed, 20);
    let anchor = done.anchor.unwrap();
    assert_eq!(anchor.seq, 21);
    let report = AuditReader::open(&db)
        .unwrap()
        .verify_with(&VerifyOptions {
            public_keys: vec![key.public_key()],
        })
        .unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.first_seq, 21);
    assert_eq!(report.rows, 8, "6 kept rows, the checkpoint event and the prune event");
    assert!(matches!(
        report.anchor.as_ref().map(|a| &a.signature),
        Some(Signature::Valid { .. })
    ));

    // Pruning everything keeps the newest row, and the chain goes on from it.
    let all = PruneRequest {
        before: "2999-01-01T00:00:00.000Z".into(),
        ..req.clone()
    };
    let done = store.prune(&all, Some(&key), "test").unwrap();
    assert_eq!(done.plan.keep_from, 28);
    fill(&db, 1, None);
    let report = AuditReader::open(&db).unwrap().verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.first_seq, report.last_seq), (28, 31));

    // An edited kept row no longer matches the anchor.
    sql(&db, "UPDATE audit_events SET principal = 'mallory' WHERE seq = 28");
    let report = AuditReader::open(&db).unwrap().verify().unwrap();
    assert_eq!(report.broken.map(|b| b.0), Some(28));
}

#[test]
fn prune_keeps_what_a_sink_has_not_delivered_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    fill(&db, 10, Some("2020-01-01T00:00:00.000Z"));
    fill(&db, 1, None);
    let store = EvidenceStore::open_existing(&db).unwrap();
    assert_eq!(
        store.lease_sink("syslog", "me", Duration::from_secs(30), None).unwrap(),
        Lease::Held { seq: 0 }
    );
    assert!(store.advance_sink("syslog", "me", 5, 5).unwrap());
    let req = PruneRequest {
        before: "2025-01-01T00:00:00.000Z".into(),
        sinks: None,
        force: false,
        batch: 1000,
    };
    let plan = store.plan_prune(&req).unwrap();
    assert_eq!(plan.keep_from, 6);
    assert_eq!(plan.held_back_by, vec![("syslog".to_string(), 5)]);
    // A configured sink that never ran holds everything back.
    let named = PruneRequest {
        sinks: Some(vec!["syslog".into(), "new".into()]),
        ..req.clone()
    };
    assert_eq!(store.plan_prune(&named).unwrap().remove, 0);
    let forced = PruneRequest { force: true, ..req };
    let done = store.prune(&forced, None, "test").unwrap();
    assert_eq!(done.removed, 20);
    let report = AuditReader::open(&db).unwrap().verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert!(
        report.notes.iter().any(|n| n.contains("anchor is unsigned")),
        "{report:?}"
    );
}

#[test]
fn prune_refuses_a_broken_chain() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    fill(&db, 5, Some("2020-01-01T00:00:00.000Z"));
    fill(&db, 1, None);
    sql(&db, "UPDATE audit_events SET principal = 'mallory' WHERE seq = 3");
    let store = EvidenceStore::open_existing(&db).unwrap();
    let err = store
        .prune(
            &PruneRequest {
                before: "2025-01-01T00:00:00.000Z".into(),
                sinks: None,
                force: true,
                batch: 100,
            },
            None,
            "test",
        )
        .unwrap_err();
    assert!(err.to_string().contains("broken at seq 3"), "{err}");
    assert_eq!(AuditReader::open(&db).unwrap().head_seq().unwrap(), 12);
}

#[test]
fn a_sink_lease_has_one_holder_until_it_runs_out_or_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    fill(&db, 1, None);
    let store = EvidenceStore::open_existing(&db).unwrap();
    let ttl = Duration::from_secs(60);
    assert_eq!(store.lease_sink("s", "a", ttl, None).unwrap(), Lease::Held { seq: 0 });
    assert!(matches!(store.lease_sink("s", "b", ttl, None).unwrap(), Lease::Busy { owner, .. } if owner == "a"));
    assert!(
        !store.advance_sink("s", "b", 2, 2).unwrap(),
        "only the holder moves the cursor"
    );
    assert!(store.advance_sink("s", "a", 2, 2).unwrap());
    assert!(!store.advance_sink("s", "a", 1, 1).unwrap(), "cursors never move back");
    assert_eq!(
        store.lease_sink("s", "b", ttl, Some("a")).unwrap(),
        Lease::Held { seq: 2 }
    );
    store.release_sink("s", "b").unwrap();
    assert_eq!(
        store.lease_sink("s", "c", Duration::from_millis(1), None).unwrap(),
        Lease::Held { seq: 2 }
    );
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(store.lease_sink("s", "d", ttl, None).unwrap(), Lease::Held { seq: 2 });
    store.sink_error("s", "connection refused\nby peer").unwrap();
    let c = store.cursor("s").unwrap().unwrap();
    assert_eq!((c.seq, c.delivered), (2, 2));
    assert_eq!(c.last_error.as_deref(), Some("connection refused by peer"));
    assert_eq!(store.rows_after(1, 10).unwrap().len(), 1);
}

#[test]
fn calls_without_outcome_are_reported_without_failing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    fill(&db, 2, None);
    let log = AuditLog::open_sqlite(&db).unwrap();
    rt().block_on(async {
        log.append(call(7, None)).await.unwrap();
        let mut hook = call(8, None);
        hook.door = Some("hook".into());
        log.append(hook).await.unwrap();
        let mut denied = call(9, None);
        denied.effect = Some("deny".into());
        log.append(denied).await.unwrap();
    });
    log.close();
    let report = AuditReader::open(&db).unwrap().verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.calls_without_outcome.count, 1);
    assert_eq!(
        report.calls_without_outcome.calls[0].decision_id.as_deref(),
        Some("d-7")
    );
    assert!(report.notes.iter().any(|n| n.contains("no outcome row")));
}

#[test]
fn a_version_1_database_is_migrated_and_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    fill(&db, 3, None);
    // Make it look like a file written before the evidence tables existed.
    sql(
        &db,
        "DROP TABLE audit_sink_cursors; DROP TABLE audit_checkpoints; DROP TABLE audit_anchors; \
         ALTER TABLE audit_events DROP COLUMN instance; \
         UPDATE steward_meta SET value = '1' WHERE key = 'schema_version';",
    );
    let reader = AuditReader::open(&db).unwrap();
    let report = reader.verify().unwrap();
    assert!(report.ok() && report.rows == 6, "{report:?}");
    assert!(reader.sink_cursors().unwrap().is_empty());
    drop(reader);
    let store = EvidenceStore::open_existing(&db).unwrap();
    assert!(store.checkpoint(None, "t").unwrap().is_some());
    let version: String = Connection::open(&db)
        .unwrap()
        .query_row("SELECT value FROM steward_meta WHERE key = 'schema_version'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(version, "3");
    assert!(AuditReader::open(&db).unwrap().verify().unwrap().ok());
}
