//! Dangerous-argument detectors. Each finding names a detector set (`call.flags` in policy) and
//! a risk floor the call's risk is raised to.
//!
//! Strings are not grepped: each string argument is parsed as a shell script (brush-parser, see
//! [`tree`]), the commands that would run are resolved through wrappers (`sudo`, `env`, `xargs`,
//! `find -exec`, `sh -c`, `eval`, busybox applets, …) with their words expanded ([`expand`]), and
//! each is judged by its program, its flags and the scope of its targets ([`commands`]). Scripts
//! nested in a command (`sh -c '…'`, `$(…)`, `ssh host '…'`, here-documents fed to a shell,
//! decoded payloads) are scanned as scripts of their own; interpreter one-liners are inspected
//! ([`code`]); SQL is read on its syntax tree ([`sql`]). Policies add custom detectors (regular
//! expressions or word lists), compiled once when the policy loads.
//!
//! Every budget that stops the analysis early (string size, nesting depth, number of nested
//! scripts, commands or strings, time) adds an `analysis-incomplete` finding at HIGH: a call is
//! never let through because a check could not run.

mod code;
mod commands;
mod custom;
mod expand;
mod paths;
pub mod shell;
mod sql;
mod tree;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use custom::{CustomDetector, CustomError};
pub(crate) use paths::credential_path;

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
    "persistence",
    "defense-evasion",
];

/// The flag of the finding a budget adds when it stops the analysis early. It is raised whatever
/// sets are on: it says the detectors could not do their work.
pub const ANALYSIS_INCOMPLETE: &str = "analysis-incomplete";

/// Strings longer than this are scanned up to this length only (and flagged incomplete).
const MAX_SCAN_BYTES: usize = 256 * 1024;
/// Arguments nested deeper than this in JSON are not scanned (and the call is flagged).
const MAX_JSON_DEPTH: usize = 64;
/// Scripts nested in scripts (`sh -c "$(...)"`) deeper than this are not followed.
const MAX_DEPTH: usize = 16;
/// At most this many nested scripts are scanned per call.
const MAX_NESTED: usize = 256;
/// At most this many strings are scanned per call.
const MAX_STRINGS: usize = 10_000;
/// The analysis of one call stops after this long.
const MAX_TIME: Duration = Duration::from_millis(250);
/// At most this many findings are kept per call: the riskiest, at least one per flag.
const MAX_FINDINGS: usize = 64;
/// Results for strings at least this long are remembered (shorter ones are cheap to redo).
const CACHE_MIN_BYTES: usize = 128;
/// Strings remembered per policy; the cache is emptied when it is full.
const CACHE_ENTRIES: usize = 512;

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
    /// Findings of long strings already scanned (an agent retries the same command).
    cache: Arc<Mutex<HashMap<String, Vec<Finding>>>>,
}

impl Detectors {
    /// Every built-in set, no custom detector.
    pub fn builtin() -> Detectors {
        Detectors {
            builtin: (1 << BUILTIN_SETS.len()) - 1,
            ..Detectors::default()
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
            ..Detectors::default()
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
        let mut scan = Scan::new();
        if self.enabled() {
            self.walk(args, 0, &mut scan);
        }
        scan.finish()
    }

    /// Scans one string (a shell command, a SQL statement, a path).
    pub fn scan_str(&self, s: &str) -> Vec<Finding> {
        let mut scan = Scan::new();
        if self.enabled() {
            self.scan_string(s, &mut scan);
        }
        scan.finish()
    }

    fn walk(&self, v: &serde_json::Value, depth: usize, scan: &mut Scan) {
        if depth > MAX_JSON_DEPTH {
            scan.incomplete(format!("arguments nested deeper than {MAX_JSON_DEPTH} levels"));
            return;
        }
        match v {
            serde_json::Value::String(s) => {
                scan.strings += 1;
                if scan.strings > MAX_STRINGS {
                    scan.incomplete(format!("more than {MAX_STRINGS} strings in the arguments"));
                    return;
                }
                self.scan_string(s, scan)
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| self.walk(x, depth + 1, scan)),
            serde_json::Value::Object(o) => o.values().for_each(|x| self.walk(x, depth + 1, scan)),
            _ => {}
        }
    }

    /// Scans a string argument and every script nested in it (from the cache when it is long and
    /// was seen before).
    fn scan_string(&self, s: &str, scan: &mut Scan) {
        if s.len() < CACHE_MIN_BYTES {
            return self.scan_uncached(s, scan);
        }
        if let Some(found) = self.cache.lock().ok().and_then(|c| c.get(s).cloned()) {
            for f in found {
                scan.push_finding(f);
            }
            return;
        }
        let mut own = Scan::new();
        own.deadline = scan.deadline;
        self.scan_uncached(s, &mut own);
        let found = own.finish();
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(s.to_string(), found.clone());
        }
        for f in found {
            scan.push_finding(f);
        }
    }

