//! `steward scan` output: a table for people, JSON, and SARIF 2.1.0 for code-scanning tools
//! (the conventions of `registry check --format sarif`).

use std::fmt::Write;
use std::path::Path;

use serde_json::{Value, json};
use steward_scan::Severity;

use super::{Finding, SurveyReport};

/// Text from servers may hold terminal escapes or newlines: shown as `?`.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// The table: one line per server, then one per finding, then the counts.
pub fn table(report: &SurveyReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "SERVERS");
    for s in &report.servers {
        let state = match &s.error {
            None => format!(
                "{} tools, {} prompts, {} resources, {} templates",
                s.tools, s.prompts, s.resources, s.resource_templates
            ),
            Some(e) => format!("UNREACHABLE: {}", clean(e)),
        };
        let clients: Vec<String> = s.configs.iter().map(|c| format!("{} {}", c.client, c.scope)).collect();
        let _ = writeln!(
            out,
            "  {:<24} {:<5} {}  [{}]",
            clean(&s.name),
            s.transport,
            state,
            clients.join(", ")
        );
    }
    let _ = writeln!(out);
    if report.findings.is_empty() {
        let _ = writeln!(out, "FINDINGS: none");
    } else {
        let _ = writeln!(out, "FINDINGS");
        let _ = writeln!(
            out,
            "  {:<8} {:<26} {:<20} {:<30} WHERE / WHAT",
            "SEVERITY", "KIND", "SERVER", "ITEM"
        );
        for f in &report.findings {
            let mut what = String::new();
            if let Some(l) = &f.location {
                let _ = write!(what, "{}: ", clean(l));
            }
            what.push_str(&clean(&f.message));
            if let Some(o) = &f.other_server {
                let _ = write!(what, " (other server: {})", clean(o));
            }
            let _ = writeln!(
                out,
                "  {:<8} {:<26} {:<20} {:<30} {}",
                f.severity.as_str(),
                f.kind,
                clean(&f.server),
                clean(f.item.as_deref().unwrap_or("-")),
                what
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{} servers, {} findings: {} HIGH, {} MEDIUM, {} LOW",
        report.servers.len(),
        report.findings.len(),
        report.count(Severity::High),
        report.count(Severity::Medium),
        report.count(Severity::Low)
    );
    out
}

/// The JSON document: the report as it is, with counts.
pub fn json(report: &SurveyReport) -> Value {
    let mut v = serde_json::to_value(report).unwrap_or(Value::Null);
    v["summary"] = json!({
        "servers": report.servers.len(),
        "high": report.count(Severity::High),
        "medium": report.count(Severity::Medium),
        "low": report.count(Severity::Low),
    });
    v
}

/// What each finding kind means, for SARIF rules.
fn describe_kind(kind: &str) -> &'static str {
    match kind {
        "unreachable" => "An MCP server could not be started or reached, so nothing it offers was checked.",
        "analysis-incomplete" => {
            "A limit stopped the scan of a server or definition early; what was not seen is not trusted."
        }
        "duplicate_tool_name" => {
            "Two servers one client sees offer a tool with the same name: one may shadow the other."
        }
        "cross_server_reference" => {
            "A tool's definition names another server's tool (HIGH when it instructs about it)."
        }
        "tool_drift" | "prompt_drift" | "resource_drift" => {
            "A definition changed since the previous scan (what a rug pull looks like)."
        }
        "tool_added" | "prompt_added" | "resource_added" => "A definition appeared since the previous scan.",
        "tool_removed" | "prompt_removed" | "resource_removed" => "A definition disappeared since the previous scan.",
        _ => {
            "A description, schema or name that speaks to the model rather than describing the item (tool poisoning), or hides text from people."
        }
    }
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// SARIF 2.1.0: one rule per finding kind, one result per finding located at the config
/// entry of its server.
pub fn sarif(report: &SurveyReport, project: &Path) -> Value {
    let project = std::fs::canonicalize(project).unwrap_or_else(|_| project.to_path_buf());
    let mut kinds: Vec<&str> = report.findings.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let rules: Vec<Value> = kinds
        .iter()
        .map(|k| {
            let worst = report
                .findings
                .iter()
                .filter(|f| f.kind == *k)
                .map(|f| f.severity)
                .max()
                .unwrap_or(Severity::Low);
            json!({
                "id": k,
                "name": k,
                "shortDescription": {"text": describe_kind(k)},
                "fullDescription": {"text": describe_kind(k)},
                "defaultConfiguration": {"level": level(worst)},
                "helpUri": "https://example.invalid/steward/docs/scan.md",
                "properties": {"tags": ["security", "mcp"]},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| result(f, report, &project, &kinds))
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

fn result(f: &Finding, report: &SurveyReport, project: &Path, kinds: &[&str]) -> Value {
    let index = kinds.iter().position(|k| *k == f.kind).unwrap_or(0);
    let mut text = format!("MCP server '{}'", f.server);
    if let Some(item) = &f.item {
        let _ = write!(text, ", {item}");
    }
    if let Some(l) = &f.location {
        let _ = write!(text, " at {l}");
    }
    let _ = write!(text, ": {}", f.message);
    if let Some(o) = &f.other_server {
        let _ = write!(text, " (other server: {o})");
    }
    let config = report
        .servers
        .iter()
        .find(|s| s.name == f.server)
        .and_then(|s| s.configs.first());
    let mut locations = Vec::new();
    if let Some(c) = config {
        let canonical = std::fs::canonicalize(&c.config_path).unwrap_or_else(|_| c.config_path.clone());
        let artifact = match canonical.strip_prefix(project) {
            Ok(rel) => json!({"uri": encode(&rel.to_string_lossy()), "uriBaseId": "PROJECTROOT"}),
            Err(_) => json!({"uri": file_uri(&canonical, false)}),
        };
        let mut loc = json!({"physicalLocation": {"artifactLocation": artifact}});
        if let Some(line) = c.line {
            loc["physicalLocation"]["region"] = json!({"startLine": line});
        }
        locations.push(loc);
    }
    json!({
        "ruleId": f.kind,
        "ruleIndex": index,
        "level": level(f.severity),
        "message": {"text": text},
        "locations": locations,
        "partialFingerprints": {"stewardScan/v1": format!("{}|{}|{}|{}", f.kind, f.server, f.item.as_deref().unwrap_or(""), f.location.as_deref().unwrap_or(""))},
        "properties": {"severity": f.severity.as_str(), "server": f.server, "item": f.item, "location": f.location, "other_server": f.other_server},
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

/// Percent-encodes what may not stand in a URI path.
fn encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}
