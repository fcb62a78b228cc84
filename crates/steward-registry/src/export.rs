//! `steward registry export claude-managed`: the registry as Claude Code managed settings, so
//! Claude Code itself enforces the list and routes approved servers through Steward.

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use crate::model::Registry;

/// How approved servers are reached from Claude Code.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Route through the gateway at this base URL (`URL/mcp/NAME`) instead of `steward proxy`.
    pub gateway: Option<String>,
    /// The `steward` program in the generated commands.
    pub steward: String,
    /// A policy file `steward proxy` should use (`--policy`), when set.
    pub policy: Option<String>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            gateway: None,
            steward: "steward".into(),
            policy: None,
        }
    }
}

/// The two managed files, and the approved entries left out (with why).
#[derive(Debug, Clone)]
pub struct ClaudeManaged {
    /// A fragment for `managed-settings.json`: `allowedMcpServers`, `deniedMcpServers`.
    pub managed_settings: Value,
    /// `managed-mcp.json`: the approved servers, routed through Steward.
    pub managed_mcp: Value,
    pub skipped: Vec<String>,
}

/// Builds the Claude Code managed files from the servers the registry allows on `today`.
pub fn claude_managed(reg: &Registry, today: NaiveDate, opts: &ExportOptions) -> ClaudeManaged {
    let mut allowed = Vec::new();
    let mut servers = Map::new();
    let mut skipped = Vec::new();
    for a in &reg.approved {
        let sv = match reg.servable(&a.name, today) {
            Ok(sv) => sv,
            Err(e) => {
                skipped.push(e.message);
                continue;
            }
        };
        let entry = match (&opts.gateway, &sv.config.command, &sv.config.url) {
            (Some(gw), _, _) => {
                let url = format!("{}/mcp/{}", gw.trim_end_matches('/'), sv.name);
                allowed.push(json!({"serverUrl": url}));
                json!({"type": "http", "url": url})
            }
            (None, Some(command), _) => {
                let mut args: Vec<String> = vec!["proxy".into(), "--server".into(), sv.name.to_string()];
                if let Some(p) = &opts.policy {
                    args.push("--policy".into());
                    args.push(p.clone());
                }
                args.push("--".into());
                args.push(command.clone());
                args.extend(sv.config.args.iter().cloned());
                let argv: Vec<String> = std::iter::once(opts.steward.clone())
                    .chain(args.iter().cloned())
                    .collect();
                allowed.push(json!({"serverCommand": argv}));
                let mut e = json!({"type": "stdio", "command": opts.steward, "args": args});
                if !sv.config.env.is_empty() {
                    e["env"] = json!(sv.config.env);
                }
                e
            }
            (None, None, Some(url)) => {
                // A remote server without a gateway: allow its URL as approved.
                allowed.push(json!({"serverUrl": url}));
                json!({"type": "http", "url": url})
            }
            (None, None, None) => {
                skipped.push(format!("'{}' has no command or url", sv.name));
                continue;
            }
        };
        servers.insert(sv.name.to_string(), entry);
    }
    let mut denied = Vec::new();
    for d in &reg.denied {
        denied.push(json!({"serverName": d.name}));
        if let Some(argv) = d.config.as_ref().and_then(|c| c.argv()) {
            denied.push(json!({"serverCommand": argv}));
        }
        if let Some(url) = d.config.as_ref().and_then(|c| c.url.clone()) {
            denied.push(json!({"serverUrl": url}));
        }
    }
    ClaudeManaged {
        managed_settings: json!({
            "allowedMcpServers": allowed,
            "deniedMcpServers": denied,
        }),
        managed_mcp: json!({"mcpServers": servers}),
        skipped,
    }
}
