//! Dangerous-argument detectors. Each finding names a detector set (`call.flags` in policy) and
//! a risk floor the call's risk is raised to.
//!
//! Strings are not grepped: each string argument is lexed like a shell command line (quotes,
//! escapes, `${IFS}`, wrappers such as `sudo`/`env`/`sh -c`, `;`/`&&`/`|` chains), read as SQL,
//! and checked for credential paths. Scripts nested in a command (`sh -c '…'`, `$(…)`, `ssh host
//! '…'`, `psql -c '…'`) are scanned as scripts of their own. Policies add custom detectors (regular
//! expressions or word lists), compiled once when the policy loads.

mod commands;
mod custom;
pub mod shell;
mod sql;

use std::borrow::Cow;

pub use custom::{CustomDetector, CustomError};

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
/// At most this many nested scripts are scanned per call: a hostile argument must not turn one
/// call into unbounded work.
const MAX_NESTED: usize = 256;
/// At most this many findings are kept per call.
const MAX_FINDINGS: usize = 64;

/// One dangerous pattern found in a call's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The detector set, e.g. `destructive-fs`, or a custom detector's flag; becomes a
    /// `call.flags` entry.
    pub flag: Cow<'static, str>,
    /// The risk the call is raised to at least.
    pub risk: Risk,
    /// What was seen, e.g. `rm -rf /`.
    pub detail: String,
}

/// The detectors a policy runs.
#[derive(Debug, Clone, Default)]
pub struct Detectors {
    /// Bit `i` set: built-in set `BUILTIN_SETS[i]` is on.
    builtin: u32,
    custom: Vec<CustomDetector>,
}

impl Detectors {
    /// Every built-in set, no custom detector.
    pub fn builtin() -> Detectors {
        Detectors {
            builtin: (1 << BUILTIN_SETS.len()) - 1,
            custom: Vec::new(),
        }
    }

    pub fn none() -> Detectors {
        Detectors::default()
    }

    /// Only the named built-in sets (names from [`BUILTIN_SETS`]; unknown names are ignored).
    pub fn only(sets: &[&str]) -> Detectors {
        let builtin = BUILTIN_SETS
            .iter()
            .enumerate()
            .filter(|(_, s)| sets.contains(s))
            .fold(0, |m, (i, _)| m | (1 << i));
        Detectors {
            builtin,
            custom: Vec::new(),
        }
    }

    /// Adds custom detectors.
    pub fn with_custom(mut self, custom: Vec<CustomDetector>) -> Detectors {
        self.custom = custom;
        self
    }

    pub fn enabled(&self) -> bool {
        self.builtin != 0 || !self.custom.is_empty()
    }

    /// The enabled built-in sets.
    pub fn builtin_sets(&self) -> impl Iterator<Item = &'static str> + '_ {
        BUILTIN_SETS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.builtin & (1 << i) != 0)
            .map(|(_, s)| *s)
    }

    /// The risk floors custom detectors raise calls to.
    pub fn custom_risks(&self) -> impl Iterator<Item = Risk> + '_ {
        self.custom.iter().map(|c| c.risk())
    }

    /// The flags custom detectors raise.
    pub fn custom_flags(&self) -> impl Iterator<Item = &str> {
        self.custom.iter().map(|c| c.flag())
    }

    /// Scans every string inside `args`, including object keys' values at any depth.
    pub fn scan(&self, args: &serde_json::Value) -> Vec<Finding> {
        let mut scan = Scan::default();
        if self.enabled() {
            self.walk(args, 0, &mut scan);
        }
        scan.out
    }

    /// Scans one string (a shell command, a SQL statement, a path).
    pub fn scan_str(&self, s: &str) -> Vec<Finding> {
        let mut scan = Scan::default();
        if self.enabled() {
            self.scan_string(s, &mut scan);
        }
        scan.out
    }

    fn walk(&self, v: &serde_json::Value, depth: usize, scan: &mut Scan) {
        if depth > MAX_DEPTH {
            return;
        }
        match v {
            serde_json::Value::String(s) => self.scan_string(s, scan),
            serde_json::Value::Array(a) => a.iter().for_each(|x| self.walk(x, depth + 1, scan)),
            serde_json::Value::Object(o) => o.values().for_each(|x| self.walk(x, depth + 1, scan)),
            _ => {}
        }
    }

    /// Scans a string argument and every script nested in it.
    fn scan_string(&self, s: &str, scan: &mut Scan) {
        self.scan_one(s, 0, scan);
        let mut budget = MAX_NESTED;
        while let Some((nested, depth)) = scan.queue.pop() {
            if budget == 0 {
                scan.queue.clear();
                break;
            }
            budget -= 1;
            self.scan_one(&nested, depth, scan);
        }
    }

    fn scan_one(&self, s: &str, depth: usize, scan: &mut Scan) {
        if depth > MAX_DEPTH || s.trim().is_empty() {
            return;
        }
        let s = truncate(s, MAX_SCAN_BYTES);
        scan.depth = depth;
        let builtin = self.builtin != 0;
        let start = scan.out.len();
        if builtin {
            sql::scan(s, scan);
            if let Some(path) = credential_path(s.trim()) {
                scan.push("credential-access", Risk::High, format!("path {path}"));
            }
        }
        // Most argument values (names, hosts, ids) are one plain word: no lexing needed.
        let word = [s];
        let plain = shell::is_plain_word(s);
        let script = if plain { shell::Script::default() } else { shell::lex(s) };
        let texts = script.texts();
        let lexed = script.commands(&texts);
        let one = [shell::Command {
            join: shell::Join::Sequence,
            words: &word,
            redirect_out: &[],
            redirect_in: &[],
        }];
        let cmds: &[shell::Command<'_>] = if plain { &one } else { &lexed };
        if builtin {
            commands::scan(&script, cmds, scan);
            for nested in &script.nested {
                scan.nested(nested);
            }
            if self.builtin != (1 << BUILTIN_SETS.len()) - 1 {
                let on = self.builtin;
                let found = scan.out.split_off(start);
                scan.out.extend(found.into_iter().filter(|f| {
                    BUILTIN_SETS
                        .iter()
                        .position(|b| *b == f.flag)
                        .is_none_or(|i| on & (1 << i) != 0)
                }));
            }
        }
        let text = if plain { s } else { script.text() };
        for c in &self.custom {
            c.scan(s, text, cmds, scan);
        }
    }
}

