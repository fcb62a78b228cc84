//! Claude Code: `~/.claude.json` (user and per-project "local" servers), the project's
//! `.mcp.json` (minus `disabledMcpjsonServers`), and the managed `managed-mcp.json`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Discovery, Locations, key_offset};

const CLIENT: &str = "claude-code";

/// Managed (system-wide) files, relative to the system root: Linux, then macOS.
const MANAGED_DIRS: &[&str] = &["etc/claude-code", "Library/Application Support/ClaudeCode"];

pub(super) fn discover(loc: &Locations, d: &mut Discovery) {
    let project = canonical(&loc.project);
    let mut disabled: BTreeSet<String> = BTreeSet::new();

    // Settings layers that switch project servers off.
    let mut settings_files: Vec<(&'static str, PathBuf)> = vec![
        ("user", loc.home.join(".claude/settings.json")),
        ("project", loc.project.join(".claude/settings.json")),
        ("project", loc.project.join(".claude/settings.local.json")),
    ];
    for dir in MANAGED_DIRS {
        settings_files.push(("managed", loc.system(&format!("{dir}/managed-settings.json"))));
    }
    for (scope, path) in settings_files {
        let Some((_, v)) = d.read_json(CLIENT, scope, &path, false) else {
            continue;
        };
        collect_disabled(&v, &mut disabled);
    }

    // ~/.claude.json: user servers, and each project's own ("local") servers.
    let user_file = loc.home.join(".claude.json");
    if let Some((text, v)) = d.read_json(CLIENT, "user", &user_file, false) {
        d.add_servers(
            CLIENT,
            "user",
            &user_file,
            &text,
            v.get("mcpServers").unwrap_or(&Value::Null),
            0,
            None,
            &|_| None,
        );
        if let Some(projects) = v.get("projects").and_then(Value::as_object) {
            for (path, entry) in projects {
                let this_project = canonical(Path::new(path)) == project;
                if this_project {
                    collect_disabled(entry, &mut disabled);
                }
                if !(loc.all_projects || this_project) {
                    continue;
                }
                let servers = entry.get("mcpServers").unwrap_or(&Value::Null);
                if servers.as_object().is_some_and(|m| m.is_empty()) {
                    continue;
                }
                let from = key_offset(&text, path);
                d.add_servers(
                    CLIENT,
                    "local",
                    &user_file,
                    &text,
                    servers,
                    from,
                    Some(format!("project {path}")),
                    &|_| None,
                );
            }
        }
    }

    // The project's .mcp.json, unless a settings layer disabled the server.
    let mcp_json = loc.project.join(".mcp.json");
    if let Some((text, v)) = d.read_json(CLIENT, "project", &mcp_json, false) {
        let skip = |name: &str| {
            disabled
                .contains(name)
                .then(|| "disabled by disabledMcpjsonServers in Claude Code settings".to_string())
        };
        d.add_servers(
            CLIENT,
            "project",
            &mcp_json,
            &text,
            v.get("mcpServers").unwrap_or(&Value::Null),
            0,
            None,
            &skip,
        );
    }

    // managed-mcp.json: servers the organisation deploys, with exclusive control.
    for dir in MANAGED_DIRS {
        let path = loc.system(&format!("{dir}/managed-mcp.json"));
        if let Some((text, v)) = d.read_json(CLIENT, "managed", &path, false) {
            d.add_servers(
                CLIENT,
                "managed",
                &path,
                &text,
                v.get("mcpServers").unwrap_or(&Value::Null),
                0,
                None,
                &|_| None,
            );
        }
    }
}

fn collect_disabled(v: &Value, out: &mut BTreeSet<String>) {
    if let Some(list) = v.get("disabledMcpjsonServers").and_then(Value::as_array) {
        out.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
    }
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}
