//! Reads for live views on a real SQLite file: rows after a sequence number with filters, the
//! newest rows, one row, the overview's counts and alerts; and the approve/deny pre-checks agree
//! with what the store then does.

use std::time::Duration;

use steward_store::{
    ActivityFilter, Actor, ApprovalError, ApprovalStore, AuditEvent, AuditLog, AuditReader, EventKind, NewApproval,
    may_approve, may_deny,
};

fn decision(principal: &str, tool: &str, effect: &str, risk: &str, rules: &[&str]) -> AuditEvent {
    let mut e = AuditEvent::new(EventKind::Decision);
    e.principal = Some(principal.into());
    e.server = Some("demo".into());
    e.tool = Some(tool.into());
    e.effect = Some(effect.into());
    e.risk = Some(risk.into());
    e.rule_ids = rules.iter().map(|r| r.to_string()).collect();
    e.reason = Some(format!("{effect} {tool}"));
    e
}

fn fill(path: &std::path::Path, events: Vec<AuditEvent>) {
    let log = AuditLog::open_sqlite(path).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for e in events {
            log.append(e).await.unwrap();
        }
    });
    log.close();
}

#[test]
fn rows_after_a_seq_and_the_newest_follow_the_filters() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    fill(
        &db,
        vec![
            decision("alice", "ls", "allow", "LOW", &[]),
            decision("bob", "rm", "deny", "HIGH", &["r1"]),
            decision("alice", "rm", "approve", "CRITICAL", &["r2"]),
            decision("alice", "cat", "deny", "MEDIUM", &["steward:canary"]),
        ],
    );
    let r = AuditReader::open(&db).unwrap();
    assert_eq!(r.last_seq().unwrap(), 4);
    let all = r.after(0, &ActivityFilter::default(), 100).unwrap();
    assert_eq!(all.iter().map(|x| x.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert_eq!(r.after(2, &ActivityFilter::default(), 100).unwrap().len(), 2);
    assert_eq!(r.after(0, &ActivityFilter::default(), 1).unwrap().len(), 1);
    let alice_denied = ActivityFilter {
        principal: Some("alice".into()),
        effect: Some("DENY".into()),
        ..ActivityFilter::default()
    };
    let rows = r.after(0, &alice_denied, 100).unwrap();
    assert_eq!(rows.iter().map(|x| x.seq).collect::<Vec<_>>(), vec![4]);
    let risky = ActivityFilter {
        risk: Some("critical".into()),
        tool: Some("rm".into()),
        ..ActivityFilter::default()
    };
    assert_eq!(r.after(0, &risky, 100).unwrap()[0].seq, 3);
    // A filter value is data, never SQL.
    let odd = ActivityFilter {
        principal: Some("x' OR '1'='1".into()),
        ..ActivityFilter::default()
    };
    assert!(r.after(0, &odd, 100).unwrap().is_empty());
    let newest = r.newest(&ActivityFilter::default(), None, 2).unwrap();
    assert_eq!(newest.iter().map(|x| x.seq).collect::<Vec<_>>(), vec![4, 3]);
    let older = r.newest(&ActivityFilter::default(), Some(3), 10).unwrap();
    assert_eq!(older.iter().map(|x| x.seq).collect::<Vec<_>>(), vec![2, 1]);
    assert_eq!(r.row(2).unwrap().unwrap().principal.as_deref(), Some("bob"));
    assert!(r.row(99).unwrap().is_none());
}

#[test]
fn the_overview_counts_and_raises_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let mut events = vec![
        decision("alice", "ls", "allow", "LOW", &[]),
        decision("mallory", "canary_tool", "deny", "CRITICAL", &["steward:canary"]),
        decision("mallory", "evil", "deny", "HIGH", &["steward:tool-blocked"]),
        decision("mallory", "moved", "deny", "HIGH", &["steward:tool-drift"]),
    ];
    for _ in 0..3 {
        events.push(decision("eve", "rm", "deny", "HIGH", &["r"]));
    }
    let mut list = AuditEvent::new(EventKind::Decision);
    list.server = Some("demo".into());
    list.effect = Some("allow".into());
    list.reason = Some("1 entries blocked for their definition".into());
    list.detail =
        Some(serde_json::json!({"hidden": [], "blocked": [{"name": "evil", "reason": "poisoned"}], "warnings": []}));
    events.push(list);
    fill(&db, events);
    let r = AuditReader::open(&db).unwrap();
    let o = r.overview("2000-01-01T00:00:00", 2).unwrap();
    assert_eq!(o.decisions, 8);
    assert_eq!(o.top_denied_principals[0], ("eve".to_string(), 3));
    assert_eq!(o.top_denied_tools[0], ("demo/rm".to_string(), 3));
    assert_eq!(o.calls_per_server, vec![("demo".to_string(), 8)]);
    assert_eq!(o.canary_hits.count, 1);
    assert_eq!(o.canary_hits.rows[0].principal.as_deref(), Some("mallory"));
    assert_eq!(
        o.blocked_descriptions.count, 2,
        "a refused call and a list that left a tool out"
    );
    assert_eq!(o.drift_blocks.count, 1);
    // mallory: 3 denials, eve: 3; more than 2 in an hour is a burst.
    let mut bursts: Vec<_> = o
        .denial_bursts
        .iter()
        .map(|b| (b.principal.as_str(), b.denials))
        .collect();
    bursts.sort();
    assert_eq!(bursts, vec![("eve", 3), ("mallory", 3)]);
    assert!(r.overview("2000-01-01T00:00:00", 3).unwrap().denial_bursts.is_empty());
    let effects: u64 = o
        .by_hour_effect
        .iter()
        .filter(|c| c.key == "deny")
        .map(|c| c.count)
        .sum();
    assert_eq!(effects, 6);
    // Nothing before `since` counts.
    assert_eq!(r.overview("2999-01-01T00:00:00", 2).unwrap().decisions, 0);
    // No approvals table yet: no waits, nothing pending.
    assert!(o.approval_waits.is_empty());

    let series = steward_store::hourly_series(&o.by_hour_effect, chrono::Utc::now(), 24);
    assert_eq!(series.len(), 24);
    assert_eq!(series.last().unwrap().1.get("deny").copied(), Some(6));
}

