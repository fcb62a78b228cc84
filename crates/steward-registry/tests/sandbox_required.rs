//! `sandbox: required` on an approved entry: `registry check` reports servers that run without a
//! sandbox, lint reports entries the gateway cannot serve sandboxed.

use chrono::NaiveDate;
use steward_policy::Severity;
use steward_registry::{CheckOptions, Locations, Registry, Status, check, discover, lint};

const REGISTRY: &str = r#"metadata:
  gateway: https://gw.example
approved:
  - name: files
    version: "2026.8.31"
    npm_package: "@modelcontextprotocol/server-filesystem"
    approved_by: sec
    expires: 2027-12-31
    data_scope: CONFIDENTIAL
    risk: HIGH
    rationale: project files
    sandbox: required
    config:
      command: npx
      args: ["-y", "@modelcontextprotocol/server-filesystem@2026.8.31", "/srv/data"]
      sandbox: {profile: npx, read: [/srv/data], network: none}
  - name: bare
    version: "1.0.0"
    approved_by: sec
    expires: 2027-12-31
    data_scope: INTERNAL
    risk: MEDIUM
    rationale: x
    sandbox: required
    config: {command: bare-mcp}
"#;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[test]
fn servers_of_entries_that_require_a_sandbox_must_run_in_one() {
    let reg = Registry::from_yaml(REGISTRY, "registry.yaml").unwrap();
    let files = reg.approved("files").unwrap();
    assert!(files.sandbox_required);
    assert_eq!(
        files.config.as_ref().unwrap().sandbox.as_ref().unwrap()["profile"],
        serde_json::json!("npx")
    );
    let pkg = "@modelcontextprotocol/server-filesystem@2026.8.31";
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    let mcp = serde_json::json!({"mcpServers": {
        "a-direct": {"command": "npx", "args": ["-y", pkg, "/srv/data"]},
        "b-proxied": {"command": "steward", "args": ["proxy", "--server", "files", "--sandbox", "npx", "--allow-read", "/srv/data", "--", "npx", "-y", pkg, "/srv/data"]},
        "c-gateway": {"type": "http", "url": "https://gw.example/mcp/files"},
        "d-gateway-bare": {"type": "http", "url": "https://gw.example/mcp/bare"},
    }});
    std::fs::write(project.path().join(".mcp.json"), mcp.to_string()).unwrap();
    let mut loc = Locations::new(home.path(), project.path());
    loc.system_root = home.path().join("no-system");
    let discovery = discover(&loc);
    assert_eq!(discovery.servers.len(), 4, "{discovery:?}");
    let report = check(&reg, &discovery, day("2027-01-01"), &CheckOptions::default());
    let mut results = report.results.clone();
    results.sort_by(|a, b| a.server.cmp(&b.server));
    let statuses: Vec<(Status, &str)> = results.iter().map(|r| (r.status, r.detail.as_str())).collect();
    assert_eq!(statuses[0].0, Status::Drift, "{statuses:?}");
    assert!(statuses[0].1.contains("requires a sandbox") && statuses[0].1.contains("steward proxy --sandbox"));
    assert_eq!(statuses[1].0, Status::Approved, "{statuses:?}");
    assert!(statuses[1].1.contains("sandbox npx"), "{}", statuses[1].1);
    assert_eq!(
        statuses[2].0,
        Status::Approved,
        "the gateway serves it sandboxed: {statuses:?}"
    );
    assert_eq!(statuses[3].0, Status::Drift, "{statuses:?}");
    assert!(statuses[3].1.contains("does not serve it"), "{}", statuses[3].1);
    assert_eq!(report.violations(), 2);
}

#[test]
fn lint_says_what_is_wrong_with_a_sandbox_requirement() {
    let diags = lint(REGISTRY, "registry.yaml", day("2027-01-01"));
    let bare: Vec<_> = diags
        .iter()
        .filter(|d| d.message.contains("'bare' requires a sandbox"))
        .collect();
    assert_eq!(bare.len(), 1, "{diags:?}");
    assert_eq!(bare[0].severity, Severity::Warning);
    let bad = REGISTRY.replace(
        "sandbox: required\n    config: {command: bare-mcp}",
        "sandbox: always\n    config: {command: bare-mcp}",
    );
    let diags = lint(&bad, "registry.yaml", day("2027-01-01"));
    assert!(
        diags
            .iter()
            .any(|d| d.severity == Severity::Error && d.message.contains("sandbox of 'bare' is 'always'")),
        "{diags:?}"
    );
    let remote = REGISTRY.replace(
        "config: {command: bare-mcp}",
        "config: {url: \"https://mcp.example/x\"}",
    );
    assert!(
        lint(&remote, "registry.yaml", day("2027-01-01"))
            .iter()
            .any(|d| d.severity == Severity::Error && d.message.contains("remote server")),
    );
}
