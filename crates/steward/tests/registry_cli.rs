//! `steward registry check|lint|export`, `steward init` and `steward doctor` against fixture
//! home, project and system directories (tests/fixtures/clients), run as the built binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn steward() -> Command {
    Command::new(env!("CARGO_BIN_EXE_steward"))
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/clients")
}

fn check(dir: &str, format: &str) -> Output {
    let f = fixtures();
    let root = f.join(dir);
    steward()
        .args(["registry", "check", "--format", format])
        .arg("--registry")
        .arg(f.join("registry.yaml"))
        .arg("--home")
        .arg(root.join("home"))
        .arg("--project")
        .arg(root.join("project"))
        .arg("--system-root")
        .arg(root.join("system"))
        .output()
        .unwrap()
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn every_client_format_is_found_and_classified() {
    let out = check(".", "json");
    assert_eq!(
        out.status.code(),
        Some(1),
        "violations exit 1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = stdout_json(&out);
    let results = results.as_array().unwrap();
    let expected: &[(&str, &str, &str, &str, &str)] = &[
        // client, scope, config file (suffix), server, status
        ("claude-code", "user", ".claude.json", "github", "APPROVED"),
        ("claude-code", "user", ".claude.json", "gh-old", "DRIFT"),
        ("claude-code", "local", ".claude.json", "clock", "APPROVED"),
        ("claude-code", "project", ".mcp.json", "wrapped-time", "APPROVED"),
        ("claude-code", "project", ".mcp.json", "wrapped-drift", "DRIFT"),
        ("claude-code", "project", ".mcp.json", "unpinned-everything", "DRIFT"),
        (
            "claude-code",
            "managed",
            "etc/claude-code/managed-mcp.json",
            "github",
            "APPROVED",
        ),
        (
            "claude-desktop",
            "user",
            "Claude/claude_desktop_config.json",
            "browser",
            "DENIED",
        ),
        (
            "claude-desktop",
            "user",
            "Claude/claude_desktop_config.json",
            "filesystem-root",
            "DENIED",
        ),
        ("cursor", "user", ".cursor/mcp.json", "random-server", "UNAPPROVED"),
        ("cursor", "project", ".cursor/mcp.json", "team-tool", "UNAPPROVED"),
        ("vscode", "project", ".vscode/mcp.json", "github", "APPROVED"),
        ("vscode", "user", "Code/User/mcp.json", "legacy-db", "EXPIRED"),
        ("vscode", "user", "Code/User/settings.json", "slack", "PENDING"),
        ("windsurf", "user", "windsurf/mcp_config.json", "docs", "APPROVED"),
        (
            "windsurf",
            "user",
            "windsurf/mcp_config.json",
            "other-remote",
            "UNAPPROVED",
        ),
        ("gemini-cli", "user", ".gemini/settings.json", "everything", "APPROVED"),
        (
            "gemini-cli",
            "project",
            ".gemini/settings.json",
            "slack-pending",
            "PENDING",
        ),
        (
            "gemini-cli",
            "system",
            "etc/gemini-cli/settings.json",
            "gw-everything",
            "APPROVED",
        ),
        (
            "gemini-cli",
            "system",
            "etc/gemini-cli/settings.json",
            "gw-legacy",
            "EXPIRED",
        ),
        ("codex", "user", ".codex/config.toml", "github", "APPROVED"),
        ("codex", "user", ".codex/config.toml", "time", "DRIFT"),
        ("codex", "project", ".codex/config.toml", "docs-remote", "APPROVED"),
    ];
    for (client, scope, file, server, status) in expected {
        let hit = results.iter().find(|r| {
            r["client"] == *client
                && r["scope"] == *scope
                && r["server"] == *server
                && r["config_path"].as_str().unwrap().ends_with(file)
        });
        let hit = hit.unwrap_or_else(|| panic!("{client} {scope} {server} in {file} not found in {results:#?}"));
        assert_eq!(hit["status"], *status, "{client} {server}: {hit:#}");
        assert!(hit["detail"].as_str().is_some_and(|d| !d.is_empty()), "{hit:#}");
    }
    assert_eq!(results.len(), expected.len(), "no other servers: {results:#?}");
    // The disabled .mcp.json server is not reported, and the proxy-wrapped ones say so.
    assert!(!results.iter().any(|r| r["server"] == "disabled-one"));
    let wrapped = results.iter().find(|r| r["server"] == "wrapped-time").unwrap();
    assert_eq!(wrapped["registry_entry"], "time");
    assert_eq!(wrapped["via"], "steward proxy");
    let drift = results.iter().find(|r| r["server"] == "wrapped-drift").unwrap();
    assert_eq!(drift["registry_entry"], "github", "named by --server");
}

#[test]
fn table_and_sarif_outputs() {
    let out = check(".", "table");
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    for word in ["APPROVED", "UNAPPROVED", "DENIED", "EXPIRED", "PENDING", "DRIFT"] {
        assert!(table.contains(word), "{word} missing from:\n{table}");
    }
    assert!(
        table.contains("23 server(s)") && table.contains("13 violation(s)"),
        "{table}"
    );

    let out = check(".", "sarif");
    assert_eq!(out.status.code(), Some(1));
    let sarif = stdout_json(&out);
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "steward");
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 13, "one result per violation");
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for r in results {
        let id = r["ruleId"].as_str().unwrap();
        assert_eq!(rules[r["ruleIndex"].as_u64().unwrap() as usize], id);
        assert!(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].is_string());
    }
    let team = results
        .iter()
        .find(|r| r["properties"]["server"] == "team-tool")
        .unwrap();
    assert_eq!(team["ruleId"], "mcp-server-unapproved");
    assert_eq!(
        team["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        ".cursor/mcp.json"
    );
    assert_eq!(
        team["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"],
        "PROJECTROOT"
    );
    assert_eq!(team["locations"][0]["physicalLocation"]["region"]["startLine"], 1);
}

