//! Hold mode through `steward proxy`: a CRITICAL call waits for a human who acts from another
//! process; approval returns the upstream's real result, denial and time-out an error result.

mod approvals_support;

use approvals_support::{Env, approval_rows, policy, result_text, stderr, stdout};
use serde_json::json;

const SUDO: &str = "sudo systemctl restart nginx";

fn admin_hold(extra: &str) -> Env {
    Env::new(&policy("{ roles: [admin], count: 1 }", extra))
}

#[test]
fn a_held_call_runs_once_approved_out_of_band() {
    let env = admin_hold("approvals: { mode: hold, hold_timeout: 2m }");
    let mut proxy = env.proxy(&[]);
    proxy.call(1, "run", json!({"command": SUDO}), Some("tok-1"));
    let id = env.wait_pending();

    // The held call does not block other traffic.
    proxy.call(2, "echo", json!({"message": "still here"}), None);
    let echo = proxy.response(2);
    assert_eq!(result_text(&echo), ("echo: still here".to_string(), false));
    assert!(
        proxy.try_response(1).is_none(),
        "the held call was answered before anyone approved it"
    );
    assert!(env.executions().is_empty(), "the held call ran before approval");

    let listed = env.list(Some("pending"));
    assert_eq!(listed.len(), 1);
    let a = &listed[0];
    assert_eq!(
        (
            a["principal"].as_str(),
            a["server"].as_str(),
            a["tool"].as_str(),
            a["risk"].as_str()
        ),
        (Some("alice"), Some("ops"), Some("run"), Some("CRITICAL"))
    );
    assert_eq!(a["args"]["command"], SUDO);
    assert!(a["args_digest"].as_str().is_some_and(|d| d.starts_with("sha256:")));
    assert_eq!(a["required_roles"], json!(["admin"]));

    let out = env.approvals("approve", &id, "bob", &["--reason", "maintenance window"]);
    assert!(out.status.success(), "approve failed: {}", stderr(&out));
    assert!(stdout(&out).contains(&format!("approved {id}")), "{}", stdout(&out));

    let answer = proxy.response(1);
    assert_eq!(result_text(&answer), (format!("ran: {SUDO}"), false), "{answer}");
    assert_eq!(env.executions(), vec![SUDO.to_string()]);
    let progress: Vec<_> = proxy
        .notes
        .iter()
        .filter(|n| n["method"] == "notifications/progress")
        .collect();
    assert!(
        !progress.is_empty(),
        "no progress notification while held: {:?}",
        proxy.notes
    );
    assert_eq!(progress[0]["params"]["progressToken"], "tok-1");
    assert!(
        progress[0]["params"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&id))
    );
    proxy.close();

    // request → pending → approved → executed, with actors and times.
    let rows = env.audit();
    let trail = approval_rows(&rows, &id);
    let step = |r: &serde_json::Value| {
        let what = if r["kind"] == "decision" {
            &r["effect"]
        } else {
            &r["outcome"]
        };
        (
            r["kind"].as_str().unwrap_or("").to_string(),
            what.as_str().unwrap_or("").to_string(),
            r["principal"].as_str().unwrap_or("").to_string(),
        )
    };
    let steps: Vec<(String, String, String)> = trail.iter().map(|r| step(r)).filter(|s| s.0 != "outcome").collect();
    let want: Vec<(String, String, String)> = [
        ("decision", "approve", "alice"),
        ("approval", "pending", "alice"),
        ("approval", "approved", "bob"),
        ("approval", "executed", "alice"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(steps, want, "unexpected audit trail");
    assert!(
        trail.iter().any(|r| r["kind"] == "outcome" && r["outcome"] == "ok"),
        "the outcome row names the approval"
    );
    // The outcome row is stamped when queued by another writer: only the causal chain is ordered.
    let ts: Vec<&str> = trail
        .iter()
        .filter(|r| r["kind"] != "outcome")
        .map(|r| r["ts"].as_str().unwrap_or(""))
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "audit times out of order: {ts:?}");
    let approved = trail.iter().find(|r| r["outcome"] == "approved").expect("approved row");
    assert_eq!(approved["approvers"], json!(["bob"]));
    assert!(
        approved["reason"]
            .as_str()
            .is_some_and(|r| r.contains("maintenance window"))
    );
    env.verify();
    assert_eq!(env.list(None)[0]["state"], "executed");
}

