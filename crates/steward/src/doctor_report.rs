//! `steward doctor --format json|sarif`: findings for scripts and code-scanning UIs.

use std::path::Path;

use serde_json::{Value, json};
use steward_registry::doctor::{Finding, Level};
use steward_registry::tier::{POLICY_PATH, REGISTRY_PATH, SETTINGS_PATH};

/// One finding: `{"level": "pass|warn|fail", "check", "message", "file"?}`.
pub fn json(f: &Finding) -> Value {
    let mut v = json!({
        "level": level(f.level),
        "check": f.check,
        "message": f.message,
    });
    if let Some(file) = file_of(f.check) {
        v["file"] = json!(file);
    }
    v
}

/// A SARIF 2.1.0 log: one result per warning or failure, rule `doctor/CHECK`, located at the
/// file the check reads (relative to the audited directory) when there is one.
pub fn sarif(findings: &[Finding], dir: &Path) -> Value {
    let mut checks: Vec<&str> = findings.iter().map(|f| f.check).collect();
    checks.sort_unstable();
    checks.dedup();
    let rules: Vec<Value> = checks
        .iter()
        .map(|c| {
            json!({
                "id": format!("doctor/{c}"),
                "name": c,
                "shortDescription": {"text": format!("steward doctor: {c}")},
                "properties": {"tags": ["security", "mcp", "claude-code"]},
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .filter(|f| f.level != Level::Pass)
        .map(|f| {
            let mut r = json!({
                "ruleId": format!("doctor/{}", f.check),
                "ruleIndex": checks.iter().position(|c| *c == f.check).unwrap_or(0),
                "level": if f.level == Level::Fail { "error" } else { "warning" },
                "message": {"text": f.message},
            });
            if let Some(file) = file_of(f.check) {
                r["locations"] =
                    json!([{"physicalLocation": {"artifactLocation": {"uri": file, "uriBaseId": "PROJECTROOT"}}}]);
            }
            r
        })
        .collect();
    let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "steward-doctor",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "originalUriBaseIds": {"PROJECTROOT": {"uri": format!("file://{}/", root.display())}},
            "results": results,
        }]
    })
}

fn level(l: Level) -> &'static str {
    match l {
        Level::Pass => "pass",
        Level::Warn => "warn",
        Level::Fail => "fail",
    }
}

/// The file a check reads, relative to the audited directory.
fn file_of(check: &str) -> Option<&'static str> {
    match check {
        "settings" | "allow-rules" | "bypass" | "hooks" | "hook-command" => Some(SETTINGS_PATH),
        "registry" | "sandbox" => Some(REGISTRY_PATH),
        "policy" => Some(POLICY_PATH),
        "claude-md" => Some("CLAUDE.md"),
        "project-servers" => Some(".mcp.json"),
        _ => None,
    }
}