#[test]
fn clean_machine_exits_zero() {
    let out = check("clean", "json");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let results = stdout_json(&out);
    let statuses: Vec<&str> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["APPROVED", "APPROVED"]);
}

#[test]
fn malformed_configs_are_findings_not_crashes() {
    let out = check("malformed", "json");
    assert_eq!(out.status.code(), Some(1));
    let results = stdout_json(&out);
    let results = results.as_array().unwrap();
    let errors: Vec<&Value> = results.iter().filter(|r| r["kind"] == "config-error").collect();
    assert_eq!(errors.len(), 2, "{results:#?}");
    assert!(
        errors
            .iter()
            .any(|e| e["client"] == "cursor" && e["detail"].as_str().unwrap().contains("not valid JSON"))
    );
    assert!(
        errors
            .iter()
            .any(|e| e["client"] == "codex" && e["detail"].as_str().unwrap().contains("not valid TOML"))
    );
    assert!(
        results
            .iter()
            .any(|r| r["server"] == "github" && r["status"] == "APPROVED")
    );
}

#[test]
fn missing_registry_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = steward()
        .args(["registry", "check", "--registry"])
        .arg(dir.path().join("nope.yaml"))
        .arg("--home")
        .arg(dir.path())
        .arg("--project")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope.yaml") && err.contains("does not exist"), "{err}");

    let out = steward()
        .args(["registry", "check", "--home"])
        .arg(dir.path())
        .arg("--project")
        .arg(dir.path())
        .env_remove("STEWARD_REGISTRY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--registry"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn lint_prints_locations_and_fails_on_errors() {
    let ok = steward()
        .args(["registry", "lint"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mcp-registry.yaml"))
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("3 approved"));

    let out = steward()
        .args(["registry", "lint"])
        .arg(fixtures().join("registry.yaml"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the fixture registry has an expired approval"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("registry.yaml:46:14: error: approval of 'legacy-db' expired on 2020-01-01"),
        "{err}"
    );
}

#[test]
fn export_claude_managed_writes_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = steward()
        .args(["registry", "export", "claude-managed", "--registry"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mcp-registry.yaml"))
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let settings: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("managed-settings.json")).unwrap()).unwrap();
    let mcp: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("managed-mcp.json")).unwrap()).unwrap();
    let allowed = settings["allowedMcpServers"].as_array().unwrap();
    assert_eq!(allowed.len(), 3);
    assert_eq!(
        allowed[1]["serverCommand"],
        serde_json::json!([
            "steward",
            "proxy",
            "--server",
            "time",
            "--",
            "uvx",
            "mcp-server-time==2026.10.19"
        ])
    );
    assert!(
        settings["deniedMcpServers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["serverName"] == "puppeteer")
    );
    assert_eq!(
        mcp["mcpServers"]["time"]["args"],
        serde_json::json!(["proxy", "--server", "time", "--", "uvx", "mcp-server-time==2026.10.19"])
    );

    // The exported managed-mcp.json passes the check it was made from.
    let sys = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(sys.path().join("etc/claude-code")).unwrap();
    std::fs::copy(
        dir.path().join("managed-mcp.json"),
        sys.path().join("etc/claude-code/managed-mcp.json"),
    )
    .unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = steward()
        .args(["registry", "check", "--format", "json", "--registry"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mcp-registry.yaml"))
        .arg("--home")
        .arg(empty.path())
        .arg("--project")
        .arg(empty.path())
        .arg("--system-root")
        .arg(sys.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(stdout_json(&out).as_array().unwrap().len(), 3);

    let gw = steward()
        .args([
            "registry",
            "export",
            "claude-managed",
            "--gateway",
            "http://gw.internal:8080",
            "--registry",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mcp-registry.yaml"))
        .output()
        .unwrap();
    assert_eq!(gw.status.code(), Some(0));
    let both = stdout_json(&gw);
    assert_eq!(
        both["managed-mcp.json"]["mcpServers"]["github"]["url"],
        "http://gw.internal:8080/mcp/github"
    );
    assert_eq!(
        both["managed-settings.json"]["allowedMcpServers"][0]["serverUrl"],
        "http://gw.internal:8080/mcp/github"
    );
}

/// PATH with the built binary's directory first, as an installed `steward` would be.
fn path_with_steward() -> std::ffi::OsString {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_steward")).parent().unwrap().to_path_buf();
    let mut dirs = vec![bin_dir];
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(dirs).unwrap()
}

#[test]
fn init_strict_then_doctor_passes_and_removing_deny_rules_fails_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = steward()
        .args(["init", "--tier", "strict", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    for f in [
        ".claude/settings.json",
        ".claude/steward/registry.yaml",
        ".claude/steward/policy.yaml",
        "CLAUDE.md",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} written");
    }
    let settings: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(".claude/settings.json")).unwrap()).unwrap();
    assert_eq!(settings["permissions"]["disableBypassPermissionsMode"], "disable");
    for event in ["PreToolUse", "PostToolUse", "SessionStart", "ConfigChange"] {
        assert_eq!(
            settings["hooks"][event][0]["hooks"][0]["command"], "steward hook",
            "{event}"
        );
    }

    let doctor = |expect: i32| {
        let out = steward()
            .arg("doctor")
            .arg(dir.path())
            .env("PATH", path_with_steward())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(expect), "{text}");
        text
    };
    let text = doctor(0);
    assert!(text.contains("PASS") && !text.contains("FAIL"), "{text}");

    // Re-running init changes nothing and does not duplicate the CLAUDE.md section.
    let again = steward()
        .args(["init", "--tier", "strict", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout).matches("unchanged").count() == 4,
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    let md = std::fs::read_to_string(dir.path().join("CLAUDE.md")).unwrap();
    assert_eq!(md.matches("<!-- steward:begin").count(), 1);

    // Without the deny rules the doctor fails.
    let mut s = settings.clone();
    s["permissions"]["deny"] = serde_json::json!([]);
    std::fs::write(
        dir.path().join(".claude/settings.json"),
        serde_json::to_string_pretty(&s).unwrap(),
    )
    .unwrap();
    let text = doctor(1);
    assert!(
        text.lines().any(|l| l.starts_with("FAIL") && l.contains("secrets")),
        "{text}"
    );

    // An allow rule that re-opens credentials fails it too, even with the deny rules back.
    let mut s = settings.clone();
    s["permissions"]["allow"] = serde_json::json!(["Read(~/.ssh/**)"]);
    std::fs::write(
        dir.path().join(".claude/settings.json"),
        serde_json::to_string_pretty(&s).unwrap(),
    )
    .unwrap();
    let text = doctor(1);
    assert!(
        text.lines().any(|l| l.starts_with("FAIL") && l.contains("allow")),
        "{text}"
    );
}

#[test]
fn init_merges_existing_settings_and_keeps_files_without_force() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".claude/steward")).unwrap();
    std::fs::write(
        dir.path().join(".claude/settings.json"),
        r#"{"model": "opus", "permissions": {"deny": ["Bash(make deploy)"], "allow": ["Bash(npm test)"]}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".claude/steward/policy.yaml"),
        "version: 1\ndefault: allow\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("CLAUDE.md"), "# Our project\n\nBuild with make.\n").unwrap();
    let out = steward()
        .args(["init", "--tier", "standard", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let settings: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(".claude/settings.json")).unwrap()).unwrap();
    assert_eq!(settings["model"], "opus");
    assert_eq!(settings["permissions"]["allow"], serde_json::json!(["Bash(npm test)"]));
    let deny = settings["permissions"]["deny"].as_array().unwrap();
    assert_eq!(deny[0], "Bash(make deploy)");
    assert!(deny.iter().any(|d| d == "Read(./.env)"));
    assert!(
        settings["permissions"].get("disableBypassPermissionsMode").is_none(),
        "standard keeps bypass mode"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".claude/steward/policy.yaml")).unwrap(),
        "version: 1\ndefault: allow\n"
    );
    let md = std::fs::read_to_string(dir.path().join("CLAUDE.md")).unwrap();
    assert!(
        md.starts_with("# Our project\n\nBuild with make.\n") && md.contains("standard tier"),
        "{md}"
    );

    let forced = steward()
        .args(["init", "--tier", "standard", "--force", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(forced.status.code(), Some(0));
    assert!(
        std::fs::read_to_string(dir.path().join(".claude/steward/policy.yaml"))
            .unwrap()
            .contains("deny-credential-access")
    );
}
