//! `steward hook` fed real-shaped Claude Code hook events, with the standard tier's policy and a
//! real SQLite audit log.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// A project set up with `steward init --tier standard`.
    fn standard() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let out = steward()
            .args(["init", "--tier", "standard", "--dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        Project { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn db(&self) -> std::path::PathBuf {
        self.path().join("audit.db")
    }

    fn hook(&self, event: &Value) -> Output {
        self.hook_raw(event.to_string().as_bytes(), &[])
    }

    fn hook_raw(&self, stdin: &[u8], extra: &[&str]) -> Output {
        let mut child = steward()
            .arg("hook")
            .arg("--audit-db")
            .arg(self.db())
            .args(["--principal", "dev@example.com"])
            .args(extra)
            .env("HOME", self.path())
            .env_remove("CLAUDE_PROJECT_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    fn pre_tool_use(&self, tool: &str, input: Value) -> Value {
        json!({
            "session_id": "0f3c9a7e-5b1d-4c2a-9e8f-1a2b3c4d5e6f",
            "transcript_path": self.path().join("transcript.jsonl"),
            "cwd": self.path(),
            "permission_mode": "default",
            "hook_event_name": "PreToolUse",
            "tool_name": tool,
            "tool_input": input,
            "tool_use_id": "toolu_01ABCDEF"
        })
    }

    /// The permission decision for a Bash command.
    fn bash(&self, command: &str) -> (String, String) {
        let out = self.hook(&self.pre_tool_use("Bash", json!({"command": command, "description": "run it"})));
        decision(&out)
    }

    fn audit(&self) -> Vec<Value> {
        let out = steward()
            .args(["audit", "query", "--json", "--db"])
            .arg(self.db())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn steward() -> Command {
    Command::new(env!("CARGO_BIN_EXE_steward"))
}

fn decision(out: &Output) -> (String, String) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let h = &v["hookSpecificOutput"];
    assert_eq!(h["hookEventName"], "PreToolUse");
    (
        h["permissionDecision"].as_str().unwrap().to_string(),
        h["permissionDecisionReason"].as_str().unwrap().to_string(),
    )
}

#[test]
fn standard_tier_decides_built_in_tools() {
    let p = Project::standard();
    let (d, reason) = p.bash("rm -rf ~");
    assert_eq!(d, "deny", "{reason}");
    assert!(reason.contains("deny-destroying-the-machine"), "{reason}");
    let (d, reason) = p.bash("cat .env");
    assert_eq!(d, "deny", "{reason}");
    assert!(reason.contains("credential"), "{reason}");
    // A call the policy sends to approval is denied until another person approves it; the
    // reason names the approval and says to retry.
    let (d, reason) = p.bash("git push --force");
    assert_eq!(d, "deny", "{reason}");
    assert!(
        reason.contains("Approval apr-") && reason.contains("retry this exact call"),
        "{reason}"
    );
    let (d, _) = p.bash("ls");
    assert_eq!(d, "allow");

    let (d, _) = decision(&p.hook(&p.pre_tool_use("Read", json!({"file_path": p.path().join(".env")}))));
    assert_eq!(d, "deny");
    let (d, _) = decision(&p.hook(&p.pre_tool_use(
        "Write",
        json!({"file_path": p.path().join("run.sh"), "content": "rm -rf ~"}),
    )));
    assert_eq!(d, "allow", "file contents are data, not a command");
    let (d, _) = decision(&p.hook(&p.pre_tool_use("Grep", json!({"pattern": "rm -rf /", "path": p.path()}))));
    assert_eq!(d, "allow", "searching for a string does not run it");

    // Every decision is audited through the hook door, under server claude-code.
    let rows = p.audit();
    let decisions: Vec<&Value> = rows.iter().filter(|r| r["kind"] == "decision").collect();
    assert_eq!(decisions.len(), 7, "{rows:#?}");
    assert!(
        decisions
            .iter()
            .all(|r| r["door"] == "hook" && r["server"] == "claude-code" && r["principal"] == "dev@example.com")
    );
    let effects: Vec<&str> = decisions
        .iter()
        .take(4)
        .map(|r| r["effect"].as_str().unwrap())
        .collect();
    assert_eq!(effects, vec!["deny", "deny", "approve", "allow"]);
    let verify = steward()
        .args(["audit", "verify", "--db"])
        .arg(p.db())
        .output()
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn mcp_tools_are_decided_as_their_server() {
    let p = Project::standard();
    let (d, reason) =
        decision(&p.hook(&p.pre_tool_use("mcp__github__get_file", json!({"path": "/home/dev/.ssh/id_rsa"}))));
    assert_eq!(d, "deny", "{reason}");
    assert!(reason.contains("github/get_file"), "{reason}");
    let rows = p.audit();
    assert_eq!(rows[0]["server"], "github");
    assert_eq!(rows[0]["tool"], "get_file");
}

#[test]
fn malformed_input_denies_with_exit_2() {
    let p = Project::standard();
    for bad in [
        &b"not json"[..],
        b"[]",
        br#"{"hook_event_name":"PreToolUse","tool_input":{"command":"ls"}}"#,
        br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":"ls"}"#,
        b"",
    ] {
        let out = p.hook_raw(bad, &[]);
        assert_eq!(out.status.code(), Some(2), "input {:?}", String::from_utf8_lossy(bad));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("denied"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A broken policy fails closed too.
    std::fs::write(
        p.path().join(".claude/steward/policy.yaml"),
        "version: 1\nrules: [{effect: nope}]\n",
    )
    .unwrap();
    let out = p.hook(&p.pre_tool_use("Bash", json!({"command": "ls"})));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("policy"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn remote_decisions_fail_closed_when_the_gateway_is_unreachable() {
    let p = Project::standard();
    let event = p.pre_tool_use("Bash", json!({"command": "ls"}));
    let out = p.hook_raw(event.to_string().as_bytes(), &["--remote", "http://127.0.0.1:9/"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the gateway's decision API failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn post_tool_use_records_the_outcome_of_its_decision() {
    let p = Project::standard();
    let input = json!({"command": "ls -la", "description": "list"});
    let (d, _) = decision(&p.hook(&p.pre_tool_use("Bash", input.clone())));
    assert_eq!(d, "allow");
    let mut post = p.pre_tool_use("Bash", input);
    post["hook_event_name"] = json!("PostToolUse");
    post["tool_response"] = json!({"stdout": "total 0", "stderr": "", "interrupted": false});
    post["duration_ms"] = json!(42);
    let out = p.hook(&post);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = p.audit();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(rows[1]["kind"], "outcome");
    assert_eq!(rows[1]["outcome"], "ok");
    assert_eq!(
        rows[1]["decision_id"], rows[0]["decision_id"],
        "the outcome is linked to its decision"
    );
}

#[test]
fn session_start_reports_registry_violations_as_context() {
    let p = Project::standard();
    std::fs::write(
        p.path().join(".mcp.json"),
        r#"{"mcpServers": {"random": {"command": "npx", "args": ["-y", "random-mcp@1.0.0"]}}}"#,
    )
    .unwrap();
    let event = json!({
        "session_id": "s", "transcript_path": "/tmp/t.jsonl", "cwd": p.path(),
        "hook_event_name": "SessionStart", "source": "startup"
    });
    let out = p.hook(&event);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hookSpecificOutput"]["hookEventName"], "SessionStart");
    let ctx = v["hookSpecificOutput"]["additionalContext"].as_str().unwrap();
    assert!(ctx.contains("UNAPPROVED 'random'"), "{ctx}");

    let mut change = event.clone();
    change["hook_event_name"] = json!("ConfigChange");
    let out = p.hook(&change);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["systemMessage"].as_str().unwrap().contains("UNAPPROVED 'random'"));

    // Events Steward has no opinion on pass through.
    let out =
        p.hook(&json!({"session_id": "s", "cwd": p.path(), "hook_event_name": "UserPromptSubmit", "prompt": "hi"}));
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

#[test]
fn an_approval_through_the_hook_is_a_real_one() {
    let p = Project::standard();
    // Approvals that name no approver roles need `steward:approver`: the lead has it.
    let policy = p.path().join(".claude/steward/policy.yaml");
    let mut text = std::fs::read_to_string(&policy).unwrap();
    text.push_str("\nprincipals:\n  lead@example.com: { roles: [\"steward:approver\"] }\n");
    std::fs::write(&policy, text).unwrap();
    let push = "git push --force origin main";
    let (d, reason) = p.bash(push);
    assert_eq!(d, "deny", "{reason}");
    let id = reason
        .split_whitespace()
        .find(|w| w.starts_with("apr-"))
        .expect("the reason names the approval")
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    let approvals = |extra: &[&str]| {
        steward()
            .args(["approvals"])
            .args(extra)
            .arg("--db")
            .arg(p.db())
            .arg("--policy")
            .arg(&policy)
            .output()
            .unwrap()
    };
    let list = approvals(&["list"]);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains(&id),
        "{}",
        String::from_utf8_lossy(&list.stdout)
    );
    // Pending: the retry is still denied, and the requester cannot approve their own call.
    let (d, _) = p.bash(push);
    assert_eq!(d, "deny");
    let own = approvals(&["approve", &id, "--as", "dev@example.com"]);
    assert_ne!(own.status.code(), Some(0), "self-approval must fail");
    let other = approvals(&["approve", &id, "--as", "lead@example.com"]);
    assert_eq!(
        other.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    // Approved by another person: the identical call runs once.
    let (d, reason) = p.bash(push);
    assert_eq!(d, "allow", "{reason}");
    assert!(reason.contains(&id), "{reason}");
    let (d, _) = p.bash(push);
    assert_eq!(d, "deny", "a grant is used once");
}

#[test]
fn tools_of_servers_the_registry_does_not_approve_are_denied() {
    let p = Project::standard();
    let registry =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/mcp-registry.yaml")).unwrap();
    std::fs::write(p.path().join(".claude/steward/registry.yaml"), registry).unwrap();
    let call = |tool: &str| decision(&p.hook(&p.pre_tool_use(tool, json!({"query": "x"}))));
    let (d, reason) = call("mcp__github__search_issues");
    assert_eq!(d, "allow", "{reason}");
    for (tool, status) in [
        ("mcp__slack__post", "pending"),
        ("mcp__puppeteer__navigate", "denied"),
        ("mcp__nobody__anything", "unlisted"),
    ] {
        let (d, reason) = call(tool);
        assert_eq!(d, "deny", "{status}: {reason}");
        assert!(reason.contains("deny-unapproved-mcp-servers"), "{reason}");
    }
}
