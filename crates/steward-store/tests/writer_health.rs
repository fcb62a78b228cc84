//! The audit writer says when it cannot write (readiness checks read it), and says so again
//! once it can; stats count risks over decisions only.

use std::time::{Duration, Instant};

use steward_store::{AuditEvent, AuditLog, AuditReader, EventKind};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn sql(path: &std::path::Path, statement: &str) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch(statement)
        .unwrap();
}

#[test]
fn a_failing_commit_makes_the_log_unhealthy_until_it_can_write_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let log = AuditLog::open_sqlite(&path).unwrap();
    rt().block_on(async {
        log.append(AuditEvent::new(EventKind::System)).await.unwrap();
        assert!(log.health().is_ok());
        // Every insert now fails, as on a full or read-only disk.
        sql(
            &path,
            "CREATE TRIGGER no_rows BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk is full'); END;",
        );
        assert!(log.append(AuditEvent::new(EventKind::System)).await.is_err());
        let sick = log.health().unwrap_err();
        assert!(sick.error.contains("disk is full"), "{sick:?}");
        // Nothing else is written, yet the writer's probe keeps the state true both ways.
        std::thread::sleep(Duration::from_secs(3));
        assert!(
            log.health().is_err(),
            "the probe must not clear a failure that persists"
        );
        sql(&path, "DROP TRIGGER no_rows;");
        let start = Instant::now();
        while log.health().is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "health never recovered");
            std::thread::sleep(Duration::from_millis(100));
        }
        log.append(AuditEvent::new(EventKind::System)).await.unwrap();
    });
    log.close();
    assert!(log.health().is_err(), "a closed writer cannot write");
    let reader = AuditReader::open(&path).unwrap();
    assert!(reader.verify().unwrap().ok(), "probes leave no row behind");
    assert_eq!(reader.stats().unwrap().events, 2);
}

#[test]
fn stats_count_risks_over_decisions_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let log = AuditLog::open_sqlite(&path).unwrap();
    rt().block_on(async {
        let mut d = AuditEvent::new(EventKind::Decision);
        d.risk = Some("CRITICAL".into());
        d.effect = Some("approve".into());
        log.append(d).await.unwrap();
        for outcome in ["pending", "approved"] {
            let mut a = AuditEvent::new(EventKind::Approval);
            a.risk = Some("CRITICAL".into());
            a.outcome = Some(outcome.into());
            log.append(a).await.unwrap();
        }
    });
    log.close();
    let stats = AuditReader::open(&path).unwrap().stats().unwrap();
    assert_eq!(stats.by_risk.get("CRITICAL"), Some(&1), "{stats:?}");
    assert_eq!(stats.by_kind.get("approval"), Some(&2));
}
