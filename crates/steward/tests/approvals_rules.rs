//! Who may approve: never the requester, only holders of a required role, `count` distinct
//! people, and never after expiry. Every refusal is a clear message and a non-zero exit.

mod approvals_support;

use approvals_support::{Env, approval_rows, policy, result_text, stderr, stdout};
use serde_json::json;

const SUDO: &str = "sudo systemctl restart nginx";

/// Queues one sudo call by alice and returns the pending approval's id.
fn queued(env: &Env) -> String {
    let mut proxy = env.proxy(&[]);
    proxy.call(1, "run", json!({"command": SUDO}), None);
    let (text, is_error) = result_text(&proxy.response(1));
    assert!(is_error, "{text}");
    proxy.close();
    // The id from the refusal itself: listing would already expire a short-lived approval.
    let start = text.find("apr-").unwrap_or_else(|| panic!("no approval id in: {text}"));
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

fn state(env: &Env, id: &str) -> serde_json::Value {
    env.list(None)
        .into_iter()
        .find(|a| a["id"] == json!(id))
        .expect("listed")
}

#[test]
fn the_requester_cannot_approve_their_own_call() {
    let env = Env::new(&policy(
        "{ roles: [operator, admin], count: 1 }",
        "approvals: { mode: queue }",
    ));
    let id = queued(&env);
    let out = env.approvals("approve", &id, "alice", &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("alice asked for the call") && stderr(&out).contains("cannot approve it"),
        "{}",
        stderr(&out)
    );
    // Case does not make someone else.
    let out = env.approvals("approve", &id, "ALICE", &[]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert_eq!(state(&env, &id)["state"], "pending");
}

#[test]
fn an_approver_without_the_required_role_is_refused() {
    let env = Env::new(&policy("{ roles: [admin], count: 1 }", "approvals: { mode: queue }"));
    let id = queued(&env);
    let out = env.approvals("approve", &id, "dave", &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("dave cannot approve")
            && stderr(&out).contains("role admin")
            && stderr(&out).contains("only auditor"),
        "{}",
        stderr(&out)
    );
    // Without a policy nobody's roles are known: refused, with the way out.
    let out = env.steward(&["approvals", "approve", &id, "--as", "bob", "--db", env.db()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--policy"), "{}", stderr(&out));
    // Nor may they deny it.
    let out = env.approvals("deny", &id, "dave", &["--reason", "no"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("dave cannot deny"), "{}", stderr(&out));
    assert_eq!(state(&env, &id)["state"], "pending");
}

#[test]
fn two_approvers_are_needed_when_count_is_two() {
    let env = Env::new(&policy("{ roles: [admin], count: 2 }", "approvals: { mode: queue }"));
    let id = queued(&env);

    let out = env.approvals("approve", &id, "bob", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1/2"), "{}", stdout(&out));
    let a = state(&env, &id);
    assert_eq!(a["state"], "pending", "one approval of two leaves it pending");
    assert_eq!(a["approvals"].as_array().map(Vec::len), Some(1));

    // The same approver twice is still one approver.
    let out = env.approvals("approve", &id, "bob", &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("bob has already approved") && stderr(&out).contains("1/2"),
        "{}",
        stderr(&out)
    );
    // The call does not run on one approval.
    let mut proxy = env.proxy(&[]);
    proxy.call(2, "run", json!({"command": SUDO}), None);
    assert!(result_text(&proxy.response(2)).1);
    assert!(env.executions().is_empty());

    let out = env.approvals("approve", &id, "carol", &["--reason", "second pair of eyes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("2/2"), "{}", stdout(&out));
    assert_eq!(state(&env, &id)["state"], "approved");
    proxy.call(3, "run", json!({"command": SUDO}), None);
    assert_eq!(result_text(&proxy.response(3)), (format!("ran: {SUDO}"), false));
    proxy.close();

    let rows = env.audit();
    let trail = approval_rows(&rows, &id);
    assert!(
        trail
            .iter()
            .any(|r| r["outcome"] == "approval_recorded" && r["principal"] == "bob")
    );
    let approved = trail.iter().find(|r| r["outcome"] == "approved").expect("approved row");
    assert_eq!(approved["principal"], "carol");
    assert_eq!(approved["approvers"], json!(["bob", "carol"]));
    env.verify();
}

#[test]
fn an_expired_approval_cannot_be_approved() {
    let env = Env::new(&policy(
        "{ roles: [admin], count: 1 }",
        "approvals: { mode: queue, expiry: 1s }",
    ));
    let id = queued(&env);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let out = env.approvals("approve", &id, "bob", &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("approval {id} expired")),
        "{}",
        stderr(&out)
    );
    let a = state(&env, &id);
    assert_eq!(a["state"], "expired");
    let rows = env.audit();
    assert!(
        approval_rows(&rows, &id)
            .iter()
            .any(|r| r["outcome"] == "expired" && r["principal"] == "steward")
    );
    env.verify();
}

#[test]
fn cli_refusals_are_clear() {
    let env = Env::new(&policy("{ roles: [admin], count: 1 }", "approvals: { mode: queue }"));
    let id = queued(&env);
    let out = env.approvals("approve", "apr-000000000000", "bob", &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no approval with id 'apr-000000000000'"),
        "{}",
        stderr(&out)
    );
    let out = env.steward(&[
        "approvals",
        "deny",
        &id,
        "--as",
        "bob",
        "--db",
        env.db(),
        "--policy",
        env.policy_path(),
    ]);
    assert!(!out.status.success(), "deny without --reason must fail");
    let out = env.steward(&["approvals", "list", "--db", env.db(), "--state", "maybe"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown approval state 'maybe'"),
        "{}",
        stderr(&out)
    );
    let out = env.steward(&["approvals", "list", "--db", &format!("{}.missing", env.db())]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no audit database"), "{}", stderr(&out));

    // The requester may withdraw their own call; it is then cancelled, not denied.
    let out = env.approvals("deny", &id, "alice", &["--reason", "wrong host"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(state(&env, &id)["state"], "cancelled");
    let out = env.approvals("show", &id, "bob", &[]);
    assert!(!out.status.success(), "show takes no --as");
    let out = env.steward(&["approvals", "show", &id, "--db", env.db()]);
    assert!(
        out.status.success() && stdout(&out).contains("cancelled"),
        "{}",
        stdout(&out)
    );
}
