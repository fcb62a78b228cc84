//! Governance tiers and `steward init`: a project's Claude Code settings, CLAUDE.md section,
//! registry and policy for one tier.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

/// How tightly a project is governed. Each tier includes the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Starter,
    Standard,
    Strict,
    Regulated,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Starter, Tier::Standard, Tier::Strict, Tier::Regulated];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Starter => "starter",
            Tier::Standard => "standard",
            Tier::Strict => "strict",
            Tier::Regulated => "regulated",
        }
    }

    /// The tier's policy (`.claude/steward/policy.yaml`).
    pub fn policy_yaml(self) -> &'static str {
        match self {
            Tier::Starter => include_str!("../tiers/starter.policy.yaml"),
            Tier::Standard => include_str!("../tiers/standard.policy.yaml"),
            Tier::Strict => include_str!("../tiers/strict.policy.yaml"),
            Tier::Regulated => include_str!("../tiers/regulated.policy.yaml"),
        }
    }

    /// The tier's rules for the model (inside the CLAUDE.md markers).
    pub fn claude_md(self) -> &'static str {
        match self {
            Tier::Starter => include_str!("../tiers/starter.claude.md"),
            Tier::Standard => include_str!("../tiers/standard.claude.md"),
            Tier::Strict => include_str!("../tiers/strict.claude.md"),
            Tier::Regulated => include_str!("../tiers/regulated.claude.md"),
        }
    }

    /// `permissions.deny` rules: secrets from the first tier on, more commands each tier up.
    pub fn deny_rules(self) -> Vec<&'static str> {
        let mut rules = vec![
            "Read(./.env)",
            "Read(./.env.*)",
            "Read(./**/.env)",
            "Read(./**/.env.*)",
            "Read(~/.ssh/**)",
            "Read(~/.aws/credentials)",
            "Read(~/.config/gcloud/**)",
            "Read(./**/credentials.json)",
        ];
        if self >= Tier::Standard {
            rules.extend([
                "Edit(./.env)",
                "Edit(./.env.*)",
                "Edit(~/.ssh/**)",
                "Read(./**/*.pem)",
                "Read(./**/*.key)",
                "Read(~/.kube/config)",
                "Read(~/.docker/config.json)",
                "Read(~/.netrc)",
                "Read(~/.npmrc)",
                "Read(~/.pypirc)",
                "Read(~/.git-credentials)",
                "Read(~/.gnupg/**)",
            ]);
        }
        if self >= Tier::Strict {
            rules.extend([
                "Bash(sudo *)",
                "Bash(su *)",
                "Bash(curl *)",
                "Bash(wget *)",
                "Bash(ssh *)",
                "Bash(scp *)",
                "Bash(git push --force *)",
                "Bash(git push -f *)",
                "Bash(chmod 777 *)",
            ]);
        }
        if self >= Tier::Regulated {
            rules.extend([
                "WebFetch",
                "WebSearch",
                "Bash(nc *)",
                "Bash(ncat *)",
                "Bash(telnet *)",
                "Bash(ftp *)",
                "Bash(rsync *)",
            ]);
        }
        rules
    }

    /// Whether Claude Code's bypass-permissions mode is switched off.
    pub fn disables_bypass(self) -> bool {
        self >= Tier::Strict
    }

    /// A registry for a new project: no servers yet, the tier's review rules.
    pub fn registry_yaml(self, organisation: &str, today: NaiveDate) -> String {
        let (review_days, bump) = match self {
            Tier::Starter => (
                365,
                "patch: auto-approve\n  minor: auto-approve\n  major: security-review",
            ),
            Tier::Standard => (
                180,
                "patch: auto-approve\n  minor: security-review\n  major: security-review",
            ),
            Tier::Strict => (
                90,
                "patch: security-review\n  minor: security-review\n  major: full-review",
            ),
            Tier::Regulated => (90, "patch: full-review\n  minor: full-review\n  major: full-review"),
        };
        let org = serde_json::to_string(organisation).unwrap_or_else(|_| "\"project\"".into());
        format!(
            r#"# Approved MCP servers for this project (written by `steward init --tier {tier}`).
# `steward registry lint .claude/steward/registry.yaml` checks this file;
# `steward registry check` checks every client config on a machine against it.
# Format: docs/registry.md. An approved entry looks like:
#
#   - name: github
#     version: "0.6.2"
#     source: https://github.com/modelcontextprotocol/servers
#     npm_package: "@modelcontextprotocol/server-github"
#     approved_by: security@example.com
#     approved_date: {today}
#     expires: {expiry}
#     data_scope: INTERNAL        # PUBLIC | INTERNAL | CONFIDENTIAL | RESTRICTED
#     risk: MEDIUM                # LOW | MEDIUM | HIGH | CRITICAL
#     rationale: Issue triage and code review.
#     restrictions: [read-only token]
#     config:
#       command: npx
#       args: ["-y", "@modelcontextprotocol/server-github@0.6.2"]
#       env: {{GITHUB_PERSONAL_ACCESS_TOKEN: "${{GITHUB_TOKEN}}"}}
metadata:
  organization: {org}
  tier: {tier}
  updated: "{today}"
  review_cadence_days: {review_days}

approved: []

pending_review: []

denied: []

version_bump_policy:
  {bump}

incident_response:
  contact: security team
  steps:
    - move the server's entry from approved to denied, with the reason
    - run `steward registry check` on every machine and in CI
    - review the audit log (`steward audit query --tool 'SERVER/*'`)
"#,
            tier = self.as_str(),
            today = today,
            expiry = today + chrono::Days::new(review_days),
        )
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tier::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown tier '{s}' (expected starter, standard, strict or regulated)"))
    }
}

