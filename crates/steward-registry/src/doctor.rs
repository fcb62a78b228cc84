//! `steward doctor`: is this repository's MCP and Claude Code governance set up, and does it hold?

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::NaiveDate;
use serde_json::Value;

use crate::discover::{Locations, discover};
use crate::tier::{
    CLAUDE_MD_PATH, HOOK_EVENTS, POLICY_PATH, REGISTRY_PATH, SETTINGS_PATH, Tier, hook_commands, tier_in_claude_md,
};
use crate::{CheckOptions, Registry, check, has_errors, lint};

/// CLAUDE.md files larger than this crowd the model's context.
pub const MAX_CLAUDE_MD_BYTES: u64 = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Pass,
    Warn,
    Fail,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Pass => "PASS",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        })
    }
}

/// One doctor finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub check: &'static str,
    pub message: String,
}

/// What the doctor needs besides the directory.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    pub dir: PathBuf,
    pub today: NaiveDate,
    /// `PATH` to resolve hook commands in.
    pub path_env: Option<std::ffi::OsString>,
}

/// Credential locations a deny rule must cover (`name`, words any of which a rule may mention).
const SECRET_CLASSES: &[(&str, &[&str])] = &[
    (".env files", &[".env"]),
    ("~/.ssh", &[".ssh"]),
    ("credential files", &["credentials", ".aws", "gcloud"]),
];

/// Words in a `permissions.allow` rule that re-open credentials.
const CREDENTIAL_WORDS: &[&str] = &[
    ".env",
    ".ssh",
    "id_rsa",
    "id_ed25519",
    "credentials",
    ".aws",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".kube",
    ".gnupg",
    ".git-credentials",
    ".pem",
    ".key",
    "secrets",
];

