//! The registry format, lint findings with locations, the gateway's servable API and the
//! Claude Code managed export.

use chrono::NaiveDate;
use steward_policy::{Risk, Severity};
use steward_registry::export::{ExportOptions, claude_managed};
use steward_registry::{DataScope, Registry, Status, lint};

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

const REGISTRY: &str = r#"metadata:
  organization: Test
approved:
  - name: github
    version: "1.2.3"
    npm_package: "@modelcontextprotocol/server-github"
    approved_by: sec
    approved_date: 2026-01-01
    expires: 2027-01-01
    data_scope: INTERNAL
    risk: MEDIUM
    rationale: triage
    restrictions: [read-only]
    config:
      command: npx
      args: ["-y", "@modelcontextprotocol/server-github@1.2.3"]
      env: {TOKEN: "${GITHUB_TOKEN}"}
  - name: old
    version: latest
    approved_by: sec
    expires: 2026-01-01
    data_scope: PUBLIC
    risk: LOW
    config:
      command: npx
      args: ["-y", "old-mcp"]
  - name: shady
    version: "1.0.0"
    approved_by: sec
    expires: 2026-12-01
    data_scope: RESTRICTED
    risk: HIGH
    rationale: x
    config: {command: shady-mcp}
pending_review:
  - name: slack
    requested_by: support
denied:
  - name: shady
    reason: exfiltrates data.
    alternative: github
version_bump_policy:
  patch: auto-approve
incident_response:
  contact: sec@example.com
"#;

#[test]
fn loads_every_section() {
    let r = Registry::from_yaml(REGISTRY, "reg.yaml").unwrap();
    assert_eq!(r.approved.len(), 3);
    let gh = r.approved("github").unwrap();
    assert_eq!(gh.version.as_deref(), Some("1.2.3"));
    assert_eq!(gh.data_scope, DataScope::Internal);
    assert_eq!(gh.risk, Risk::Medium);
    assert_eq!(gh.expires, Some(day("2027-01-01")));
    assert_eq!(gh.restrictions, vec!["read-only".to_string()]);
    assert_eq!(gh.config.as_ref().unwrap().env["TOKEN"], "${GITHUB_TOKEN}");
    assert_eq!(r.pending_review[0].name, "slack");
    assert_eq!(r.denied[0].alternative.as_deref(), Some("github"));
    assert_eq!(r.version_bump_policy["patch"], "auto-approve");
    assert_eq!(r.incident_response["contact"], "sec@example.com");
}

#[test]
fn lint_reports_each_problem_where_it_is() {
    let diags = lint(REGISTRY, "reg.yaml", day("2026-11-20"));
    let find = |needle: &str| {
        diags
            .iter()
            .find(|d| d.message.contains(needle))
            .unwrap_or_else(|| panic!("no finding containing {needle:?} in {diags:#?}"))
    };
    let latest = find("version 'latest'");
    assert_eq!((latest.severity, latest.line, latest.column), (Severity::Error, 19, 14));
    let unpinned = find("runs old-mcp without a pinned version");
    assert_eq!((unpinned.severity, unpinned.line), (Severity::Error, 25));
    let expired = find("approval of 'old' expired on 2026-01-01");
    assert_eq!(
        (expired.severity, expired.line, expired.column),
        (Severity::Error, 21, 14)
    );
    let soon = find("approval of 'shady' expires on 2026-12-01, in 11 day(s)");
    assert_eq!(soon.severity, Severity::Warning);
    let rationale = find("'old' has no rationale");
    assert_eq!((rationale.severity, rationale.line), (Severity::Warning, 18));
    let both = find("'shady' is both approved and denied");
    assert_eq!((both.severity, both.line), (Severity::Error, 27));
    assert!(diags.iter().all(|d| d.line > 0), "{diags:#?}");
}