/// The project-relative files `init` writes.
pub const SETTINGS_PATH: &str = ".claude/settings.json";
pub const REGISTRY_PATH: &str = ".claude/steward/registry.yaml";
pub const POLICY_PATH: &str = ".claude/steward/policy.yaml";
pub const CLAUDE_MD_PATH: &str = "CLAUDE.md";

/// The hook events `init` wires to `steward hook`.
pub const HOOK_EVENTS: [&str; 4] = ["PreToolUse", "PostToolUse", "SessionStart", "ConfigChange"];

/// The markers around Steward's CLAUDE.md section; re-running `init` replaces what is between.
pub const CLAUDE_MD_BEGIN: &str = "<!-- steward:begin";
pub const CLAUDE_MD_END: &str = "<!-- steward:end -->";

/// What `init` needs.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub dir: PathBuf,
    pub tier: Tier,
    /// Overwrite an existing registry or policy (settings.json is always merged, never replaced,
    /// unless it is not valid JSON).
    pub force: bool,
    /// The command the hooks run (`steward hook`).
    pub hook_command: String,
    pub today: NaiveDate,
}

/// What `init` did to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated(String),
    Unchanged,
    /// Left as it was, and why.
    Kept(String),
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not valid JSON ({message}); fix it, or run again with --force to replace it (a .bak copy is kept)"
    )]
    BadSettings { path: String, message: String },
}

