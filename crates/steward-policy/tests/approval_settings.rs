//! The approval parts of the policy language: `approvals:` settings, the mode and hold time-out
//! on `approvers`, and `effect: ask`.

use std::time::Duration;

use serde_json::json;
use steward_policy::{APPROVER_ROLE, ApprovalMode, Call, Effect, Policy, Principal};

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
    let defaults = Policy::from_yaml("version: 1\n", "d.yaml").unwrap();
    let defaults = defaults.approval_settings();
    assert_eq!(defaults.mode, ApprovalMode::Hold);
    assert_eq!(defaults.default_approver_roles, vec![APPROVER_ROLE.to_string()]);
    assert_eq!(defaults.hold_without_progress, Duration::from_secs(20));
}

#[test]
fn approver_roles_default_to_steward_approver_and_cannot_be_empty() {
    let p = Policy::from_yaml(
        "version: 1\nroles: { lead: [] }\napprovals: { default_approver_roles: [lead, \"steward:approver\"], hold_without_progress: 15s }\n",
        "p.yaml",
    )
    .unwrap();
    let s = p.approval_settings();
    assert_eq!(
        s.default_approver_roles,
        vec!["lead".to_string(), APPROVER_ROLE.to_string()]
    );
    assert_eq!(s.hold_without_progress, Duration::from_secs(15));
    // The built-in role needs no definition and may be given to principals.
    let p = Policy::from_yaml(
        "version: 1\nprincipals: { bob: { roles: [\"steward:approver\"] } }\n",
        "p.yaml",
    )
    .unwrap();
    assert_eq!(p.principal_roles("bob"), vec![APPROVER_ROLE.to_string()]);
    let err = Policy::from_yaml("version: 1\napprovals: { default_approver_roles: [] }\n", "p.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("default_approver_roles is empty"), "{err}");
    let err = Policy::from_yaml(
        "version: 1\napprovals: { default_approver_roles: [nobody] }\n",
        "p.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("role 'nobody' which is not defined"), "{err}");
    let err = Policy::from_yaml("version: 1\napprovals: { hold_without_progress: 0s }\n", "p.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("approvals.hold_without_progress"), "{err}");
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
