//! `steward policy check/explain/test`, run as the built binary: on the shipped examples and on
//! broken policies.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn steward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("the steward binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn example(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(rel)
        .display()
        .to_string()
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn the_examples_pass_their_tests() {
    let o = steward(&[
        "policy",
        "test",
        &example("it-ops/policy.test.yaml"),
        &example("expenses/policy.test.yaml"),
    ]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("  PASS  an admin's sudo needs an admin's approval"),
        "{out}"
    );
    assert!(
        out.contains("  PASS  a manager's approval of exactly 500 needs an admin"),
        "{out}"
    );
    let summary = out.lines().last().unwrap();
    assert!(summary.ends_with("passed, 0 failed"), "{summary}");
    let passed: usize = summary.split_whitespace().next().unwrap().parse().unwrap();
    assert!(passed >= 40, "{summary}");
}

#[test]
fn the_examples_check_clean() {
    let o = steward(&[
        "policy",
        "check",
        &example("it-ops/policy.yaml"),
        &example("expenses/policy.yaml"),
    ]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert_eq!(out.matches(": ok (").count(), 2, "{out}");
    assert!(!out.contains("warning"), "{out}");
}

#[test]
fn a_failing_case_fails_the_run_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "p.yaml",
        "version: 1\nroles: { op: [ssh] }\ntools:\n  - { match: s/ssh, risk: HIGH, requires: [ssh] }\n",
    );
    let tests = write(
        dir.path(),
        "p.test.yaml",
        "policy: p.yaml\ntests:\n  - name: nobody has ssh\n    principal: bob\n    tool: s/ssh\n    args: {cmd: uptime}\n    expect: {effect: deny}\n  - name: wrong on purpose\n    principal: { id: carol, roles: [op] }\n    tool: s/ssh\n    args: {cmd: 'rm -rf /'}\n    expect: {effect: allow, risk: HIGH, flags: []}\n",
    );
    let o = steward(&["policy", "test", tests.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("  PASS  nobody has ssh"), "{out}");
    assert!(out.contains("  FAIL  wrong on purpose"), "{out}");
    assert!(out.contains("p.test.yaml:8)"), "the failing case's line: {out}");
    assert!(out.contains("effect: expected allow, got deny"), "{out}");
    assert!(out.contains("risk: expected HIGH, got CRITICAL"), "{out}");
    assert!(out.contains("flags: expected [], got [destructive-fs]"), "{out}");
    assert!(out.contains("1. principal"), "steps of the failed case: {out}");
    assert!(out.trim_end().ends_with("1 passed, 1 failed"), "{out}");
    // --policy overrides the file's policy.
    let other = write(
        dir.path(),
        "other.yaml",
        "version: 1\ndefault: allow\ndetectors: { builtin: false }\n",
    );
    let o = steward(&[
        "policy",
        "test",
        "--policy",
        other.to_str().unwrap(),
        tests.to_str().unwrap(),
    ]);
    assert!(text(&o).contains("  FAIL  nobody has ssh"), "{}", text(&o));
    drop(policy);
}