fn new_approval(id: &str, roles: &[&str], count: u32) -> NewApproval {
    NewApproval {
        id: id.into(),
        decision_id: "d-1".into(),
        principal: "alice".into(),
        server: "ops".into(),
        tool: "run".into(),
        args: serde_json::json!({"command": "sudo reboot"}),
        args_digest: "sha256:abc".into(),
        policy_version: "v1".into(),
        risk: "CRITICAL".into(),
        reasons: vec![],
        rule_ids: vec![],
        flags: vec![],
        required_roles: roles.iter().map(|r| r.to_string()).collect(),
        required_count: count,
        mode: "queue".into(),
        expiry: Duration::from_secs(3600),
        grant_window: Duration::from_secs(600),
        door: None,
        session: None,
        client: None,
    }
}

fn actor(name: &str, roles: &[&str]) -> Actor {
    Actor {
        name: name.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

#[test]
fn the_pre_checks_say_what_approve_and_deny_then_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let store = ApprovalStore::open_sqlite(&db).unwrap();
    let a = store.create(&new_approval("apr-000000000001", &["admin"], 2)).unwrap();
    let alice = actor("alice", &[]);
    let bob = actor("bob", &["admin"]);
    let viewer = actor("victor", &["viewer"]);
    assert!(matches!(
        may_approve(&a, &alice),
        Err(ApprovalError::SelfApproval { .. })
    ));
    assert!(matches!(
        may_approve(&a, &viewer),
        Err(ApprovalError::MissingRole { .. })
    ));
    assert!(may_approve(&a, &bob).is_ok());
    assert!(may_deny(&a, &alice).is_ok(), "the requester may withdraw");
    assert!(may_deny(&a, &viewer).is_err());
    assert!(matches!(
        store.approve(&a.id, &viewer, None),
        Err(ApprovalError::MissingRole { .. })
    ));
    let once = store.approve(&a.id, &bob, Some("ok")).unwrap().approval;
    assert!(matches!(
        may_approve(&once, &bob),
        Err(ApprovalError::AlreadyApproved { .. })
    ));
    assert!(matches!(
        store.approve(&a.id, &bob, None),
        Err(ApprovalError::AlreadyApproved { .. })
    ));
    let carol = actor("carol", &["admin"]);
    assert!(may_approve(&once, &carol).is_ok());
    let done = store.approve(&a.id, &carol, None).unwrap().approval;
    assert!(matches!(
        may_approve(&done, &actor("dave", &["admin"])),
        Err(ApprovalError::NotPending { .. })
    ));
    assert!(matches!(may_deny(&done, &bob), Err(ApprovalError::NotPending { .. })));
}
