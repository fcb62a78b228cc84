//! The approval parts of the policy language: `approvals:` settings, the mode and hold time-out
//! on `approvers`, and `effect: ask`.

use std::time::Duration;

use serde_json::json;
use steward_policy::{ApprovalMode, Call, Effect, Policy, Principal};

const POLICY: &str = r#"version: 1
default: allow
roles:
  admin: [ops]
approvals:
  mode: queue
  hold_timeout: 90s
  grant_window: 10m
  expiry: 2h
tools:
  - match: ops/run
    risk: MEDIUM
    operations:
      - name: sudo
        when: '"privilege-escalation" in call.flags'
        risk: CRITICAL
        approval: always
        approvers: { roles: [admin], count: 2, mode: hold, hold_timeout: 30s }
  - match: ops/deploy
    risk: HIGH
  - match: ops/echo
    risk: LOW
rules:
  - id: ask-echo
    match: ops/echo
    effect: ask
    approvers: { roles: [admin] }
  - id: ask-deploy
    match: ops/deploy
    effect: ask
  - id: ask-run
    match: ops/run
    effect: ask
"#;

fn decide(policy: &Policy, tool: &str, args: serde_json::Value) -> steward_policy::Decision {
    let alice = Principal::new("alice", "test");
    policy.decide(&Call::tool_call(&alice, "ops", tool, &args))
}

#[test]
fn approvals_settings_are_read() {
    let p = Policy::from_yaml(POLICY, "p.yaml").unwrap();
    let s = p.approval_settings();
    assert_eq!(s.mode, ApprovalMode::Queue);
    assert_eq!(
        (s.hold_timeout, s.grant_window, s.expiry),
        (
            Duration::from_secs(90),
            Duration::from_secs(600),
            Duration::from_secs(7200)
        )
    );
    let defaults = Policy::from_yaml("version: 1\n", "d.yaml").unwrap().approval_settings();
    assert_eq!(defaults.mode, ApprovalMode::Hold);
}

#[test]
fn approvers_carry_mode_and_hold_timeout() {
    let p = Policy::from_yaml(POLICY, "p.yaml").unwrap();
    let d = decide(&p, "run", json!({"command": "sudo systemctl restart nginx"}));
    assert_eq!(d.effect, Effect::Approve);
    let a = d.approvers.unwrap();
    assert_eq!(
        (a.count, a.mode, a.hold_timeout),
        (2, Some(ApprovalMode::Hold), Some(Duration::from_secs(30)))
    );
}

#[test]
fn ask_is_for_low_and_medium_risk_only() {
    let p = Policy::from_yaml(POLICY, "p.yaml").unwrap();
    let d = decide(&p, "echo", json!({"message": "hi"}));
    assert_eq!(d.effect, Effect::Ask);
    assert_eq!(
        d.approvers.map(|a| a.roles),
        Some(vec!["admin".to_string()]),
        "approvers apply if it becomes approve"
    );
    let d = decide(&p, "deploy", json!({}));
    assert_eq!(d.effect, Effect::Approve);
    assert!(
        d.reason().contains("ask is never accepted for HIGH calls"),
        "{}",
        d.reason()
    );
    // A required approval is never replaced by the user's confirmation.
    let d = decide(&p, "run", json!({"command": "sudo reboot"}));
    assert_eq!(d.effect, Effect::Approve);
    let d = decide(&p, "run", json!({"command": "uptime"}));
    assert_eq!(d.effect, Effect::Ask);
    assert_eq!("ask".parse::<Effect>(), Ok(Effect::Ask));
}

#[test]
fn bad_durations_point_at_the_line() {
    let err = Policy::from_yaml("version: 1\napprovals:\n  hold_timeout: soon\n", "p.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("approvals.hold_timeout") && err.contains("p.yaml:3"),
        "{err}"
    );
    let err = Policy::from_yaml("version: 1\napprovals: { expiry: 0s }\n", "p.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("approvals.expiry"), "{err}");
    let err = Policy::from_yaml("version: 1\napprovals: { mode: later }\n", "p.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("later"), "{err}");
}
