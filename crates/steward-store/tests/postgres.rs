//! The store on a real PostgreSQL server (a throwaway cluster, see `support/pg_cluster.rs`),
//! opened twice as two gateways would: one chain from both, approvals and grants across them,
//! shared pins, keys and counters, migrations, `store migrate`, and an outage survived.

#[path = "support/pg_cluster.rs"]
mod pg_cluster;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use steward_store::migrate::{MigrateError, migrate};
use steward_store::{
    Actor, ApprovalState, AuditEvent, AuditLog, BudgetKey, Change, EventKind, KeyError, NewApproval, NewKey,
    PostgresConfig, PruneRequest, Reusable, Store, StoreError, StoreLocation,
};

fn pg(url: &str) -> StoreLocation {
    StoreLocation::Postgres(PostgresConfig {
        url: url.to_string(),
        pool: 8,
    })
}

/// Two "gateways" on one fresh database.
fn two_gateways() -> (Store, Store, String) {
    let url = pg_cluster::shared().database();
    let a = Store::open(&pg(&url)).unwrap().with_instance(Some("gw-a".into()));
    let b = Store::open(&pg(&url)).unwrap().with_instance(Some("gw-b".into()));
    (a, b, url)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn decision(i: usize) -> AuditEvent {
    let mut e = AuditEvent::new(EventKind::Decision);
    e.decision_id = Some(format!("d-{i}"));
    e.principal = Some("alice".into());
    e.server = Some("ops".into());
    e.tool = Some("run".into());
    e.method = Some("tools/call".into());
    e.effect = Some("deny".into());
    e.args = Some(json!({"command": format!("echo {i}"), "quote": "it's \"fine\" ü"}));
    e
}

fn new_approval(id: &str) -> NewApproval {
    NewApproval {
        id: id.to_string(),
        decision_id: "d-1".into(),
        principal: "alice".into(),
        server: "ops".into(),
        tool: "run".into(),
        args: json!({"command": "sudo reboot"}),
        args_digest: "sha256:abc".into(),
        policy_version: "v1".into(),
        risk: "CRITICAL".into(),
        reasons: vec!["sudo needs approval".into()],
        rule_ids: vec![],
        flags: vec![],
        required_roles: vec!["admin".into()],
        required_count: 1,
        mode: "queue".into(),
        expiry: Duration::from_secs(3600),
        grant_window: Duration::from_secs(600),
        door: Some("gateway".into()),
        session: None,
        client: None,
    }
}

fn admin(name: &str) -> Actor {
    Actor {
        name: name.into(),
        roles: vec!["admin".into()],
    }
}

#[test]
fn two_gateways_append_one_chain() {
    if !pg_cluster::installed("two_gateways_append_one_chain") {
        return;
    }
    let (a, b, _) = two_gateways();
    let (la, lb) = (a.audit_log().unwrap(), b.audit_log().unwrap());
    rt().block_on(async {
        let mut tasks = Vec::new();
        for t in 0..16 {
            let log = if t % 2 == 0 { la.clone() } else { lb.clone() };
            tasks.push(tokio::spawn(async move {
                for i in 0..40 {
                    log.append(decision(t * 100 + i)).await.unwrap();
                }
                log.append_nowait(decision(t * 100 + 99)).unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        la.flush().await;
        lb.flush().await;
    });
    la.close();
    lb.close();
    let reader = a.reader().unwrap();
    let report = reader.verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.rows, 16 * 41);
    let rows = reader.query(&Default::default()).unwrap();
    let from_a = rows.iter().filter(|r| r.instance.as_deref() == Some("gw-a")).count();
    let from_b = rows.iter().filter(|r| r.instance.as_deref() == Some("gw-b")).count();
    assert_eq!((from_a, from_b), (8 * 41, 8 * 41));
    assert_eq!(rows[0].seq, 1);
    assert_eq!(rows.last().unwrap().seq, 16 * 41);
    // Unicode and quotes survive the round trip and the hash.
    assert!(rows.iter().any(|r| r.args.as_deref().is_some_and(|x| x.contains("ü"))));
    let stats = reader.stats().unwrap();
    assert_eq!(stats.events, 16 * 41);
    assert_eq!(stats.by_effect.get("deny"), Some(&(16 * 41)));
    let q = reader
        .query(&steward_store::QueryFilter {
            tool: Some("ops/r*".into()),
            limit: Some(5),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(q.len(), 5);
    assert_eq!(q.last().unwrap().seq, 16 * 41);
}

#[test]
fn an_approval_on_one_gateway_is_heard_on_the_other_and_a_grant_runs_once() {
    if !pg_cluster::installed("an_approval_on_one_gateway_is_heard_on_the_other_and_a_grant_runs_once") {
        return;
    }
    let (a, b, _) = two_gateways();
    let (on_a, on_b) = (a.approvals().unwrap(), b.approvals().unwrap());
    let mut heard = on_a.changes().expect("PostgreSQL notifies");
    let rt = rt();
    // The listener announces its first LISTEN with a resync.
    rt.block_on(async {
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(10), heard.recv())
                .await
                .unwrap()
                .unwrap(),
            Change::Resync
        );
    });
    let id = steward_store::ApprovalStore::new_id();
    on_a.create(&new_approval(&id)).unwrap();
    assert!(matches!(
        on_b.reusable("alice", "ops", "run", "sha256:abc", "v1").unwrap(),
        Reusable::Pending(_)
    ));
    let started = Instant::now();
    let approved = on_b.approve(&id, &admin("bob"), Some("ok")).unwrap();
    assert!(approved.complete);
    rt.block_on(async {
        loop {
            let c = tokio::time::timeout(Duration::from_secs(1), heard.recv())
                .await
                .expect("the approval is heard within a second")
                .unwrap();
            if c == Change::Approval(id.clone()) {
                break;
            }
        }
    });
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(on_a.get(&id).unwrap().unwrap().state, ApprovalState::Approved);

    // Identical retries through both gateways at once: exactly one is released.
    let stores = [on_a.clone(), on_b.clone()];
    let released: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let store = stores[i % 2].clone();
                let id = id.clone();
                s.spawn(move || store.consume(&id, &format!("retry-{i}")).unwrap().is_some())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(released.iter().filter(|r| **r).count(), 1, "{released:?}");
    assert!(on_b.finish(&id, true, "ok").unwrap().is_some());
    assert_eq!(on_a.get(&id).unwrap().unwrap().state, ApprovalState::Executed);

    // Every transition is in the one chain.
    let report = a.reader().unwrap().verify().unwrap();
    assert!(report.ok(), "{report:?}");
    let rows = a.reader().unwrap().query(&Default::default()).unwrap();
    let outcomes: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.outcome.as_deref().unwrap_or(""), r.instance.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        outcomes,
        vec![("pending", "gw-a"), ("approved", "gw-b"), ("executed", "gw-b")]
    );
}

#[test]
fn expiry_and_time_outs_behave_as_on_sqlite() {
    if !pg_cluster::installed("expiry_and_time_outs_behave_as_on_sqlite") {
        return;
    }
    let (a, b, url) = two_gateways();
    let (on_a, on_b) = (a.approvals().unwrap(), b.approvals().unwrap());
    let id = steward_store::ApprovalStore::new_id();
    on_a.create(&new_approval(&id)).unwrap();
    let timed_out = on_b.time_out(&id, Duration::from_secs(60)).unwrap().unwrap();
    assert_eq!(timed_out.state, ApprovalState::Denied);
    assert!(on_a.time_out(&id, Duration::from_secs(60)).unwrap().is_none());

    let late = steward_store::ApprovalStore::new_id();
    on_a.create(&new_approval(&late)).unwrap();
    pg_cluster::shared().psql(
        &url,
        &format!("UPDATE approvals SET expires_at = '2001-01-01T00:00:00.000Z' WHERE id = '{late}'"),
    );
    let err = on_b.approve(&late, &admin("bob"), None).unwrap_err();
    assert!(matches!(err, steward_store::ApprovalError::Expired { .. }), "{err}");
    assert_eq!(on_a.get(&late).unwrap().unwrap().state, ApprovalState::Expired);
    assert!(on_a.expire_due().unwrap().is_empty());
    assert!(a.reader().unwrap().verify().unwrap().ok());
}

#[test]
fn pins_keys_and_counters_are_shared() {
    if !pg_cluster::installed("pins_keys_and_counters_are_shared") {
        return;
    }
    let (a, b, _) = two_gateways();
    // Pins: learnt on A, drift seen through B, approved on B, in force on A.
    let (pa, pb) = (a.pins().unwrap(), b.pins().unwrap());
    let mut heard = pa.changes().unwrap();
    // The listener connects in the background; what is sent before it listens is not heard
    // (the gateway subscribes at start and polls besides).
    std::thread::sleep(Duration::from_millis(500));
    let tool = |d: &str| json!({"name": "add", "description": d});
    let gen0 = pa.generation().unwrap();
    assert!(matches!(
        pa.check("calc", &tool("Adds")).unwrap(),
        steward_store::PinStatus::New { .. }
    ));
    assert!(pb.check("calc", &tool("Adds, and mails ~/.ssh")).unwrap().is_drifted());
    assert!(pa.known("calc").unwrap()[0].drift.is_some());
    assert!(pa.generation().unwrap() > gen0);
    pb.approve("calc", "add", "alice").unwrap();
    assert!(pa.known_all().unwrap()["calc"][0].drift.is_none());
    pb.declare("calc", "sub", &format!("sha256:{}", "a".repeat(64)), "registry")
        .unwrap();
    assert_eq!(pa.list(None).unwrap().len(), 2);
    rt().block_on(async {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let c = tokio::time::timeout(Duration::from_secs(5), heard.recv())
                .await
                .unwrap()
                .unwrap();
            if c == Change::Pins("calc".into()) {
                break;
            }
            assert!(Instant::now() < deadline);
        }
    });

    // Keys: made on A, accepted by B, revoked on B, refused by A on its next check.
    let (ka, kb) = (a.keys().unwrap(), b.keys().unwrap());
    let k = ka
        .create(&NewKey {
            principal: "alice".into(),
            roles: vec!["dev".into()],
            ..NewKey::default()
        })
        .unwrap();
    assert_eq!(kb.verify(&k.key).unwrap().principal, "alice");
    kb.revoke(&k.record.id).unwrap();
    assert!(matches!(ka.verify(&k.key), Err(KeyError::Revoked(_))));
    assert_eq!(ka.list().unwrap().len(), 1);

    // Counters: the breaker's run and a budget count calls from both gateways.
    let (ca, cb) = (a.counters().unwrap(), b.counters().unwrap());
    let idle = Duration::from_secs(600);
    rt().block_on(async {
        assert_eq!(ca.breaker("alice", "ops/run", "sha256:1", idle).await.unwrap(), 1);
        assert_eq!(cb.breaker("alice", "ops/run", "sha256:1", idle).await.unwrap(), 2);
        assert_eq!(ca.breaker("alice", "ops/run", "sha256:1", idle).await.unwrap(), 3);
        assert_eq!(cb.breaker("alice", "ops/run", "sha256:2", idle).await.unwrap(), 1);
        let key = || {
            vec![BudgetKey {
                rule: "principal:60000:3:-".into(),
                key: "alice".into(),
                window: Duration::from_secs(60),
                max_calls: Some(3),
                max_bytes: None,
            }]
        };
        // Concurrent admissions through both gateways: exactly three get through.
        let tries: Vec<_> = (0..8)
            .map(|i| {
                let c = if i % 2 == 0 { ca.clone() } else { cb.clone() };
                let k = key();
                tokio::spawn(async move { c.admit(k).await.unwrap() })
            })
            .collect();
        let mut refused = Vec::new();
        for t in tries {
            if let Some(r) = t.await.unwrap() {
                refused.push(r);
            }
        }
        assert_eq!(refused.len(), 5);
        assert_eq!((refused[0].what, refused[0].used, refused[0].limit), ("calls", 3, 3));
        assert!(refused[0].retry_after <= Duration::from_secs(60) && refused[0].retry_after > Duration::ZERO);
        let bytes = vec![BudgetKey {
            rule: "principal:60000:-:100".into(),
            key: "bob".into(),
            window: Duration::from_secs(60),
            max_calls: None,
            max_bytes: Some(100),
        }];
        assert!(ca.admit(bytes.clone()).await.unwrap().is_none());
        cb.record_bytes(bytes.clone(), 150).await.unwrap();
        let r = ca.admit(bytes).await.unwrap().expect("over its bytes");
        assert_eq!((r.what, r.used), ("result_bytes", 150));
    });
}

#[test]
fn a_newer_schema_is_refused() {
    if !pg_cluster::installed("a_newer_schema_is_refused") {
        return;
    }
    let url = pg_cluster::shared().database();
    drop(Store::open(&pg(&url)).unwrap());
    pg_cluster::shared().psql(
        &url,
        "UPDATE steward_meta SET value = '99' WHERE key = 'schema_version'",
    );
    match Store::open(&pg(&url)) {
        Err(StoreError::SchemaTooNew { found: 99, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn evidence_tables_work_on_postgres() {
    if !pg_cluster::installed("evidence_tables_work_on_postgres") {
        return;
    }
    let (a, b, _) = two_gateways();
    let log = a.audit_log().unwrap();
    rt().block_on(async {
        for i in 0..30 {
            log.append(decision(i)).await.unwrap();
        }
    });
    log.close();
    let (ea, eb) = (a.evidence().unwrap(), b.evidence().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let key = steward_store::signing::SigningKey::generate(&dir.path().join("k")).unwrap();
    let cp = ea.checkpoint(Some(&key), "test").unwrap().unwrap();
    assert_eq!((cp.seq, cp.event_seq), (30, 31));
    // One lease holder across gateways.
    let held = ea.lease_sink("siem", "gw-a", Duration::from_secs(30), None).unwrap();
    assert_eq!(held, steward_store::Lease::Held { seq: 0 });
    assert!(matches!(
        eb.lease_sink("siem", "gw-b", Duration::from_secs(30), None).unwrap(),
        steward_store::Lease::Busy { .. }
    ));
    assert!(ea.advance_sink("siem", "gw-a", 31, 31).unwrap());
    assert_eq!(eb.rows_after(25, 100).unwrap().len(), 6);
    let far_future = "2999-01-01T00:00:00.000Z".to_string();
    let plan = eb
        .prune(
            &PruneRequest {
                before: far_future,
                sinks: None,
                force: false,
                batch: 7,
            },
            Some(&key),
            "test",
        )
        .unwrap();
    assert_eq!(plan.removed, 30);
    let report = a.reader().unwrap().verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.first_seq, 31);
    assert!(report.anchor.is_some());
}

#[test]
fn store_migrate_copies_everything_and_refuses_a_non_empty_target() {
    if !pg_cluster::installed("store_migrate_copies_everything_and_refuses_a_non_empty_target") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("steward.db");
    let sqlite = Store::open(&StoreLocation::Sqlite(db.clone())).unwrap();
    let log = sqlite.audit_log().unwrap();
    rt().block_on(async {
        for i in 0..2_500 {
            log.append_nowait(decision(i)).unwrap();
        }
        log.flush().await;
    });
    log.close();
    let approvals = sqlite.approvals().unwrap();
    let id = steward_store::ApprovalStore::new_id();
    approvals.create(&new_approval(&id)).unwrap();
    approvals.approve(&id, &admin("bob"), None).unwrap();
    sqlite.pins().unwrap().check("calc", &json!({"name": "add"})).unwrap();
    let key = sqlite
        .keys()
        .unwrap()
        .create(&NewKey {
            principal: "svc".into(),
            ..NewKey::default()
        })
        .unwrap();
    sqlite.evidence().unwrap().checkpoint(None, "test").unwrap().unwrap();

    let url = pg_cluster::shared().database();
    let mut said = Vec::new();
    let report = migrate(&StoreLocation::Sqlite(db.clone()), &pg(&url), |s| {
        said.push(s.to_string())
    })
    .unwrap();
    assert!(report.verify.ok(), "{:?}", report.verify);
    assert_eq!(report.verify.rows, 2_500 + 2 + 1);
    let counted: std::collections::BTreeMap<_, _> = report.copied.iter().cloned().collect();
    assert_eq!(counted["audit_events"], 2_503);
    assert_eq!(counted["approvals"], 1);
    assert_eq!(counted["tool_pins"], 1);
    assert_eq!(counted["api_keys"], 1);
    assert_eq!(counted["audit_checkpoints"], 1);
    assert!(said.iter().any(|s| s.contains("verifying")));

    // The copy is a working store: the chain continues, the key and the grant hold.
    let target = Store::open(&pg(&url)).unwrap().with_instance(Some("gw-a".into()));
    assert_eq!(target.keys().unwrap().verify(&key.key).unwrap().principal, "svc");
    assert!(target.approvals().unwrap().consume(&id, "d-9").unwrap().is_some());
    let log = target.audit_log().unwrap();
    rt().block_on(async { log.append(decision(9_999)).await.unwrap() });
    log.close();
    let after = target.reader().unwrap().verify().unwrap();
    assert!(after.ok() && after.checkpoints.total == 1, "{after:?}");

    match migrate(&StoreLocation::Sqlite(db), &pg(&url), |_| {}) {
        Err(MigrateError::Refused(m)) => assert!(m.contains("not empty"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_outage_fails_closed_and_recovers_without_a_restart() {
    if !pg_cluster::installed("an_outage_fails_closed_and_recovers_without_a_restart") {
        return;
    }
    let cluster = Arc::new(pg_cluster::Cluster::start());
    let url = cluster.database();
    let store = Store::open(&pg(&url)).unwrap().with_instance(Some("gw-a".into()));
    let log = store.audit_log().unwrap();
    let keys = store.keys().unwrap();
    let rt = rt();
    rt.block_on(async { log.append(decision(1)).await.unwrap() });
    assert!(log.health().is_ok());

    cluster.stop();
    let err = rt.block_on(async { log.append(decision(2)).await }).unwrap_err();
    assert!(err.to_string().contains("PostgreSQL"), "{err}");
    assert!(log.health().is_err());
    let refused = keys
        .verify(&format!("stw_{}_{}", "a".repeat(12), "b".repeat(64)))
        .unwrap_err();
    assert!(
        !refused.is_rejection(),
        "an unreachable store is not a bad key: {refused}"
    );

    cluster.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while log.health().is_err() {
        assert!(
            Instant::now() < deadline,
            "the writer never noticed PostgreSQL was back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    rt.block_on(async { log.append(decision(3)).await.unwrap() });
    log.close();
    let report = store.reader().unwrap().verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.rows, 2);
}

#[test]
fn the_audit_log_type_checks_out() {
    // A handle is Send + Sync + Clone so every task can hold one.
    fn is<T: Send + Sync + Clone>() {}
    is::<AuditLog>();
    is::<Store>();
}
