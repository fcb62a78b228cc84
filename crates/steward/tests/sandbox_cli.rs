//! The sandbox from the command line: `steward proxy --sandbox` flags and `steward doctor`'s
//! sandbox finding (docs/sandbox.md).

use std::process::{Command, Stdio};

fn steward() -> Command {
    Command::new(env!("CARGO_BIN_EXE_steward"))
}

const REGISTRY: &str = r#"approved:
  - name: files
    version: "2026.8.31"
    approved_by: sec
    expires: 2099-12-31
    data_scope: INTERNAL
    risk: HIGH
    rationale: project files
    sandbox: required
    config:
      command: node
      args: [server.js]
      sandbox: {profile: node, read: [./docs]}
"#;

#[test]
fn doctor_says_whether_this_machine_enforces_required_sandboxes() {
    let dir = tempfile::tempdir().unwrap();
    let out = steward()
        .args(["init", "--tier", "standard", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doctor = |env: Option<&str>| {
        let mut cmd = steward();
        cmd.arg("doctor").arg(dir.path());
        if let Some(v) = env {
            cmd.env("STEWARD_SANDBOX_UNAVAILABLE", v);
        }
        String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned()
    };
    assert!(!doctor(None).contains("sandbox"), "no entry requires one: no finding");
    std::fs::write(dir.path().join(".claude/steward/registry.yaml"), REGISTRY).unwrap();
    let text = doctor(None);
    let line = text.lines().find(|l| l.contains(" sandbox ")).unwrap_or_default();
    assert!(line.starts_with("PASS") && line.contains("files"), "{text}");
    let text = doctor(Some("landlock"));
    let line = text.lines().find(|l| l.contains(" sandbox ")).unwrap_or_default();
    assert!(line.starts_with("FAIL") && line.contains("landlock"), "{text}");
}

#[test]
fn proxy_sandbox_flags_are_checked() {
    let run = |args: &[&str]| {
        let out = steward().arg("proxy").args(args).stdin(Stdio::null()).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&["--allow-read", "/tmp", "--", "true"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--sandbox"), "{err}");
    let (code, err) = run(&["--sandbox", "deno", "--", "true"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("unknown sandbox profile 'deno'"), "{err}");
    let (code, err) = run(&["--sandbox", "node", "--allow-net", "github.com", "--", "true"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("HOST:PORT"), "{err}");
    let (code, err) = run(&["--sandbox", "minimal", "--allow-read", "/surely/not/here", "--", "true"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("does not exist"), "{err}");
}
