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

/// A server name for policy and audit, derived from the upstream command line:
/// `npx -y @scope/server-x` → `server-x`, `uvx mcp-server-time==1.0` → `mcp-server-time`,
/// `python -m mcp_server_fetch.main` → `mcp_server_fetch`, and a script path such as
/// `node path/to/pkg/dist/index.js` → the `name` of the nearest `package.json` above it.
pub fn server_name_from_command(command: &[String]) -> String {
    let mut words = command.iter().map(String::as_str).peekable();
    let mut candidate = None;
    let mut module = false;
    while let Some(w) = words.next() {
        let base = w.rsplit('/').next().unwrap_or(w);
        if w == "-m" {
            module = true;
            continue;
        }
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
        if is_env_assignment(w) {
            continue;
        }
        candidate = Some(w);
        break;
    }
    let Some(raw) = candidate.or(command.first().map(String::as_str)) else {
        return "upstream".into();
    };
    if module {
        // A module path names its package first: `pkg.server` is `pkg`.
        return clean_name(raw.split('.').next().unwrap_or(raw));
    }
    if let Some(name) = script_package_name(raw) {
        return clean_name(&name);
    }
    // `pkg==1.2`, `pkg>=1`, `pkg[extra]`: a Python requirement names its package first.
    clean_name(raw.split(['=', '<', '>', '!', '~', '[']).next().unwrap_or(raw))
}

/// `NAME=value` as `env` takes it (not a requirement such as `pkg==1.0`).
fn is_env_assignment(w: &str) -> bool {
    match w.split_once('=') {
        Some((name, value)) => {
            !name.is_empty()
                && !value.starts_with('=')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

/// For a JavaScript or TypeScript file: the `name` in the nearest `package.json` in its
/// directory or above (a built entry point such as `dist/index.js` says nothing by itself).
fn script_package_name(word: &str) -> Option<String> {
    if ![".js", ".mjs", ".cjs", ".ts", ".mts"].iter().any(|e| word.ends_with(e)) {
        return None;
    }
    let path = std::path::Path::new(word);
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    // A few levels: an entry point sits in dist/, build/ or lib/ of its package.
    for dir in path.ancestors().skip(1).take(6) {
        let manifest = dir.join("package.json");
        let Ok(meta) = std::fs::metadata(&manifest) else {
            continue;
        };
        if meta.len() > 1024 * 1024 {
            return None;
        }
        let text = std::fs::read_to_string(&manifest).ok()?;
        let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
        return doc
            .get("name")
            .and_then(|n| n.as_str())
            .filter(|n| !n.trim().is_empty())
            .map(str::to_string);
    }
    None
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
        assert_eq!(name("uvx mcp-server-fetch==2025.4.7"), "mcp-server-fetch");
        assert_eq!(name("uvx --from mcp-server-git mcp-server-git"), "mcp-server-git");
        assert_eq!(name("python3 -m mcp_server_fetch.main --flag"), "mcp_server_fetch");
        assert_eq!(name("env DEBUG=1 uvx mcp-server-time"), "mcp-server-time");
    }

    #[test]
    fn a_script_is_named_by_its_package() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("node_modules/@acme/weather-server");
        std::fs::create_dir_all(pkg.join("dist")).unwrap();
        std::fs::write(
            pkg.join("package.json"),
            r#"{"name": "@acme/weather-server", "version": "1.0.0"}"#,
        )
        .unwrap();
        std::fs::write(pkg.join("dist/index.js"), "").unwrap();
        let script = pkg.join("dist/index.js").display().to_string();
        assert_eq!(name(&format!("node {script}")), "weather-server");
        // Without a package.json above it, the file's own name.
        let lone = dir.path().join("server.mjs");
        std::fs::write(&lone, "").unwrap();
        assert_eq!(name(&format!("node {}", lone.display())), "server");
    }
}