/// Findings and nested scripts still to scan, for one call.
#[derive(Default)]
pub(crate) struct Scan {
    pub out: Vec<Finding>,
    queue: Vec<(String, usize)>,
    /// The nesting depth of the script being scanned.
    depth: usize,
}

impl Scan {
    pub fn push(&mut self, flag: &'static str, risk: Risk, detail: impl Into<String>) {
        self.push_flag(Cow::Borrowed(flag), risk, detail.into());
    }

    pub fn push_flag(&mut self, flag: Cow<'static, str>, risk: Risk, detail: String) {
        if self.out.len() < MAX_FINDINGS && !self.out.iter().any(|f| f.flag == flag && f.detail == detail) {
            self.out.push(Finding { flag, risk, detail });
        }
    }

    /// Queues a script found inside the one being scanned (the script of `sh -c`, the SQL of
    /// `psql -c`, a `$(…)` substitution).
    pub fn nested(&mut self, s: &str) {
        if self.depth < MAX_DEPTH && self.queue.len() < MAX_NESTED {
            self.queue.push((s.to_string(), self.depth + 1));
        }
    }
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
    let b = word.as_bytes();
    if b.len() < 4 || b.len() > 4096 {
        return None;
    }
    // Cheap gate, one pass: every credential path has a `/`, starts with `.`, or is an `id_*`
    // key or a `.key`/`.pem` file; none has white space.
    let mut candidate = b[0] == b'.';
    for (i, &c) in b.iter().enumerate() {
        if c.is_ascii_whitespace() {
            return None;
        }
        candidate |= c == b'/' || c == b'_' && i >= 2 && b[i - 2..i].eq_ignore_ascii_case(b"id");
    }
    let ends_ci = |suffix: &[u8]| b[b.len() - suffix.len()..].eq_ignore_ascii_case(suffix);
    if !candidate && !ends_ci(b".key") && !ends_ci(b".pem") {
        return None;
    }
    let lower: Cow<'_, str> = if b.iter().any(u8::is_ascii_uppercase) {
        Cow::Owned(word.to_ascii_lowercase())
    } else {
        Cow::Borrowed(word)
    };
    let lower = lower.as_ref();
    let file = lower.rsplit('/').next().unwrap_or(lower);
    let sensitive_file = matches!(
        file,
        "id_rsa"
            | "id_dsa"
            | "id_ecdsa"
            | "id_ed25519"
            | "shadow"
            | "gshadow"
            | ".netrc"
            | ".pgpass"
            | ".git-credentials"
            | "credentials"
            | ".npmrc"
            | ".pypirc"
            | "master.key"
            | ".vault-token"
            | ".boto"
            | "credentials.db"
            | "access_tokens.db"
            | "application_default_credentials.json"
    ) || (file == ".env"
        || (file.starts_with(".env.")
            && !file.ends_with(".example")
            && !file.ends_with(".sample")
            && !file.ends_with(".template")
            && !file.ends_with(".dist")))
        || (file.ends_with(".pem") || file.ends_with(".key"))
            && (lower.contains("private") || lower.contains("/.ssh/"));
    let secret_dir = lower
        .split('/')
        .any(|c| matches!(c, ".ssh" | ".aws" | ".kube" | ".docker" | ".gnupg" | "gcloud" | "proc"));
    if !sensitive_file && !secret_dir {
        return None;
    }
    let sensitive_dir = lower.contains(".ssh/")
        && !file.ends_with(".pub")
        && file != "known_hosts"
        && file != "config"
        && file != "authorized_keys"
        && !file.is_empty()
        || lower.contains(".aws/credentials")
        || lower.contains(".kube/config")
        || lower.contains(".docker/config.json")
        || lower.contains(".gnupg/private-keys")
        || lower.contains(".gnupg/secring")
        || lower.contains(".config/gcloud/")
        || lower.starts_with("/proc/") && lower.ends_with("/environ");
    let shadow_ok = !matches!(file, "shadow" | "gshadow") || lower.starts_with("/etc/");
    let credentials_ok = file != "credentials" || lower.contains(".aws/") || lower.contains(".config/");
    ((sensitive_file && shadow_ok && credentials_ok) || sensitive_dir).then_some(word)
}

#[cfg(test)]
mod tests;