#[test]
fn a_denied_call_gets_an_error_result_with_the_reason() {
    let env = admin_hold("approvals: { hold_timeout: 2m }");
    let mut proxy = env.proxy(&[]);
    proxy.call(7, "run", json!({"command": SUDO}), None);
    let id = env.wait_pending();
    let out = env.approvals("deny", &id, "bob", &["--reason", "not during the change freeze"]);
    assert!(out.status.success(), "deny failed: {}", stderr(&out));

    let (text, is_error) = result_text(&proxy.response(7));
    assert!(is_error, "a denied call must be an error result: {text}");
    assert!(
        text.contains(&id) && text.contains("denied by bob") && text.contains("not during the change freeze"),
        "{text}"
    );
    assert!(env.executions().is_empty());
    proxy.close();

    let rows = env.audit();
    let denied = approval_rows(&rows, &id)
        .into_iter()
        .find(|r| r["outcome"] == "denied")
        .expect("a denied audit row");
    assert_eq!(denied["principal"], "bob");
    env.verify();
    // A decided approval cannot be approved any more.
    let late = env.approvals("approve", &id, "carol", &[]);
    assert!(!late.status.success());
    assert!(stderr(&late).contains("is denied"), "{}", stderr(&late));
}

#[test]
fn a_hold_time_out_is_a_denial_and_is_audited() {
    let env = admin_hold("approvals: { mode: hold, hold_timeout: 1s }");
    let mut proxy = env.proxy(&[]);
    proxy.call(3, "run", json!({"command": SUDO}), Some(42.to_string().as_str()));
    let (text, is_error) = result_text(&proxy.response(3));
    assert!(is_error, "{text}");
    assert!(text.contains("timed out") && text.contains("apr-"), "{text}");
    assert!(env.executions().is_empty());
    proxy.close();

    let a = &env.list(None)[0];
    assert_eq!(a["state"], "denied");
    assert_eq!(a["decided_by"], "steward");
    let id = a["id"].as_str().unwrap_or_default();
    let rows = env.audit();
    assert!(
        approval_rows(&rows, id)
            .iter()
            .any(|r| r["outcome"] == "timed_out" && r["principal"] == "steward"),
        "no time-out row"
    );
    env.verify();
}

#[test]
fn a_lost_client_leaves_the_approval_pending_and_approval_grants_one_retry() {
    let env = admin_hold("approvals: { mode: hold, hold_timeout: 2m }");
    let mut proxy = env.proxy(&[]);
    proxy.call(1, "run", json!({"command": SUDO}), None);
    let id = env.wait_pending();
    proxy.close();
    assert_eq!(
        env.list(Some("pending")).len(),
        1,
        "the approval must survive its client"
    );

    let out = env.approvals("approve", &id, "bob", &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    // A new proxy process: the grant survived the restart and runs the identical call once.
    let mut proxy = env.proxy(&[]);
    proxy.call(1, "run", json!({"command": SUDO}), None);
    assert_eq!(result_text(&proxy.response(1)), (format!("ran: {SUDO}"), false));
    proxy.close();
    assert_eq!(env.executions().len(), 1);
    assert_eq!(env.list(None)[0]["state"], "executed");
    env.verify();
}

#[test]
fn a_cancelled_hold_leaves_the_approval_for_a_retry() {
    let env = admin_hold("approvals: { mode: hold, hold_timeout: 2m }");
    let mut proxy = env.proxy(&[]);
    proxy.call(1, "run", json!({"command": SUDO}), None);
    let id = env.wait_pending();
    proxy.send(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1, "reason": "user pressed stop"}}));
    // The client loop handles messages in order: once this is answered, the hold is gone.
    proxy.call(2, "echo", json!({"message": "after cancel"}), None);
    proxy.response(2);
    assert!(env.approvals("approve", &id, "bob", &[]).status.success());

    proxy.call(3, "run", json!({"command": SUDO}), None);
    assert_eq!(
        result_text(&proxy.response(3)),
        (format!("ran: {SUDO}"), false),
        "the retry runs on the grant"
    );
    assert!(
        proxy.notes.iter().all(|n| n.get("id") != Some(&json!(1))),
        "a cancelled request gets no answer"
    );
    proxy.close();
    assert_eq!(env.executions().len(), 1);
}

#[test]
fn a_client_without_progress_gets_a_queue_style_answer_after_hold_without_progress() {
    let env = admin_hold("approvals: { mode: hold, hold_timeout: 2m, hold_without_progress: 1s }");
    let mut proxy = env.proxy(&[]);
    let started = std::time::Instant::now();
    proxy.call(1, "run", json!({"command": SUDO}), None);
    let (text, is_error) = result_text(&proxy.response(1));
    let waited = started.elapsed();
    assert!(is_error, "{text}");
    assert!(text.contains("still pending") && text.contains("apr-"), "{text}");
    assert!(
        waited >= std::time::Duration::from_millis(900) && waited < std::time::Duration::from_secs(20),
        "answered after {waited:?}, not after the configured 1s"
    );
    // The approval stays: approved, the identical retry runs once.
    let id = env.wait_pending();
    assert!(env.approvals("approve", &id, "bob", &[]).status.success());
    proxy.call(2, "run", json!({"command": SUDO}), None);
    assert_eq!(result_text(&proxy.response(2)), (format!("ran: {SUDO}"), false));
    proxy.close();
    assert_eq!(env.executions().len(), 1);
}
