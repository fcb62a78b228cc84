//! The approvals table on a real SQLite file: transitions are conditional, every one is an audit
//! event in the same hash chain the audit writer extends, and racing handles (as separate
//! processes would be) never release one approval twice.

use std::time::Duration;

use steward_store::{
    Actor, ApprovalError, ApprovalState, ApprovalStore, AuditEvent, AuditLog, AuditReader, EventKind, NewApproval,
    Reusable,
};

fn new(store_id: &str, principal: &str) -> NewApproval {
    NewApproval {
        id: store_id.to_string(),
        decision_id: "d-1".into(),
        principal: principal.into(),
        server: "ops".into(),
        tool: "run".into(),
        args: serde_json::json!({"command": "sudo reboot"}),
        args_digest: "sha256:abc".into(),
        policy_version: "v1".into(),
        risk: "CRITICAL".into(),
        reasons: vec!["sudo needs approval".into()],
        rule_ids: vec![],
        flags: vec!["privilege-escalation".into()],
        required_roles: vec!["admin".into()],
        required_count: 2,
        mode: "queue".into(),
        expiry: Duration::from_secs(3600),
        grant_window: Duration::from_secs(600),
        door: Some("proxy".into()),
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

#[tokio::test]
async fn transitions_are_audited_in_one_chain_and_released_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let log = AuditLog::open_sqlite(&path).unwrap();
    // Two handles on one file, as the proxy and `steward approvals` in another process.
    let proxy = ApprovalStore::open_sqlite(&path).unwrap();
    let cli = ApprovalStore::open_sqlite(&path).unwrap();

    let mut e = AuditEvent::new(EventKind::Decision);
    e.decision_id = Some("d-1".into());
    log.append(e).await.unwrap();
    let id = ApprovalStore::new_id();
    let a = proxy.create(&new(&id, "alice")).unwrap();
    assert_eq!(a.state, ApprovalState::Pending);
    assert!(matches!(
        cli.reusable("alice", "ops", "run", "sha256:abc", "v1").unwrap(),
        Reusable::Pending(_)
    ));

    assert!(matches!(
        cli.approve(&id, &admin("alice"), None),
        Err(ApprovalError::SelfApproval { .. })
    ));
    assert!(matches!(
        cli.approve(
            &id,
            &Actor {
                name: "dave".into(),
                roles: vec!["auditor".into()]
            },
            None
        ),
        Err(ApprovalError::MissingRole { .. })
    ));
    let first = cli.approve(&id, &admin("bob"), Some("ok")).unwrap();
    assert!(!first.complete);
    assert!(matches!(
        cli.approve(&id, &admin("Bob"), None),
        Err(ApprovalError::AlreadyApproved { .. })
    ));
    // Writes from the audit writer interleave with approval transitions.
    log.append(AuditEvent::new(EventKind::System)).await.unwrap();
    let second = proxy.approve(&id, &admin("carol"), None).unwrap();
    assert!(second.complete);
    assert_eq!(second.approval.state, ApprovalState::Approved);

    // Racing releases: exactly one wins.
    let (a1, a2) = (proxy.clone(), cli.clone());
    let (id1, id2) = (id.clone(), id.clone());
    let t1 = std::thread::spawn(move || a1.consume(&id1, "d-2").unwrap());
    let t2 = std::thread::spawn(move || a2.consume(&id2, "d-3").unwrap());
    let wins = [t1.join().unwrap(), t2.join().unwrap()]
        .into_iter()
        .filter(Option::is_some)
        .count();
    assert_eq!(wins, 1);
    assert!(matches!(
        cli.reusable("alice", "ops", "run", "sha256:abc", "v1").unwrap(),
        Reusable::None
    ));
    assert!(proxy.finish(&id, true, "ok").unwrap().is_some());
    assert!(
        proxy.finish(&id, true, "ok").unwrap().is_none(),
        "an approval ends once"
    );
    assert_eq!(cli.get(&id).unwrap().unwrap().state, ApprovalState::Executed);
    assert!(matches!(
        cli.deny(&id, &admin("bob"), "late"),
        Err(ApprovalError::NotPending { .. })
    ));

    log.close();
    let reader = AuditReader::open(&path).unwrap();
    assert!(reader.verify().unwrap().ok());
    let rows = reader.query(&Default::default()).unwrap();
    let outcomes: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "approval")
        .filter_map(|r| r.outcome.as_deref())
        .collect();
    assert_eq!(outcomes, vec!["pending", "approval_recorded", "approved", "executed"]);
}

#[test]
fn expiry_and_time_outs_are_final() {
    let dir = tempfile::tempdir().unwrap();
    let store = ApprovalStore::open_sqlite(&dir.path().join("a.db")).unwrap();
    let id = ApprovalStore::new_id();
    let mut n = new(&id, "alice");
    n.expiry = Duration::from_millis(1);
    store.create(&n).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(matches!(
        store.approve(&id, &admin("bob"), None),
        Err(ApprovalError::Expired { .. })
    ));
    assert_eq!(store.get(&id).unwrap().unwrap().state, ApprovalState::Expired);
    assert!(store.expire_due().unwrap().is_empty(), "already expired");

    let held = ApprovalStore::new_id();
    store.create(&new(&held, "alice")).unwrap();
    let denied = store.time_out(&held, Duration::from_secs(1)).unwrap().unwrap();
    assert_eq!(
        (denied.state, denied.decided_by.as_deref()),
        (ApprovalState::Denied, Some("steward"))
    );
    assert!(store.time_out(&held, Duration::from_secs(1)).unwrap().is_none());
    assert!(matches!(
        store.approve("not an id!", &admin("bob"), None),
        Err(ApprovalError::InvalidInput(_))
    ));
    assert!(matches!(
        store.approve("apr-000000000000", &admin("bob"), None),
        Err(ApprovalError::NotFound(_))
    ));
}

/// An approval that names no approver roles needs `steward:approver`; a principal without roles
/// can neither approve nor deny anything (but may still withdraw its own call).
#[test]
fn approver_rules_are_never_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store = ApprovalStore::open_sqlite(&dir.path().join("audit.db")).unwrap();
    let id = ApprovalStore::new_id();
    let mut open = new(&id, "alice");
    open.required_roles = vec![];
    open.required_count = 1;
    let a = store.create(&open).unwrap();
    assert_eq!(a.required_roles, vec![steward_store::APPROVER_ROLE.to_string()]);

    let nobody = Actor {
        name: "mallory".into(),
        roles: vec![],
    };
    assert!(matches!(
        store.approve(&id, &nobody, None),
        Err(ApprovalError::MissingRole { .. })
    ));
    assert!(matches!(
        store.deny(&id, &nobody, "no"),
        Err(ApprovalError::MissingRole { .. })
    ));
    let err = store.approve(&id, &admin("bob"), None).unwrap_err().to_string();
    assert!(err.contains("steward:approver") && err.contains("only admin"), "{err}");
    let approver = Actor {
        name: "carol".into(),
        roles: vec![steward_store::APPROVER_ROLE.into()],
    };
    assert!(store.approve(&id, &approver, None).unwrap().complete);

    // The requester, role-less, withdraws its own call.
    let id = ApprovalStore::new_id();
    let mut mine = new(&id, "mallory");
    mine.required_roles = vec![];
    store.create(&mine).unwrap();
    assert_eq!(
        store.deny(&id, &nobody, "changed my mind").unwrap().state,
        ApprovalState::Cancelled
    );
}