#[test]
fn schema_errors_point_at_the_line() {
    let text =
        "approved:\n  - name: a\n    version: \"1\"\n    expire: 2027-01-01\n    data_scope: PUBLIC\n    risk: LOW\n";
    let diags = lint(text, "r.yaml", day("2026-11-20"));
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].severity, Severity::Error);
    assert!(diags[0].message.contains("expire"), "{}", diags[0].message);
    assert_eq!(diags[0].line, 4);
    assert!(diags[0].render("r.yaml").starts_with("r.yaml:4:"));

    let bad_scope = "approved:\n  - name: a\n    version: \"1\"\n    data_scope: SECRET\n    risk: LOW\n";
    let d = lint(bad_scope, "r.yaml", day("2026-11-20"));
    let e = d.iter().find(|d| d.severity == Severity::Error).unwrap();
    assert_eq!((e.line, e.column), (4, 17));
    assert!(e.message.contains("SECRET"));
    assert!(Registry::from_yaml(bad_scope, "r.yaml").is_err());

    let dup = "approved:\n  - {name: a, version: \"1\", data_scope: PUBLIC, risk: LOW}\n  - {name: a, version: \"1\", data_scope: PUBLIC, risk: LOW}\n";
    let d = lint(dup, "r.yaml", day("2026-11-20"));
    assert!(
        d.iter()
            .any(|d| d.severity == Severity::Error && d.message.contains("listed twice") && d.line == 3),
        "{d:#?}"
    );
}

#[test]
fn servable_says_yes_or_why_not() {
    let r = Registry::from_yaml(REGISTRY, "reg.yaml").unwrap();
    let today = day("2026-11-20");
    let gh = r.servable("github", today).unwrap();
    assert_eq!(gh.config.command.as_deref(), Some("npx"));
    assert_eq!(gh.config.args, vec!["-y", "@modelcontextprotocol/server-github@1.2.3"]);
    assert_eq!(
        (gh.data_scope, gh.risk, gh.version),
        (DataScope::Internal, Risk::Medium, Some("1.2.3"))
    );

    let expired = r.servable("old", today).unwrap_err();
    assert_eq!(expired.status, Status::Expired);
    assert!(
        expired.message.contains("approved entry 'old'") && expired.message.contains("2026-01-01"),
        "{}",
        expired.message
    );

    let denied = r.servable("shady", today).unwrap_err();
    assert_eq!(denied.status, Status::Denied);
    assert!(
        denied.message.contains("denied entry 'shady'") && denied.message.contains("use 'github' instead"),
        "{}",
        denied.message
    );

    let pending = r.servable("slack", today).unwrap_err();
    assert_eq!(pending.status, Status::Pending);
    assert!(pending.message.contains("pending_review entry 'slack'"));

    assert_eq!(r.servable("nope", today).unwrap_err().status, Status::Unapproved);
    // Valid through the expiry day itself.
    assert!(r.servable("github", day("2027-01-01")).is_ok());
    assert_eq!(
        r.servable("github", day("2027-01-02")).unwrap_err().status,
        Status::Expired
    );
    assert_eq!(r.servable_servers(today).len(), 1);
}

#[test]
fn exports_claude_managed_settings() {
    let r = Registry::from_yaml(REGISTRY, "reg.yaml").unwrap();
    let today = day("2026-11-20");
    let m = claude_managed(&r, today, &ExportOptions::default());
    assert_eq!(
        m.managed_settings["allowedMcpServers"],
        serde_json::json!([{"serverCommand": ["steward", "proxy", "--server", "github", "--", "npx", "-y", "@modelcontextprotocol/server-github@1.2.3"]}])
    );
    assert_eq!(
        m.managed_settings["deniedMcpServers"],
        serde_json::json!([{"serverName": "shady"}])
    );
    let gh = &m.managed_mcp["mcpServers"]["github"];
    assert_eq!(gh["command"], "steward");
    assert_eq!(gh["args"][0], "proxy");
    assert_eq!(gh["env"]["TOKEN"], "${GITHUB_TOKEN}");
    assert!(
        m.managed_mcp["mcpServers"].get("old").is_none(),
        "expired servers are not exported"
    );
    assert_eq!(m.skipped.len(), 2);

    let g = claude_managed(
        &r,
        today,
        &ExportOptions {
            gateway: Some("https://gw.example/".into()),
            ..ExportOptions::default()
        },
    );
    assert_eq!(
        g.managed_settings["allowedMcpServers"],
        serde_json::json!([{"serverUrl": "https://gw.example/mcp/github"}])
    );
    assert_eq!(
        g.managed_mcp["mcpServers"]["github"],
        serde_json::json!({"type": "http", "url": "https://gw.example/mcp/github"})
    );
}
