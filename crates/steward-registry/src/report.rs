//! Rendering a check: a table for people, JSON for scripts, SARIF 2.1.0 for code-scanning UIs.

use std::path::Path;

use serde_json::{Value, json};

use crate::check::{CheckReport, CheckResult};
use crate::status::Status;

/// The table's column names.
pub const TABLE_HEADERS: [&str; 6] = ["STATUS", "CLIENT", "SCOPE", "SERVER", "CONFIG", "DETAIL"];

/// The table's rows, one per server found (for callers that lay the table out themselves).
pub fn table_rows(report: &CheckReport, home: Option<&Path>) -> Vec<[String; 6]> {
    report
        .results
        .iter()
        .map(|r| {
            let mut path = shorten(&r.config_path, home);
            if let Some(l) = r.line {
                path.push_str(&format!(":{l}"));
            }
            [
                r.status.to_string(),
                r.client.to_string(),
                r.scope.to_string(),
                r.server.clone(),
                path,
                r.detail.clone(),
            ]
        })
        .collect()
}

/// The line under the table: how many servers of each status, and the violations.
pub fn summary_line(report: &CheckReport) -> String {
    let v = report.violations();
    if v > 0 {
        format!("{}; {v} violation(s)", report.summary())
    } else {
        format!("{}; no violations", report.summary())
    }
}

/// A table: one line per server, then a summary line.
pub fn table(report: &CheckReport, home: Option<&Path>) -> String {
    let rows = table_rows(report, home);
    let headers = TABLE_HEADERS;
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()).take(5) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i < 5 {
                l.push_str(&format!("{c:<w$}  ", w = widths[i]));
            } else {
                l.push_str(c);
            }
        }
        l.trim_end().to_string() + "\n"
    };
    if rows.is_empty() {
        out.push_str("no MCP servers found in any known client config\n");
    } else {
        out.push_str(&line(&headers));
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            out.push_str(&line(&cells));
        }
    }
    out.push('\n');
    out.push_str(&summary_line(report));
    out.push('\n');
    out
}

/// The JSON array of results (`client`, `config_path`, `server`, `status`, `detail`, ...).
pub fn json(report: &CheckReport) -> Value {
    serde_json::to_value(&report.results).unwrap_or(Value::Array(Vec::new()))
}

struct Rule {
    id: &'static str,
    status: Option<Status>,
    name: &'static str,
    text: &'static str,
    level: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        id: "mcp-server-unapproved",
        status: Some(Status::Unapproved),
        name: "UnapprovedMcpServer",
        text: "An MCP server is configured that is not in the approved-server registry.",
        level: "error",
    },
    Rule {
        id: "mcp-server-denied",
        status: Some(Status::Denied),
        name: "DeniedMcpServer",
        text: "An MCP server is configured that the registry denies.",
        level: "error",
    },
    Rule {
        id: "mcp-server-expired",
        status: Some(Status::Expired),
        name: "ExpiredMcpServerApproval",
        text: "An MCP server is configured whose registry approval has expired.",
        level: "error",
    },
    Rule {
        id: "mcp-server-pending",
        status: Some(Status::Pending),
        name: "PendingMcpServer",
        text: "An MCP server is configured that is still pending review in the registry.",
        level: "warning",
    },
    Rule {
        id: "mcp-server-drift",
        status: Some(Status::Drift),
        name: "DriftedMcpServer",
        text: "An MCP server's command, arguments or version differ from its approved config, or its version is not pinned.",
        level: "error",
    },
    Rule {
        id: "mcp-config-unreadable",
        status: None,
        name: "UnreadableMcpConfig",
        text: "A client config file could not be read, so its MCP servers could not be checked.",
        level: "error",
    },
];

/// SARIF 2.1.0 with one result per violation. Files inside `project` are given relative to
/// the `PROJECTROOT` base so code-scanning UIs can place them in the repository.
pub fn sarif(report: &CheckReport, project: &Path) -> Value {
    let project = std::fs::canonicalize(project).unwrap_or_else(|_| project.to_path_buf());
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "shortDescription": {"text": r.text},
                "fullDescription": {"text": r.text},
                "defaultConfiguration": {"level": r.level},
                "helpUri": "https://example.invalid/steward/docs/registry.md",
                "properties": {"tags": ["security", "mcp"]},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .results
        .iter()
        .filter(|r| r.status.is_violation())
        .map(|r| result(r, &project))
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "steward",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/steward",
                "rules": rules,
            }},
            "originalUriBaseIds": {"PROJECTROOT": {"uri": file_uri(&project, true)}},
            "results": results,
        }]
    })
}

fn result(r: &CheckResult, project: &Path) -> Value {
    let (index, rule) = RULES
        .iter()
        .enumerate()
        .find(|(_, rule)| {
            if r.kind == "config-error" {
                rule.status.is_none()
            } else {
                rule.status == Some(r.status)
            }
        })
        .unwrap_or((0, &RULES[0]));
    let path = Path::new(&r.config_path);
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let artifact = match canonical.strip_prefix(project) {
        Ok(rel) => json!({"uri": encode(&rel.to_string_lossy()), "uriBaseId": "PROJECTROOT"}),
        Err(_) => json!({"uri": file_uri(&canonical, false)}),
    };
    let mut location = json!({"physicalLocation": {"artifactLocation": artifact}});
    if let Some(line) = r.line {
        location["physicalLocation"]["region"] = json!({"startLine": line});
    }
    let text = if r.kind == "config-error" {
        format!("{} config {}: {}", r.client, r.config_path, r.detail)
    } else {
        format!(
            "{} MCP server '{}' ({} {} config): {}",
            r.status, r.server, r.client, r.scope, r.detail
        )
    };
    json!({
        "ruleId": rule.id,
        "ruleIndex": index,
        "level": rule.level,
        "message": {"text": text},
        "locations": [location],
        "partialFingerprints": {"stewardServer/v1": format!("{}|{}|{}|{}", r.client, r.scope, r.server, r.config_path)},
        "properties": {"client": r.client, "scope": r.scope, "server": r.server, "status": r.status, "registry_entry": r.registry_entry},
    })
}

fn file_uri(path: &Path, dir: bool) -> String {
    let mut s = encode(&path.to_string_lossy().replace('\\', "/"));
    if !s.starts_with('/') {
        s.insert(0, '/');
    }
    if dir && !s.ends_with('/') {
        s.push('/');
    }
    format!("file://{s}")
}

/// Percent-encodes what may not appear in a URI path.
fn encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn shorten(path: &str, home: Option<&Path>) -> String {
    if let Some(h) = home
        && let Ok(rest) = Path::new(path).strip_prefix(h)
    {
        return format!("~/{}", rest.display());
    }
    path.to_string()
}