#[test]
fn a_broken_policy_or_test_file_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.yaml",
        "version: 1\nrules:\n  - id: r\n    when: 'nobody.knows'\n    effect: deny\n",
    );
    let tests = write(
        dir.path(),
        "t.yaml",
        "policy: bad.yaml\ntests:\n  - { name: x, principal: a, tool: s/t, expect: { effect: allow } }\n",
    );
    let o = steward(&["policy", "test", tests.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("bad.yaml:4:12: error: unknown variable 'nobody'"), "{out}");
    assert!(out.contains("could not run"), "{out}");
    let tests = write(
        dir.path(),
        "t2.yaml",
        "policy: bad.yaml\ntests:\n  - { name: x, principal: a, tool: s/t, expect: { efect: allow } }\n",
    );
    let o = steward(&["policy", "test", tests.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("t2.yaml:3:"), "{out}");
}

/// `policy check` rejects each kind of mistake with file:line:col and a hint.
#[test]
fn check_rejects_broken_policies_with_a_location_and_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "syntax.yaml",
            "version: 1\nrules:\n  - id: r\n    when: 'args.x ==== 1'\n    effect: deny\n",
            ":4:21: error: CEL syntax error",
        ),
        (
            "variable.yaml",
            "version: 1\nrules:\n  - id: r\n    when: 'usr.name == \"x\"'\n    effect: deny\n",
            ":4:12: error: unknown variable 'usr'",
        ),
        (
            "key.yaml",
            "version: 1\nrules:\n  - id: r\n    efect: deny\n",
            ":4:5: error: unknown field `efect`",
        ),
        (
            "never.yaml",
            "version: 1\nservers:\n  it-ops: { tools: [ssh-exec] }\nrules:\n  - id: r\n    match: it-ops/ssh-exc\n    effect: deny\n",
            ":6:12: error: rule match 'it-ops/ssh-exc' can never match",
        ),
        (
            "dup.yaml",
            "version: 1\nrules:\n  - { id: r, effect: deny }\n  - { id: r, effect: allow }\n",
            ":4:11: error: duplicate rule id 'r'",
        ),
        (
            "type.yaml",
            "version: 1\nrules:\n  - id: r\n    when: 'time.hour == \"9\"'\n    effect: deny\n",
            ":4:22: error: comparing an int with a string",
        ),
    ];
    for (name, body, expected) in cases {
        let path = write(dir.path(), name, body);
        let o = steward(&["policy", "check", path.to_str().unwrap()]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {out}");
        assert!(
            out.contains(&format!("{name}{expected}")),
            "{name}: expected {expected:?} in\n{out}"
        );
        assert!(out.contains("\n  hint: "), "{name}: no hint in\n{out}");
        assert!(out.contains(&format!("{name}: invalid")), "{name}: {out}");
    }
}

#[test]
fn explain_shows_each_step() {
    let policy = example("it-ops/policy.yaml");
    let explain = |principal: &str, args: &str| {
        steward(&[
            "policy",
            "explain",
            "--policy",
            &policy,
            "--principal",
            principal,
            "--tool",
            "it-ops/ssh-exec",
            "--args",
            args,
            "--time",
            "2026-03-03T10:00:00+01:00",
        ])
    };
    // Allowed.
    let o = explain("alice", r#"{"host":"web1","command":"uptime"}"#);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for step in [
        "1. principal",
        "classify",
        "operation",
        "detectors",
        "capabilities",
        "rule",
        "risk_effects.HIGH is approve_if_dangerous → allow",
    ] {
        assert!(out.contains(step), "{step}: {out}");
    }
    assert!(out.contains("decision:  ALLOW"), "{out}");
    // Denied.
    let o = explain("bob", r#"{"host":"web1","command":"sudo rm -rf --no-preserve-root /"}"#);
    let out = text(&o);
    assert!(out.contains("never-destroy-a-host: matches"), "{out}");
    assert!(out.contains("rules decide deny"), "{out}");
    assert!(out.contains("decision:  DENY"), "{out}");
    // Approval-bound.
    let o = explain("bob", r#"{"host":"web1","command":"sudo apt-get update"}"#);
    let out = text(&o);
    assert!(
        out.contains("'sudo': `\"privilege-escalation\" in call.flags` is true → risk CRITICAL"),
        "{out}"
    );
    assert!(out.contains("risk_effects.CRITICAL is approve → approve"), "{out}");
    assert!(
        out.contains("has approval: always; the effect is already approve"),
        "{out}"
    );
    assert!(out.contains("decision:  APPROVE"), "{out}");
    assert!(out.contains("approvers: 1 of admin"), "{out}");
}

#[test]
fn explain_json_has_the_documented_fields() {
    let o = steward(&[
        "policy",
        "explain",
        "--policy",
        &example("expenses/policy.yaml"),
        "--principal",
        "max",
        "--tool",
        "expenses/approve_expense",
        "--args",
        r#"{"id": 3, "amount": 700}"#,
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["effect"], "approve");
    assert_eq!(v["risk"], "HIGH");
    assert_eq!(v["flags"], serde_json::json!([]));
    assert_eq!(v["rules"], serde_json::json!(["large-approvals-need-an-admin"]));
    assert_eq!(v["operation"], "large");
    assert_eq!(v["approvers"]["roles"], serde_json::json!(["admin"]));
    let steps = v["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["stage"] == "operation"), "{steps:?}");
    assert!(steps.iter().all(|s| s["detail"].is_string()));
}
