//! Queue mode: the client is refused at once with the approval id; after approval, one call with
//! identical arguments by the same principal runs, once.

mod approvals_support;

use approvals_support::{Env, approval_rows, policy, result_text, stderr};
use serde_json::json;

const SUDO: &str = "sudo systemctl restart nginx";

fn approval_id_in(text: &str) -> String {
    let start = text.find("apr-").unwrap_or_else(|| panic!("no approval id in: {text}"));
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

#[test]
fn an_approved_call_runs_exactly_once_on_an_identical_retry() {
    let env = Env::new(&policy("{ roles: [admin], count: 1, mode: queue }", ""));
    let mut proxy = env.proxy(&[]);

    proxy.call(1, "run", json!({"command": SUDO, "host": "web1"}), None);
    let (text, is_error) = result_text(&proxy.response(1));
    assert!(is_error, "{text}");
    assert!(
        text.contains("retry this exact call with identical arguments"),
        "the refusal says how to retry: {text}"
    );
    let id = approval_id_in(&text);

    // Asking again before approval reuses the pending approval: approvers see one request.
    proxy.call(2, "run", json!({"host": "web1", "command": SUDO}), None);
    let (text, is_error) = result_text(&proxy.response(2));
    assert!(is_error && approval_id_in(&text) == id, "{text}");
    assert_eq!(env.list(Some("pending")).len(), 1);
    assert!(env.executions().is_empty());

    let out = env.approvals("approve", &id, "bob", &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Identical arguments (key order does not matter: the digest is of canonical JSON): runs once.
    proxy.call(3, "run", json!({"host": "web1", "command": SUDO}), None);
    assert_eq!(result_text(&proxy.response(3)), (format!("ran: {SUDO}"), false));
    // A second retry is refused: the grant was used.
    proxy.call(4, "run", json!({"command": SUDO, "host": "web1"}), None);
    let (text, is_error) = result_text(&proxy.response(4));
    assert!(is_error, "a second retry must not run: {text}");
    assert_ne!(
        approval_id_in(&text),
        id,
        "the second retry needs an approval of its own"
    );
    // Changed arguments do not match the approval.
    proxy.call(5, "run", json!({"command": "sudo reboot", "host": "web1"}), None);
    let (text, is_error) = result_text(&proxy.response(5));
    assert!(is_error, "changed arguments must not run: {text}");
    proxy.close();

    assert_eq!(
        env.executions(),
        vec![SUDO.to_string()],
        "the approved call ran exactly once"
    );
    let rows = env.audit();
    let trail = approval_rows(&rows, &id);
    let granted = trail
        .iter()
        .find(|r| r["kind"] == "decision" && r["detail"]["approval"]["use"] == "grant")
        .expect("the retry's decision names the grant");
    assert_eq!(granted["principal"], "alice");
    assert!(
        trail
            .iter()
            .any(|r| r["kind"] == "approval" && r["outcome"] == "executed")
    );
    let first = env
        .list(None)
        .into_iter()
        .find(|a| a["id"] == json!(id))
        .expect("listed");
    assert_eq!(first["state"], "executed");
    assert_eq!(first["mode"], "queue");
    env.verify();
}

#[test]
fn a_grant_is_bound_to_the_principal() {
    let env = Env::new(&policy("{ roles: [admin], count: 1 }", "approvals: { mode: queue }"));
    let mut proxy = env.proxy(&[]);
    proxy.call(1, "run", json!({"command": SUDO}), None);
    let id = approval_id_in(&result_text(&proxy.response(1)).0);
    proxy.close();
    assert!(env.approvals("approve", &id, "bob", &[]).status.success());

    // Someone else with the identical call does not get alice's grant.
    let mut cmd = std::process::Command::new(approvals_support::STEWARD);
    cmd.args([
        "proxy",
        "--policy",
        env.policy_path(),
        "--server",
        "ops",
        "--principal",
        "carol",
        "--audit-db",
        env.db(),
        "--",
        "python3",
    ])
    .arg(approvals_support::fixture())
    .env("OPS_LOG", &env.log)
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{}", json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "run", "arguments": {"command": SUDO}}})).expect("write");
    }
    let out = child.wait_with_output().expect("proxy output");
    let answer: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap_or_default()).expect("a response");
    let (text, is_error) = result_text(&answer);
    assert!(
        is_error && !text.contains(&id),
        "carol must not use alice's grant: {text}"
    );
    assert!(env.executions().is_empty());
}
