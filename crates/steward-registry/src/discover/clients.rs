//! Claude Desktop, Cursor, VS Code, Windsurf and Gemini CLI: JSON files with a map of servers.

use super::{Discovery, Locations};

/// Per-user application data directories, relative to the home directory: Linux, macOS, Windows.
const APP_DIRS: &[&str] = &[".config", "Library/Application Support", "AppData/Roaming"];
const VSCODE_FLAVOURS: &[&str] = &["Code", "Code - Insiders", "VSCodium"];

pub(super) fn discover(loc: &Locations, d: &mut Discovery) {
    // Claude Desktop: mcpServers.
    for dir in APP_DIRS {
        let path = loc.home.join(dir).join("Claude/claude_desktop_config.json");
        servers_under(d, "claude-desktop", "user", &path, false, &["mcpServers"]);
    }

    // Cursor: mcpServers, user and project.
    servers_under(
        d,
        "cursor",
        "user",
        &loc.home.join(".cursor/mcp.json"),
        false,
        &["mcpServers"],
    );
    servers_under(
        d,
        "cursor",
        "project",
        &loc.project.join(".cursor/mcp.json"),
        false,
        &["mcpServers"],
    );

    // VS Code: `servers` in mcp.json (JSONC), and the legacy `mcp.servers` in settings.json.
    servers_under(
        d,
        "vscode",
        "project",
        &loc.project.join(".vscode/mcp.json"),
        true,
        &["servers"],
    );
    servers_under(
        d,
        "vscode",
        "project",
        &loc.project.join(".vscode/settings.json"),
        true,
        &["mcp", "servers"],
    );
    for dir in APP_DIRS {
        for flavour in VSCODE_FLAVOURS {
            let user = loc.home.join(dir).join(flavour).join("User");
            servers_under(d, "vscode", "user", &user.join("mcp.json"), true, &["servers"]);
            servers_under(
                d,
                "vscode",
                "user",
                &user.join("settings.json"),
                true,
                &["mcp", "servers"],
            );
        }
    }

    // Windsurf: mcpServers (remote servers use serverUrl).
    servers_under(
        d,
        "windsurf",
        "user",
        &loc.home.join(".codeium/windsurf/mcp_config.json"),
        false,
        &["mcpServers"],
    );

    // Gemini CLI: mcpServers in user, project and system settings (JSONC).
    servers_under(
        d,
        "gemini-cli",
        "user",
        &loc.home.join(".gemini/settings.json"),
        true,
        &["mcpServers"],
    );
    servers_under(
        d,
        "gemini-cli",
        "project",
        &loc.project.join(".gemini/settings.json"),
        true,
        &["mcpServers"],
    );
    servers_under(
        d,
        "gemini-cli",
        "system",
        &loc.system("etc/gemini-cli/settings.json"),
        true,
        &["mcpServers"],
    );
}

/// Reads `path` and adds the servers found at the JSON key path `keys`.
fn servers_under(
    d: &mut Discovery,
    client: &'static str,
    scope: &'static str,
    path: &std::path::Path,
    jsonc: bool,
    keys: &[&str],
) {
    let Some((text, v)) = d.read_json(client, scope, path, jsonc) else {
        return;
    };
    let mut node = &v;
    for k in keys {
        match node.get(k) {
            Some(next) => node = next,
            None => return,
        }
    }
    let from = keys.first().map(|k| super::key_offset(&text, k)).unwrap_or(0);
    d.add_servers(client, scope, path, &text, node, from, None, &|_| None::<String>);
}
