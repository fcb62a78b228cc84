//! Servers reached through Steward: `steward proxy [--server NAME] -- CMD ARGS` and the
//! gateway's `http://GW/mcp/NAME`.

/// A server command wrapped by `steward proxy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapped {
    /// `--server NAME`, when given.
    pub server_name: Option<String>,
    /// `--sandbox PROFILE`, when given: the server starts in a sandbox.
    pub sandbox: Option<String>,
    pub command: String,
    pub args: Vec<String>,
}

/// `steward proxy` flags that take a value (global flags included).
const PROXY_VALUE_FLAGS: &[&str] = &[
    "--server",
    "--policy",
    "--principal",
    "--audit-db",
    "--max-message-bytes",
    "--log-format",
    "--webhook",
    "--webhook-format",
    "--sandbox",
    "--allow-read",
    "--allow-write",
    "--allow-net",
];

/// Sees through `steward proxy ... -- CMD ARGS`; `None` for any other command.
pub fn unwrap_steward_proxy(command: &str, args: &[String]) -> Option<Wrapped> {
    let base = command.rsplit(['/', '\\']).next().unwrap_or(command);
    let base = base.strip_suffix(".exe").unwrap_or(base);
    if base != "steward" {
        return None;
    }
    let mut i = 0;
    let mut seen_proxy = false;
    let mut server_name = None;
    let mut sandbox = None;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            let command = args.get(i + 1)?.clone();
            if !seen_proxy {
                return None;
            }
            return Some(Wrapped {
                server_name,
                sandbox,
                command,
                args: args[i + 2..].to_vec(),
            });
        }
        if a == "proxy" && !seen_proxy {
            seen_proxy = true;
        } else if let Some(v) = a.strip_prefix("--server=") {
            server_name = Some(v.to_string());
        } else if let Some(v) = a.strip_prefix("--sandbox=") {
            sandbox = Some(v.to_string());
        } else if PROXY_VALUE_FLAGS.contains(&a) {
            match a {
                "--server" => server_name = args.get(i + 1).cloned(),
                "--sandbox" => sandbox = args.get(i + 1).cloned(),
                _ => {}
            }
            i += 1;
        } else if !a.starts_with('-') {
            // Another sub-command, or a stray operand: not a proxy line we understand.
            return None;
        }
        i += 1;
    }
    None
}

/// The server name in a gateway URL `GATEWAY/mcp/NAME`, when `url` is under `gateway`.
pub fn gateway_server<'a>(url: &'a str, gateway: &str) -> Option<&'a str> {
    let base = gateway.trim_end_matches('/');
    let rest = url.strip_prefix(base)?;
    let name = rest.strip_prefix("/mcp/")?.trim_end_matches('/');
    (!name.is_empty() && !name.contains(['/', '?', '#'])).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn unwraps_proxy_lines() {
        let w = unwrap_steward_proxy(
            "steward",
            &words("proxy --server gh --policy p.yaml -- npx -y srv@1.0.0"),
        )
        .unwrap();
        assert_eq!(w.server_name.as_deref(), Some("gh"));
        assert_eq!(w.command, "npx");
        assert_eq!(w.args, words("-y srv@1.0.0"));
        let w = unwrap_steward_proxy("/usr/local/bin/steward", &words("proxy -- uvx mcp-server-time")).unwrap();
        assert_eq!(w.server_name, None);
        assert_eq!(w.sandbox, None);
        assert_eq!(w.command, "uvx");
        let w = unwrap_steward_proxy(
            "steward",
            &words("proxy --sandbox node --allow-read /srv --allow-net api.example:443 --webhook https://h.example/x -- node srv.js"),
        )
        .unwrap();
        assert_eq!(w.sandbox.as_deref(), Some("node"));
        assert_eq!(w.command, "node");
        let w = unwrap_steward_proxy("steward", &words("proxy --sandbox=uvx -- uvx mcp-server-time")).unwrap();
        assert_eq!(w.sandbox.as_deref(), Some("uvx"));
        assert_eq!(unwrap_steward_proxy("steward", &words("serve --config x")), None);
        assert_eq!(unwrap_steward_proxy("npx", &words("proxy -- x")), None);
    }

    #[test]
    fn gateway_urls() {
        assert_eq!(
            gateway_server("https://gw.example/mcp/github", "https://gw.example"),
            Some("github")
        );
        assert_eq!(
            gateway_server("https://gw.example/mcp/github/", "https://gw.example/"),
            Some("github")
        );
        assert_eq!(
            gateway_server("https://evil.example/mcp/github", "https://gw.example"),
            None
        );
        assert_eq!(
            gateway_server("https://gw.example.evil/mcp/github", "https://gw.example"),
            None
        );
    }
}
