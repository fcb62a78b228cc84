//! Dangerous-argument detectors. Each finding names a detector set (`call.flags` in policy) and
//! a risk floor the call's risk is raised to.
//!
//! Strings are not grepped: each string argument is lexed like a shell command line (quotes,
//! escapes, `${IFS}`, wrappers such as `sudo`/`env`/`sh -c`, `;`/`&&`/`|` chains), read as SQL,
//! and checked for credential paths.

mod commands;
pub mod shell;
mod sql;

use crate::model::Risk;

/// The names of the built-in detector sets.
pub const BUILTIN_SETS: &[&str] = &[
    "destructive-fs",
    "disk",
    "service-disruption",
    "firewall",
    "permissions",
    "remote-code",
    "exfiltration",
    "credential-access",
    "destructive-sql",
    "destructive-git",
    "infra-destroy",
    "force-flags",
    "privilege-escalation",
];

/// Strings longer than this are scanned up to this length only.
const MAX_SCAN_BYTES: usize = 256 * 1024;
/// Nesting (`sh -c "$(...)"` inside arguments inside objects) deeper than this is not followed.
const MAX_DEPTH: usize = 16;

/// One dangerous pattern found in a call's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The detector set, e.g. `destructive-fs`; becomes a `call.flags` entry.
    pub flag: &'static str,
    /// The risk the call is raised to at least.
    pub risk: Risk,
    /// What was seen, e.g. `rm -rf /`.
    pub detail: String,
}

/// The detectors a policy runs.
#[derive(Debug, Clone)]
pub struct Detectors {
    builtin: bool,
}

impl Detectors {
    pub fn builtin() -> Detectors {
        Detectors { builtin: true }
    }

    pub fn none() -> Detectors {
        Detectors { builtin: false }
    }

    pub fn enabled(&self) -> bool {
        self.builtin
    }

    /// Scans every string inside `args`.
    pub fn scan(&self, args: &serde_json::Value) -> Vec<Finding> {
        let mut out = Vec::new();
        if self.builtin {
            walk(args, 0, &mut out);
        }
        out
    }

    /// Scans one string (a shell command, a SQL statement, a path).
    pub fn scan_str(&self, s: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        if self.builtin {
            scan_string(s, 0, &mut out);
        }
        out
    }
}

fn walk(v: &serde_json::Value, depth: usize, out: &mut Vec<Finding>) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        serde_json::Value::String(s) => scan_string(s, 0, out),
        serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, depth + 1, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, depth + 1, out)),
        _ => {}
    }
}

pub(crate) fn push(out: &mut Vec<Finding>, flag: &'static str, risk: Risk, detail: impl Into<String>) {
    let detail = detail.into();
    if !out.iter().any(|f| f.flag == flag && f.detail == detail) {
        out.push(Finding { flag, risk, detail });
    }
}

fn scan_string(s: &str, depth: usize, out: &mut Vec<Finding>) {
    if depth > MAX_DEPTH || s.trim().is_empty() {
        return;
    }
    let s = truncate(s, MAX_SCAN_BYTES);
    sql::scan(s, out);
    if let Some(path) = credential_path(s.trim()) {
        push(out, "credential-access", Risk::High, format!("path {path}"));
    }
    let script = shell::lex(s);
    commands::scan(&script, depth, out);
    for nested in &script.nested {
        scan_string(nested, depth + 1, out);
    }
}

/// Re-scans a string found inside a command (the script of `sh -c`, the SQL of `psql -c`).
pub(crate) fn scan_nested(s: &str, depth: usize, out: &mut Vec<Finding>) {
    scan_string(s, depth + 1, out);
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Files that hold credentials: reading, copying or sending them is credential access.
pub(crate) fn credential_path(word: &str) -> Option<&str> {
    if word.is_empty() || word.len() > 4096 || word.contains(char::is_whitespace) {
        return None;
    }
    let lower = word.to_ascii_lowercase();
    let file = lower.rsplit('/').next().unwrap_or(&lower);
    let sensitive_file = matches!(
        file,
        "id_rsa" | "id_dsa" | "id_ecdsa" | "id_ed25519" | "shadow" | "gshadow" | ".netrc" | ".pgpass"
            | ".git-credentials" | "credentials" | ".npmrc" | ".pypirc" | "master.key"
    ) || (file == ".env"
        || (file.starts_with(".env.")
            && !file.ends_with(".example")
            && !file.ends_with(".sample")
            && !file.ends_with(".template")));
    let sensitive_dir = lower.contains(".ssh/")
        && !file.ends_with(".pub")
        && file != "known_hosts"
        && file != "config"
        || lower.contains(".aws/credentials")
        || lower.contains(".kube/config")
        || lower.contains(".docker/config.json")
        || lower.contains(".gnupg/")
        || lower.starts_with("/proc/") && lower.ends_with("/environ");
    let shadow_ok = file != "shadow" || lower.starts_with("/etc/") || lower == "shadow";
    let credentials_ok = file != "credentials" || lower.contains(".aws/");
    ((sensitive_file && shadow_ok && credentials_ok) || sensitive_dir).then_some(word)
}

#[cfg(test)]
mod tests;
