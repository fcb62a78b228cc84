//! `effect: ask`: a low-risk call the user confirms through their own client's elicitation;
//! without that capability it needs an approver instead, and it never applies to HIGH or
//! CRITICAL calls.

mod approvals_support;

use approvals_support::{Env, Proxy, result_text};
use serde_json::{Value, json};

fn ask_policy() -> String {
    r#"version: 1
default: allow
principals:
  alice: { roles: [] }
tools:
  - match: ops/echo
    risk: LOW
  - match: ops/run
    risk: HIGH
rules:
  - id: confirm-echo
    match: ops/echo
    effect: ask
    reason: echoing needs the user's OK
  - id: confirm-run
    match: ops/run
    effect: ask
    reason: running needs the user's OK
approvals: { mode: queue }
"#
    .to_string()
}

/// Waits for Steward's elicitation request and answers it with `result`.
fn answer_elicitation(proxy: &mut Proxy, result: Value) -> Value {
    loop {
        let m = proxy.next("an elicitation/create request");
        if m["method"] == "elicitation/create" {
            let id = m["id"].clone();
            assert!(id.as_str().is_some_and(|s| s.starts_with("steward-")), "{m}");
            proxy.send(json!({"jsonrpc": "2.0", "id": id, "result": result}));
            return m;
        }
        proxy.notes.push(m);
    }
}

#[test]
fn the_user_confirms_a_low_risk_call_through_elicitation() {
    let env = Env::new(&ask_policy());
    let mut proxy = env.proxy_with(&[], json!({"elicitation": {}}));

    proxy.call(1, "echo", json!({"message": "hi"}), None);
    let request = answer_elicitation(&mut proxy, json!({"action": "accept", "content": {"confirm": true}}));
    let message = request["params"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("ops/echo") && message.contains("echoing needs the user's OK"),
        "{message}"
    );
    assert_eq!(
        request["params"]["requestedSchema"]["properties"]["confirm"]["type"],
        "boolean"
    );
    assert_eq!(result_text(&proxy.response(1)), ("echo: hi".to_string(), false));

    proxy.call(2, "echo", json!({"message": "again"}), None);
    answer_elicitation(&mut proxy, json!({"action": "decline"}));
    let (text, is_error) = result_text(&proxy.response(2));
    assert!(is_error && text.contains("did not confirm"), "{text}");
    proxy.close();

    let rows = env.audit();
    let answers: Vec<&str> = rows
        .iter()
        .filter(|r| r["kind"] == "approval")
        .filter_map(|r| r["outcome"].as_str())
        .collect();
    assert_eq!(answers, vec!["confirmed", "declined"]);
    assert!(rows.iter().any(|r| r["kind"] == "decision" && r["effect"] == "ask"));
    assert!(env.list(None).is_empty(), "confirmed calls need no approver");
    env.verify();
}

#[test]
fn without_elicitation_ask_becomes_approve() {
    let env = Env::new(&ask_policy());
    let mut proxy = env.proxy(&[]);
    proxy.call(1, "echo", json!({"message": "hi"}), None);
    let (text, is_error) = result_text(&proxy.response(1));
    assert!(is_error && text.contains("apr-"), "{text}");
    assert!(
        proxy.notes.iter().all(|n| n["method"] != "elicitation/create"),
        "a client without the capability is never asked"
    );
    proxy.close();
    assert_eq!(env.list(Some("pending")).len(), 1);
}

#[test]
fn ask_is_never_accepted_for_a_high_risk_call() {
    let env = Env::new(&ask_policy());
    let mut proxy = env.proxy_with(&[], json!({"elicitation": {}}));
    proxy.call(1, "run", json!({"command": "uptime"}), None);
    let (text, is_error) = result_text(&proxy.response(1));
    assert!(
        is_error && text.contains("apr-"),
        "a HIGH call waits for an approver: {text}"
    );
    assert!(
        proxy.notes.iter().all(|n| n["method"] != "elicitation/create"),
        "the user is not asked"
    );
    proxy.close();
    let a = &env.list(Some("pending"))[0];
    assert!(
        a["reasons"]
            .to_string()
            .contains("ask is never accepted for HIGH calls"),
        "{a}"
    );
    assert!(env.executions().is_empty());
}