/// Sets up `opts.dir` for `opts.tier`. Returns what happened to each file.
pub fn init(opts: &InitOptions) -> Result<Vec<(String, Action)>, InitError> {
    let dir = &opts.dir;
    let mut done = Vec::new();

    // .claude/settings.json: merged.
    let settings_path = dir.join(SETTINGS_PATH);
    let existing = read_optional(&settings_path)?;
    let (settings, action) = match existing {
        None => (tier_settings(opts), Action::Created),
        Some(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(mut current)) => {
                let changes = merge_settings(&mut current, opts);
                let action = if changes.is_empty() {
                    Action::Unchanged
                } else {
                    Action::Updated(changes.join(", "))
                };
                (Value::Object(current), action)
            }
            Ok(_) | Err(_) if opts.force => {
                let backup = settings_path.with_extension("json.bak");
                write(&backup, &text)?;
                (
                    tier_settings(opts),
                    Action::Updated(format!("replaced (the old file is {})", backup.display())),
                )
            }
            Ok(_) => {
                return Err(InitError::BadSettings {
                    path: settings_path.display().to_string(),
                    message: "not an object".into(),
                });
            }
            Err(e) => {
                return Err(InitError::BadSettings {
                    path: settings_path.display().to_string(),
                    message: e.to_string(),
                });
            }
        },
    };
    if action != Action::Unchanged {
        let text = serde_json::to_string_pretty(&settings).unwrap_or_default() + "\n";
        write(&settings_path, &text)?;
    }
    done.push((SETTINGS_PATH.to_string(), action));

    // Registry and policy: written unless they exist (then only with --force).
    let org = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "project".into());
    for (rel, content) in [
        (REGISTRY_PATH, opts.tier.registry_yaml(&org, opts.today)),
        (POLICY_PATH, opts.tier.policy_yaml().to_string()),
    ] {
        let path = dir.join(rel);
        let action = match read_optional(&path)? {
            None => {
                write(&path, &content)?;
                Action::Created
            }
            Some(old) if old == content => Action::Unchanged,
            Some(_) if opts.force => {
                write(&path, &content)?;
                Action::Updated("overwritten (--force)".into())
            }
            Some(_) => Action::Kept("exists; run with --force to overwrite it".into()),
        };
        done.push((rel.to_string(), action));
    }

    // CLAUDE.md: Steward's marked section replaced or appended; the rest is the user's.
    let md_path = dir.join(CLAUDE_MD_PATH);
    let section = format!(
        "{CLAUDE_MD_BEGIN} tier={} (written by `steward init`; re-running it replaces this section) -->\n{}{CLAUDE_MD_END}\n",
        opts.tier,
        opts.tier.claude_md()
    );
    let (text, action) = match read_optional(&md_path)? {
        None => (section, Action::Created),
        Some(old) => {
            let new = replace_section(&old, &section);
            if new == old {
                (old, Action::Unchanged)
            } else {
                (new, Action::Updated("Steward section written".into()))
            }
        }
    };
    if action != Action::Unchanged {
        write(&md_path, &text)?;
    }
    done.push((CLAUDE_MD_PATH.to_string(), action));
    Ok(done)
}

/// A fresh settings.json for the tier.
fn tier_settings(opts: &InitOptions) -> Value {
    let mut m = Map::new();
    m.insert(
        "$schema".into(),
        json!("https://json.schemastore.org/claude-code-settings.json"),
    );
    merge_settings(&mut m, opts);
    Value::Object(m)
}

fn hook_group(event: &str, command: &str) -> Value {
    let hook = json!({"type": "command", "command": command, "timeout": if event == "SessionStart" { 60 } else { 30 }});
    match event {
        "PreToolUse" | "PostToolUse" => json!({"matcher": "*", "hooks": [hook]}),
        _ => json!({"hooks": [hook]}),
    }
}

/// Adds the tier's deny rules, hooks and bypass switch to `settings`, keeping everything the
/// user has. Returns what was added.
pub fn merge_settings(settings: &mut Map<String, Value>, opts: &InitOptions) -> Vec<String> {
    let mut changes = Vec::new();
    let permissions = object_at(settings, "permissions");
    let deny = array_at(permissions, "deny");
    let mut added = 0;
    for rule in opts.tier.deny_rules() {
        if !deny.iter().any(|r| r.as_str() == Some(rule)) {
            deny.push(json!(rule));
            added += 1;
        }
    }
    if added > 0 {
        changes.push(format!("{added} deny rule(s)"));
    }
    if opts.tier.disables_bypass()
        && permissions.get("disableBypassPermissionsMode").and_then(Value::as_str) != Some("disable")
    {
        permissions.insert("disableBypassPermissionsMode".into(), json!("disable"));
        changes.push("disableBypassPermissionsMode".into());
    }

    let hooks = object_at(settings, "hooks");
    for event in HOOK_EVENTS {
        let groups = array_at(hooks, event);
        let present = groups
            .iter()
            .any(|g| hook_commands(g).iter().any(|c| c == &opts.hook_command));
        if !present {
            groups.push(hook_group(event, &opts.hook_command));
            changes.push(format!("{event} hook"));
        }
    }
    changes
}

