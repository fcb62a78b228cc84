//! Codex CLI: `[mcp_servers.NAME]` tables in `config.toml` (user, and a project's `.codex/`).

use std::path::Path;

use super::{Discovery, FoundServer, Locations, line_of};

const CLIENT: &str = "codex";

pub(super) fn discover(loc: &Locations, d: &mut Discovery) {
    read(d, "user", &loc.home.join(".codex/config.toml"));
    read(d, "project", &loc.project.join(".codex/config.toml"));
}

fn read(d: &mut Discovery, scope: &'static str, path: &Path) {
    let Some(text) = d.read(CLIENT, scope, path) else {
        return;
    };
    let doc: toml::Table = match toml::from_str(&text) {
        Ok(t) => t,
        Err(e) => {
            let line = e.span().map(|s| line_of(&text, s.start));
            let message = e.message().to_string();
            d.problem(
                CLIENT,
                scope,
                path,
                line,
                format!("not valid TOML: {message}; its servers were not checked"),
            );
            return;
        }
    };
    let Some(servers) = doc.get("mcp_servers") else {
        return;
    };
    let Some(servers) = servers.as_table() else {
        d.problem(
            CLIENT,
            scope,
            path,
            None,
            "`mcp_servers` is not a table; its servers were not checked".into(),
        );
        return;
    };
    for (name, entry) in servers {
        let line = table_line(&text, name);
        let Some(t) = entry.as_table() else {
            d.problem(
                CLIENT,
                scope,
                path,
                line,
                format!("server '{name}': entry is not a table"),
            );
            continue;
        };
        let command = t.get("command").and_then(|v| v.as_str()).map(str::to_string);
        let url = t.get("url").and_then(|v| v.as_str()).map(str::to_string);
        let args: Option<Vec<String>> = match t.get("args") {
            None => Some(Vec::new()),
            Some(v) => v
                .as_array()
                .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect()),
        };
        let Some(args) = args else {
            d.problem(
                CLIENT,
                scope,
                path,
                line,
                format!("server '{name}': `args` is not an array of strings"),
            );
            continue;
        };
        if command.is_none() && url.is_none() {
            d.problem(
                CLIENT,
                scope,
                path,
                line,
                format!("server '{name}': entry has neither `command` nor `url`"),
            );
            continue;
        }
        d.servers.push(FoundServer {
            client: CLIENT,
            scope,
            config_path: path.to_path_buf(),
            name: name.clone(),
            line,
            command,
            args,
            url,
            context: None,
            env: toml_strings(t.get("env")),
            headers: toml_strings(t.get("http_headers")),
            cwd: t.get("cwd").and_then(|v| v.as_str()).map(str::to_string),
        });
    }
}

/// The line of `[mcp_servers.NAME]` (bare or quoted key).
fn table_line(text: &str, name: &str) -> Option<u64> {
    let quoted = format!("\"{name}\"");
    text.lines()
        .position(|l| {
            let l = l.trim();
            l.strip_prefix("[mcp_servers.")
                .and_then(|r| r.strip_suffix(']'))
                .is_some_and(|k| k.trim() == name || k.trim() == quoted)
        })
        .map(|i| i as u64 + 1)
}

/// The string values of a TOML table (`env`, `http_headers`).
fn toml_strings(v: Option<&toml::Value>) -> std::collections::BTreeMap<String, String> {
    v.and_then(|v| v.as_table())
        .map(|t| {
            t.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}