/// Runs every check on `opts.dir`.
pub fn doctor(opts: &DoctorOptions) -> Vec<Finding> {
    let dir = &opts.dir;
    let mut out = Vec::new();
    let mut add = |level: Level, check: &'static str, message: String| out.push(Finding { level, check, message });

    // Settings: present, valid, committed.
    let settings_path = dir.join(SETTINGS_PATH);
    let settings: Option<Value> = match std::fs::read_to_string(&settings_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            add(
                Level::Fail,
                "settings",
                format!("{SETTINGS_PATH} is missing (run `steward init --tier standard`)"),
            );
            None
        }
        Err(e) => {
            add(Level::Fail, "settings", format!("cannot read {SETTINGS_PATH}: {e}"));
            None
        }
        Ok(text) => match serde_json::from_str::<Value>(&text) {
            Ok(v) if v.is_object() => {
                add(Level::Pass, "settings", format!("{SETTINGS_PATH} is present"));
                Some(v)
            }
            Ok(_) => {
                add(Level::Fail, "settings", format!("{SETTINGS_PATH} is not a JSON object"));
                None
            }
            Err(e) => {
                add(
                    Level::Fail,
                    "settings",
                    format!("{SETTINGS_PATH} is not valid JSON: {e}"),
                );
                None
            }
        },
    };
    if settings.is_some() {
        match git_tracked(dir, SETTINGS_PATH) {
            GitState::Tracked => add(Level::Pass, "committed", format!("{SETTINGS_PATH} is committed")),
            GitState::Untracked => add(
                Level::Warn,
                "committed",
                format!("{SETTINGS_PATH} is not committed: teammates and CI do not get it"),
            ),
            GitState::NotARepo => {}
            GitState::NoGit(why) => add(
                Level::Warn,
                "committed",
                format!("cannot tell whether {SETTINGS_PATH} is committed: {why}"),
            ),
        }
    }

    let empty = Value::Null;
    let s = settings.as_ref().unwrap_or(&empty);
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let permissions = s.get("permissions");
    let deny = strings(permissions.and_then(|p| p.get("deny")));
    let allow = strings(permissions.and_then(|p| p.get("allow")));

    // Deny rules for secrets.
    if settings.is_some() {
        let missing: Vec<&str> = SECRET_CLASSES
            .iter()
            .filter(|(_, words)| !deny.iter().any(|r| words.iter().any(|w| r.contains(w))))
            .map(|(name, _)| *name)
            .collect();
        if missing.is_empty() {
            add(
                Level::Pass,
                "secrets",
                format!(
                    "permissions.deny covers .env files, ~/.ssh and credential files ({} rule(s))",
                    deny.len()
                ),
            );
        } else {
            add(
                Level::Fail,
                "secrets",
                format!(
                    "permissions.deny has no rule for {} (e.g. \"Read(./.env)\", \"Read(~/.ssh/**)\", \"Read(~/.aws/credentials)\")",
                    missing.join(", ")
                ),
            );
        }
        // Allow rules that re-open credentials.
        let reopening: Vec<&String> = allow
            .iter()
            .filter(|r| CREDENTIAL_WORDS.iter().any(|w| r.to_ascii_lowercase().contains(w)))
            .collect();
        if reopening.is_empty() {
            add(
                Level::Pass,
                "allow-rules",
                "no permissions.allow rule re-opens credentials".into(),
            );
        } else {
            add(
                Level::Fail,
                "allow-rules",
                format!(
                    "permissions.allow re-opens credentials: {}",
                    reopening
                        .iter()
                        .map(|r| format!("\"{r}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if permissions.and_then(|p| p.get("defaultMode")).and_then(Value::as_str) == Some("bypassPermissions") {
            add(
                Level::Fail,
                "bypass",
                "permissions.defaultMode is bypassPermissions: every permission check is skipped".into(),
            );
        }
    }

    // Hooks: present, wired to an existing program.
    if settings.is_some() {
        if s.get("disableAllHooks").and_then(Value::as_bool) == Some(true) {
            add(Level::Fail, "hooks", "disableAllHooks is true: no hook runs".into());
        }
        let hooks = s.get("hooks");
        let commands_for = |event: &str| -> Vec<String> {
            hooks
                .and_then(|h| h.get(event))
                .and_then(Value::as_array)
                .map(|gs| gs.iter().flat_map(hook_commands).collect())
                .unwrap_or_default()
        };
        let pre = commands_for("PreToolUse");
        if pre.is_empty() {
            add(
                Level::Fail,
                "hooks",
                "no PreToolUse hook: built-in tools (Bash, Read, Edit, WebFetch) are not governed".into(),
            );
        } else if !pre.iter().any(|c| c.contains("steward") && c.contains("hook")) {
            add(
                Level::Warn,
                "hooks",
                "PreToolUse hooks are present but none runs `steward hook`".into(),
            );
        } else {
            add(Level::Pass, "hooks", "PreToolUse runs `steward hook`".into());
        }
        let missing_events: Vec<&str> = HOOK_EVENTS[1..]
            .iter()
            .copied()
            .filter(|e| commands_for(e).is_empty())
            .collect();
        if !missing_events.is_empty() {
            add(
                Level::Warn,
                "hooks",
                format!("no hook for {}", missing_events.join(", ")),
            );
        }
        let mut seen = Vec::new();
        for event in HOOK_EVENTS {
            for c in commands_for(event) {
                if seen.contains(&c) {
                    continue;
                }
                seen.push(c.clone());
                match resolve_program(&c, dir, opts.path_env.as_deref()) {
                    Ok(p) => add(
                        Level::Pass,
                        "hook-command",
                        format!("`{c}`: {} is executable", p.display()),
                    ),
                    Err(why) => add(Level::Fail, "hook-command", format!("`{c}`: {why}")),
                }
            }
        }
        let tier = std::fs::read_to_string(dir.join(CLAUDE_MD_PATH))
            .ok()
            .and_then(|t| tier_in_claude_md(&t));
        if let Some(t) = tier.filter(|t| t.disables_bypass()) {
            if permissions
                .and_then(|p| p.get("disableBypassPermissionsMode"))
                .and_then(Value::as_str)
                == Some("disable")
            {
                add(
                    Level::Pass,
                    "bypass",
                    format!("bypass-permissions mode is disabled ({t} tier)"),
                );
            } else {
                add(
                    Level::Fail,
                    "bypass",
                    format!("the {t} tier needs permissions.disableBypassPermissionsMode: \"disable\""),
                );
            }
        }
    }

    // Registry: present and lint-clean; the repository's own MCP configs approved.
    let registry_path = dir.join(REGISTRY_PATH);
    match crate::read_registry_text(&registry_path) {
        Err(crate::RegistryError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            add(Level::Fail, "registry", format!("{REGISTRY_PATH} is missing"))
        }
        Err(e) => add(Level::Fail, "registry", e.to_string()),
        Ok(text) => {
            let diags = lint(&text, REGISTRY_PATH, opts.today);
            let name = registry_path.display().to_string();
            if has_errors(&diags) {
                let first: Vec<String> = diags
                    .iter()
                    .filter(|d| d.severity == steward_policy::Severity::Error)
                    .take(3)
                    .map(|d| d.render(REGISTRY_PATH))
                    .collect();
                add(
                    Level::Fail,
                    "registry",
                    format!("{REGISTRY_PATH} has lint errors:\n    {}", first.join("\n    ")),
                );
            } else if !diags.is_empty() {
                add(
                    Level::Warn,
                    "registry",
                    format!(
                        "{REGISTRY_PATH} is valid with {} warning(s) (`steward registry lint {name}`)",
                        diags.len()
                    ),
                );
            } else {
                add(
                    Level::Pass,
                    "registry",
                    format!("{REGISTRY_PATH} is present and lint-clean"),
                );
            }
            if let Ok(registry) = Registry::from_yaml(&text, &name) {
                project_servers(&registry, dir, opts.today, &mut add);
            }
        }
    }

    // Policy: valid when present.
    let policy_path = dir.join(POLICY_PATH);
    if policy_path.exists() {
        match steward_policy::Policy::from_file(&policy_path) {
            Ok(_) => add(Level::Pass, "policy", format!("{POLICY_PATH} is valid")),
            Err(e) => add(
                Level::Fail,
                "policy",
                format!(
                    "{POLICY_PATH} is invalid: {}",
                    e.to_string().lines().next().unwrap_or("")
                ),
            ),
        }
    } else {
        add(
            Level::Warn,
            "policy",
            format!("{POLICY_PATH} is missing: `steward hook` uses the built-in baseline policy"),
        );
    }

    // CLAUDE.md: present and small.
    let md = [dir.join(CLAUDE_MD_PATH), dir.join(".claude/CLAUDE.md")]
        .into_iter()
        .find(|p| p.is_file());
    match md.and_then(|p| std::fs::metadata(&p).ok().map(|m| (p, m.len()))) {
        None => add(
            Level::Warn,
            "claude-md",
            "CLAUDE.md is missing: the model is not told the rules".into(),
        ),
        Some((p, len)) if len > MAX_CLAUDE_MD_BYTES => add(
            Level::Warn,
            "claude-md",
            format!(
                "{} is {len} bytes, over {MAX_CLAUDE_MD_BYTES}: long instructions crowd the model's context",
                p.display()
            ),
        ),
        Some((_, len)) => add(Level::Pass, "claude-md", format!("CLAUDE.md is present ({len} bytes)")),
    }
    out
}

/// Checks the repository's own client configs (.mcp.json, .cursor, .vscode, .gemini, .codex).
fn project_servers(
    registry: &Registry,
    dir: &Path,
    today: NaiveDate,
    add: &mut impl FnMut(Level, &'static str, String),
) {
    // A home and system root that do not exist: only the project's own files are read.
    let nowhere = dir.join(".claude/steward/.no-such-dir");
    let mut loc = Locations::new(&nowhere, dir);
    loc.system_root = nowhere.clone();
    loc.all_projects = false;
    let report = check(registry, &discover(&loc), today, &CheckOptions::default());
    let bad: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.status.is_violation())
        .map(|r| format!("{} '{}' in {}", r.status, r.server, r.config_path))
        .collect();
    if report.results.is_empty() {
        add(
            Level::Pass,
            "project-servers",
            "the repository configures no MCP servers".into(),
        );
    } else if bad.is_empty() {
        add(
            Level::Pass,
            "project-servers",
            format!(
                "every MCP server the repository configures is approved ({})",
                report.results.len()
            ),
        );
    } else {
        add(
            Level::Fail,
            "project-servers",
            format!(
                "the repository configures servers the registry does not approve: {}",
                bad.join("; ")
            ),
        );
    }
}

enum GitState {
    Tracked,
    Untracked,
    NotARepo,
    NoGit(String),
}

fn git_tracked(dir: &Path, rel: &str) -> GitState {
    let inside = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--is-inside-work-tree"])
        .output();
    match inside {
        Err(e) => return GitState::NoGit(format!("git cannot be run ({e})")),
        Ok(o) if !o.status.success() => return GitState::NotARepo,
        Ok(_) => {}
    }
    match Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["ls-files", "--error-unmatch", "--", rel])
        .output()
    {
        Ok(o) if o.status.success() => GitState::Tracked,
        Ok(_) => GitState::Untracked,
        Err(e) => GitState::NoGit(format!("git cannot be run ({e})")),
    }
}

/// Finds the program a hook command runs: a path (with `$CLAUDE_PROJECT_DIR` expanded) or a name on `PATH`.
pub fn resolve_program(command: &str, project: &Path, path_env: Option<&std::ffi::OsStr>) -> Result<PathBuf, String> {
    let first = first_word(command).ok_or_else(|| "empty command".to_string())?;
    let project_str = project.to_string_lossy();
    let expanded = first
        .replace("${CLAUDE_PROJECT_DIR}", &project_str)
        .replace("$CLAUDE_PROJECT_DIR", &project_str);
    if expanded.contains('/') {
        let p = if Path::new(&expanded).is_absolute() {
            PathBuf::from(&expanded)
        } else {
            project.join(&expanded)
        };
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(format!("{} does not exist or is not executable", p.display()))
        };
    }
    let path = path_env.ok_or_else(|| format!("{expanded} is not on PATH (PATH is not set)"))?;
    std::env::split_paths(path)
        .map(|d| d.join(&expanded))
        .find(|p| is_executable(p))
        .ok_or_else(|| format!("{expanded} is not on PATH; install it or give its full path"))
}

/// The first word of a shell command, without surrounding quotes.
fn first_word(command: &str) -> Option<String> {
    let c = command.trim_start();
    let quote = c.chars().next().filter(|q| *q == '"' || *q == '\'');
    match quote {
        Some(q) => c[1..]
            .find(q)
            .map(|end| c[1..1 + end].to_string())
            .filter(|w| !w.is_empty()),
        None => c.split_whitespace().next().map(str::to_string),
    }
}

fn is_executable(p: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(p) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// `true` when any finding fails.
pub fn failed(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.level == Level::Fail)
}

/// The tier a repository was set up for, from its CLAUDE.md section.
pub fn tier_of(dir: &Path) -> Option<Tier> {
    std::fs::read_to_string(dir.join(CLAUDE_MD_PATH))
        .ok()
        .and_then(|t| tier_in_claude_md(&t))
}
