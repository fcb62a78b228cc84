//! Who is calling, and what the upstream server is called, when nobody says.

/// The OS user running this process: its passwd entry, else `$USER`/`$LOGNAME`, else `uid:N`.
pub fn os_user() -> String {
    // SAFETY: getuid cannot fail; getpwuid returns null or a pointer to a static record that we
    // copy out at once (this runs once, at start-up, before any other thread looks users up).
    let uid = unsafe { libc::getuid() };
    let name = unsafe {
        let pw = libc::getpwuid(uid);
        if pw.is_null() || (*pw).pw_name.is_null() {
            None
        } else {
            std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_str()
                .ok()
                .map(str::to_string)
        }
    };
    name.or_else(|| {
        ["USER", "LOGNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
    })
    .unwrap_or_else(|| format!("uid:{uid}"))
}

/// Launchers whose first operand is the real server: `npx -y @scope/server-x` is `server-x`.
const LAUNCHERS: &[&str] = &[
    "npx", "bunx", "pnpx", "uvx", "pipx", "node", "bun", "deno", "python", "python3", "uv", "pnpm", "yarn", "npm",
    "docker", "podman", "env", "steward",
];
/// Words after a launcher that are sub-commands, not the server.
const LAUNCHER_WORDS: &[&str] = &["run", "exec", "dlx", "x", "tool", "proxy", "-m", "--"];

/// A server name for policy and audit, derived from the upstream command line.
pub fn server_name_from_command(command: &[String]) -> String {
    let mut words = command.iter().map(String::as_str).peekable();
    let mut candidate = None;
    while let Some(w) = words.next() {
        let base = w.rsplit('/').next().unwrap_or(w);
        if LAUNCHERS.contains(&base) || LAUNCHER_WORDS.contains(&w) {
            continue;
        }
        if w.starts_with('-') {
            // Flags of launchers that take a value.
            if matches!(w, "--from" | "--with" | "-p" | "--package" | "-e" | "--env" | "--name") {
                words.next();
            }
            continue;
        }
        if w.contains('=') {
            continue;
        }
        candidate = Some(w);
        break;
    }
    let raw = candidate.or(command.first().map(String::as_str)).unwrap_or("upstream");
    clean_name(raw)
}

fn clean_name(raw: &str) -> String {
    // @scope/pkg@1.2.3 → pkg; /usr/bin/server.py → server; image:tag → image
    let mut s = raw;
    if let Some(rest) = s.strip_prefix('@') {
        s = rest.split_once('/').map(|(_, p)| p).unwrap_or(rest);
    }
    s = s.rsplit('/').next().unwrap_or(s);
    s = s.split('@').next().unwrap_or(s);
    s = s.split(':').next().unwrap_or(s);
    for ext in [".js", ".mjs", ".cjs", ".ts", ".py", ".exe"] {
        if let Some(stripped) = s.strip_suffix(ext) {
            s = stripped;
        }
    }
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if cleaned.is_empty() { "upstream".into() } else { cleaned }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(cmd: &str) -> String {
        server_name_from_command(&cmd.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn derives_names() {
        assert_eq!(name("npx -y @modelcontextprotocol/server-github"), "server-github");
        assert_eq!(
            name("npx -y @modelcontextprotocol/server-everything@2026.8.31 stdio"),
            "server-everything"
        );
        assert_eq!(name("uvx mcp-server-time"), "mcp-server-time");
        assert_eq!(name("python -m mcp_server_time"), "mcp_server_time");
        assert_eq!(name("/opt/venv/bin/mcp-server-git --repository ."), "mcp-server-git");
        assert_eq!(name("node /srv/servers/build/index.js"), "index");
        assert_eq!(
            name("docker run -i --rm ghcr.io/github/github-mcp-server"),
            "github-mcp-server"
        );
        assert_eq!(name("github-mcp-server stdio"), "github-mcp-server");
    }
}
