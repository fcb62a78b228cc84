//! The audit log against a real SQLite file: group commit, chain verification, tamper detection.

use rusqlite::Connection;
use steward_store::{AuditEvent, AuditLog, AuditReader, EventKind, QueryFilter};

fn decision(principal: &str, tool: &str, effect: &str) -> AuditEvent {
    let mut e = AuditEvent::new(EventKind::Decision);
    e.principal = Some(principal.into());
    e.server = Some("everything".into());
    e.tool = Some(tool.into());
    e.effect = Some(effect.into());
    e.risk = Some("LOW".into());
    e.reason = Some("test".into());
    e.args = Some(serde_json::json!({"message": "hi"}));
    e
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn fill(path: &std::path::Path, n: usize) {
    let log = AuditLog::open_sqlite(path).unwrap();
    rt().block_on(async {
        for i in 0..n {
            let seq = log
                .append(decision(
                    "alice",
                    &format!("tool{i}"),
                    if i % 2 == 0 { "allow" } else { "deny" },
                ))
                .await
                .unwrap();
            assert_eq!(seq, i as i64 + 1);
        }
    });
    log.close();
}

#[test]
fn intact_chain_verifies_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/dir/audit.db");
    fill(&db, 6);
    let reader = AuditReader::open(&db).unwrap();
    let report = reader.verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.rows, 6);
    let denies = reader
        .query(&QueryFilter {
            effect: Some("deny".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(denies.len(), 3);
    let one = reader
        .query(&QueryFilter {
            tool: Some("tool3".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].seq, 4);
    let stats = reader.stats().unwrap();
    assert_eq!(stats.events, 6);
    assert_eq!(stats.by_effect.get("allow"), Some(&3));
}

#[test]
fn every_kind_of_tampering_is_found() {
    let cases: &[(&str, i64)] = &[
        ("UPDATE audit_events SET principal = 'mallory' WHERE seq = 3", 3),
        ("UPDATE audit_events SET effect = 'allow' WHERE seq = 2", 2),
        ("DELETE FROM audit_events WHERE seq = 4", 4),
        ("DELETE FROM audit_events WHERE seq = 1", 1),
        // Swap the contents of two rows, keeping their sequence numbers.
        (
            "UPDATE audit_events SET tool = CASE seq WHEN 2 THEN 'tool4' WHEN 5 THEN 'tool1' END, \
          hash = CASE seq WHEN 2 THEN (SELECT hash FROM audit_events WHERE seq = 5) \
                          WHEN 5 THEN (SELECT hash FROM audit_events WHERE seq = 2) END WHERE seq IN (2, 5)",
            2,
        ),
        ("UPDATE audit_events SET seq = 100 WHERE seq = 6", 6),
    ];
    for (sql, broken_at) in cases {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        fill(&db, 6);
        Connection::open(&db).unwrap().execute_batch(sql).unwrap();
        let report = AuditReader::open(&db).unwrap().verify().unwrap();
        assert_eq!(
            report.broken.as_ref().map(|b| b.0),
            Some(*broken_at),
            "{sql}: {report:?}"
        );
    }
}

#[test]
fn two_writers_share_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let a = AuditLog::open_sqlite(&db).unwrap();
    let b = AuditLog::open_sqlite(&db).unwrap();
    rt().block_on(async {
        for i in 0..20 {
            let log = if i % 2 == 0 { &a } else { &b };
            log.append(decision("bob", "t", "allow")).await.unwrap();
        }
    });
    a.close();
    b.close();
    let report = AuditReader::open(&db).unwrap().verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.rows, 20);
}

#[test]
fn many_concurrent_appends_are_group_committed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let log = AuditLog::open_sqlite(&db).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..8 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..250 {
                    log.append(decision(&format!("p{t}"), "t", "allow")).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    log.close();
    let reader = AuditReader::open(&db).unwrap();
    let report = reader.verify().unwrap();
    assert!(report.ok());
    assert_eq!(report.rows, 2000);
}

#[test]
fn missing_database_is_a_clear_error() {
    let err = AuditReader::open(std::path::Path::new("/nonexistent/audit.db"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("no audit database"), "{err}");
}