    fn scan_uncached(&self, s: &str, scan: &mut Scan) {
        self.scan_one(s, 0, scan);
        let mut budget = MAX_NESTED;
        while let Some((nested, depth)) = scan.queue.pop() {
            if budget == 0 {
                scan.queue.clear();
                scan.incomplete(format!("more than {MAX_NESTED} nested scripts"));
                break;
            }
            if Instant::now() > scan.deadline {
                scan.queue.clear();
                scan.incomplete(format!("the analysis took longer than {} ms", MAX_TIME.as_millis()));
                break;
            }
            budget -= 1;
            self.scan_one(&nested, depth, scan);
        }
    }

    fn scan_one(&self, s: &str, depth: usize, scan: &mut Scan) {
        if s.trim().is_empty() {
            return;
        }
        if depth > MAX_DEPTH {
            scan.incomplete(format!("scripts nested deeper than {MAX_DEPTH} levels"));
            return;
        }
        let s = if s.len() > MAX_SCAN_BYTES {
            scan.incomplete(format!("a string longer than {} KiB", MAX_SCAN_BYTES / 1024));
            truncate(s, MAX_SCAN_BYTES)
        } else {
            s
        };
        scan.depth = depth;
        let builtin = self.builtin != 0;
        let start = scan.out.len();
        if builtin {
            sql::scan(s, scan);
            if let Some(path) = credential_path(s.trim()) {
                scan.push("credential-access", Risk::High, format!("path {path}"));
            }
        }
        // Most argument values (names, hosts, ids) are one plain word, and many commands are
        // plain words separated by spaces: a shell splits those at the spaces and nothing else,
        // so the parser is not needed.
        let parsed = if shell::is_plain_word(s) || plain_words(s) {
            tree::Parsed {
                commands: vec![tree::Cmd {
                    words: s.split_ascii_whitespace().map(str::to_string).collect(),
                    ..tree::Cmd::default()
                }],
                ..tree::Parsed::default()
            }
        } else {
            match tree::parse(s) {
                Some(p) => p,
                None => {
                    if tree::nesting(s) > tree::MAX_NESTING {
                        scan.incomplete(format!("nesting deeper than {} levels", tree::MAX_NESTING));
                    }
                    commands::from_lexer(s)
                }
            }
        };
        if parsed.incomplete {
            scan.incomplete("a script with more commands or words than the analysis follows".to_string());
        }
        if builtin {
            commands::scan(&parsed, scan);
            for nested in &parsed.nested {
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
        if !self.custom.is_empty() {
            let text = parsed
                .commands
                .iter()
                .map(|c| c.words.join(" "))
                .collect::<Vec<_>>()
                .join("\n");
            for c in &self.custom {
                c.scan(s, &text, &parsed.commands, scan);
            }
        }
    }
}

/// Findings and nested scripts still to scan, for one call.
pub(crate) struct Scan {
    pub out: Vec<Finding>,
    queue: Vec<(String, usize)>,
    /// The nesting depth of the script being scanned.
    depth: usize,
    strings: usize,
    deadline: Instant,
    /// Why the analysis stopped early, if it did (one finding per call).
    incomplete: Option<String>,
}

impl Default for Scan {
    fn default() -> Self {
        Scan::new()
    }
}

impl Scan {
    pub fn new() -> Scan {
        Scan {
            out: Vec::new(),
            queue: Vec::new(),
            depth: 0,
            strings: 0,
            deadline: Instant::now() + MAX_TIME,
            incomplete: None,
        }
    }

    pub fn push(&mut self, flag: &'static str, risk: Risk, detail: impl Into<String>) {
        self.push_flag(Cow::Borrowed(flag), risk, detail.into());
    }

    pub fn push_flag(&mut self, flag: Cow<'static, str>, risk: Risk, detail: String) {
        self.push_finding(Finding { flag, risk, detail });
    }

    /// Adds a finding. When the cap is reached the riskiest findings stay, and every flag keeps
    /// at least its riskiest finding: a flood of harmless findings cannot push a dangerous one out.
    pub fn push_finding(&mut self, f: Finding) {
        if self.out.iter().any(|x| x.flag == f.flag && x.detail == f.detail) {
            return;
        }
        if self.out.len() < MAX_FINDINGS {
            self.out.push(f);
            return;
        }
        let same_flag = self.out.iter().filter(|x| x.flag == f.flag).count();
        // The weakest finding whose flag has another finding (or of this flag), else the weakest.
        let victim = self
            .out
            .iter()
            .enumerate()
            .filter(|(_, x)| x.flag == f.flag || self.out.iter().filter(|y| y.flag == x.flag).count() > 1)
            .min_by_key(|(_, x)| x.risk)
            .map(|(i, _)| i);
        match victim {
            Some(i) if self.out[i].risk < f.risk || same_flag == 0 => self.out[i] = f,
            _ => {}
        }
    }

    /// Records that a budget stopped the analysis early.
    pub fn incomplete(&mut self, why: String) {
        if self.incomplete.is_none() {
            self.incomplete = Some(why);
        }
    }

    /// Queues a script found inside the one being scanned (the script of `sh -c`, the SQL of
    /// `psql -c`, a `$(…)` substitution).
    pub fn nested(&mut self, s: &str) {
        if self.depth >= MAX_DEPTH {
            self.incomplete(format!("scripts nested deeper than {MAX_DEPTH} levels"));
        } else if self.queue.len() >= MAX_NESTED {
            self.incomplete(format!("more than {MAX_NESTED} nested scripts"));
        } else {
            self.queue.push((s.to_string(), self.depth + 1));
        }
    }

    fn finish(mut self) -> Vec<Finding> {
        if let Some(why) = self.incomplete.take() {
            self.push_finding(Finding {
                flag: Cow::Borrowed(ANALYSIS_INCOMPLETE),
                risk: Risk::High,
                detail: format!("analysis incomplete: {why}"),
            });
        }
        self.out
    }
}

/// Words separated by spaces or tabs, with nothing a shell treats specially (no quotes, escapes,
/// expansions, globs, operators, comments, assignments, new lines).
fn plain_words(s: &str) -> bool {
    s.len() < 4096
        && !s.bytes().any(|b| {
            matches!(
                b,
                b'\n'
                    | b'\r'
                    | b';'
                    | b'&'
                    | b'|'
                    | b'<'
                    | b'>'
                    | b'#'
                    | b'\''
                    | b'"'
                    | b'\\'
                    | b'$'
                    | b'`'
                    | b'('
                    | b')'
                    | b'{'
                    | b'}'
                    | b'*'
                    | b'?'
                    | b'['
                    | b']'
                    | b'~'
                    | b'='
                    | b'!'
            )
        })
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

#[cfg(test)]
mod tests;