/// The `command` of every hook in a hook group.
pub fn hook_commands(group: &Value) -> Vec<String> {
    group
        .get("hooks")
        .and_then(Value::as_array)
        .map(|hs| {
            hs.iter()
                .filter_map(|h| h.get("command").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn object_at<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = m.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(o) => o,
        _ => unreachable!("just made an object"),
    }
}

fn array_at<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let v = m.entry(key.to_string()).or_insert_with(|| Value::Array(Vec::new()));
    if !v.is_array() {
        *v = Value::Array(Vec::new());
    }
    match v {
        Value::Array(a) => a,
        _ => unreachable!("just made an array"),
    }
}

/// Replaces the marked section in `text`, or appends it.
fn replace_section(text: &str, section: &str) -> String {
    if let Some(start) = text.find(CLAUDE_MD_BEGIN)
        && let Some(end_rel) = text[start..].find(CLAUDE_MD_END)
    {
        let mut end = start + end_rel + CLAUDE_MD_END.len();
        if text[end..].starts_with('\n') {
            end += 1;
        }
        return format!("{}{section}{}", &text[..start], &text[end..]);
    }
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(section);
    out
}

/// The tier named in a CLAUDE.md section, if any.
pub fn tier_in_claude_md(text: &str) -> Option<Tier> {
    let start = text.find(CLAUDE_MD_BEGIN)?;
    let rest = &text[start + CLAUDE_MD_BEGIN.len()..];
    let tier = rest.trim_start().strip_prefix("tier=")?;
    tier.split(|c: char| !c.is_ascii_alphanumeric()).next()?.parse().ok()
}

fn read_optional(path: &Path) -> Result<Option<String>, InitError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(InitError::Io {
            what: "read",
            path: path.display().to_string(),
            source,
        }),
    }
}

fn write(path: &Path, text: &str) -> Result<(), InitError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| InitError::Io {
            what: "create directory",
            path: parent.display().to_string(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| InitError::Io {
        what: "write",
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_policies_and_registries_are_valid() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        for t in Tier::ALL {
            steward_policy::Policy::from_yaml(t.policy_yaml(), t.as_str()).unwrap();
            let yaml = t.registry_yaml("acme \"x\"", today);
            let diags = crate::lint(&yaml, "registry.yaml", today);
            assert!(diags.is_empty(), "{t}: {diags:?}");
        }
    }

    #[test]
    fn section_is_replaced_not_duplicated() {
        let once = replace_section(
            "# Project\n\nOur notes.\n",
            "<!-- steward:begin tier=starter -->\nA\n<!-- steward:end -->\n",
        );
        let twice = replace_section(&once, "<!-- steward:begin tier=strict -->\nB\n<!-- steward:end -->\n");
        assert_eq!(
            twice,
            "# Project\n\nOur notes.\n\n<!-- steward:begin tier=strict -->\nB\n<!-- steward:end -->\n"
        );
        assert_eq!(tier_in_claude_md(&twice), Some(Tier::Strict));
    }

    #[test]
    fn merge_keeps_user_entries() {
        let opts = InitOptions {
            dir: PathBuf::from("."),
            tier: Tier::Strict,
            force: false,
            hook_command: "steward hook".into(),
            today: NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
        };
        let mut m = serde_json::from_str::<Value>(
            r#"{"permissions":{"deny":["Read(./.env)","Bash(make deploy)"],"allow":["Bash(npm test)"]},
                "hooks":{"PreToolUse":[{"matcher":"Bash","hooks":[{"type":"command","command":"./lint.sh"}]}]}}"#,
        )
        .unwrap();
        let Value::Object(ref mut map) = m else { panic!() };
        let changes = merge_settings(map, &opts);
        assert!(!changes.is_empty());
        assert!(merge_settings(map, &opts).is_empty(), "merging twice changes nothing");
        let deny = m["permissions"]["deny"].as_array().unwrap();
        assert_eq!(deny.iter().filter(|r| *r == "Read(./.env)").count(), 1);
        assert!(deny.iter().any(|r| r == "Bash(make deploy)"));
        assert_eq!(m["permissions"]["allow"][0], "Bash(npm test)");
        assert_eq!(m["permissions"]["disableBypassPermissionsMode"], "disable");
        assert_eq!(m["hooks"]["PreToolUse"].as_array().unwrap().len(), 2);
    }
}
