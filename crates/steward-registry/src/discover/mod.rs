//! Finding the MCP servers every known client is configured to start.
//!
//! Each client keeps its servers in its own files and shapes (see docs/registry.md); this
//! module reads them all and reports each server with where it was found. Unreadable or
//! malformed files are reported as problems, never as a crash.

mod claude;
mod clients;
mod codex;
pub mod jsonc;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

/// Client config files larger than this are not read (`~/.claude.json` keeps history, so the
/// limit is generous).
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024 * 1024;

/// Where to look.
#[derive(Debug, Clone)]
pub struct Locations {
    /// The user's home directory (`$HOME`).
    pub home: PathBuf,
    /// The project (repository) directory.
    pub project: PathBuf,
    /// Prefix for system-wide files (`/etc/claude-code/managed-mcp.json`...): `/` on a real
    /// machine, a fixture directory in tests.
    pub system_root: PathBuf,
    /// Report the per-project servers of every project in `~/.claude.json`, not only `project`'s.
    pub all_projects: bool,
}

impl Locations {
    pub fn new(home: impl Into<PathBuf>, project: impl Into<PathBuf>) -> Locations {
        Locations {
            home: home.into(),
            project: project.into(),
            system_root: PathBuf::from("/"),
            all_projects: true,
        }
    }

    fn system(&self, path: &str) -> PathBuf {
        self.system_root.join(path.trim_start_matches('/'))
    }
}

/// One server entry in one client config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundServer {
    /// `claude-code`, `claude-desktop`, `cursor`, `vscode`, `windsurf`, `codex`, `gemini-cli`.
    pub client: &'static str,
    /// `user`, `project`, `local` (Claude Code per-project in `~/.claude.json`), `managed`, `system`.
    pub scope: &'static str,
    pub config_path: PathBuf,
    /// The key the server is configured under.
    pub name: String,
    /// 1-based line of the entry in the file, when found.
    pub line: Option<u64>,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub url: Option<String>,
    /// Extra context, e.g. the project a `~/.claude.json` entry belongs to.
    pub context: Option<String>,
    /// The environment the entry declares for a stdio server (`env`). Never serialised:
    /// values are often credentials.
    #[serde(skip)]
    pub env: BTreeMap<String, String>,
    /// The HTTP headers the entry declares for a remote server (`headers`, Codex
    /// `http_headers`). Never serialised.
    #[serde(skip)]
    pub headers: BTreeMap<String, String>,
    /// The working directory the entry declares (`cwd`).
    #[serde(skip)]
    pub cwd: Option<String>,
}

/// The string-valued members of `obj[key]` (an object), e.g. `env` or `headers`.
pub(crate) fn string_map(obj: Option<&Value>) -> BTreeMap<String, String> {
    obj.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| match v {
                    Value::String(s) => Some((k.clone(), s.clone())),
                    Value::Number(n) => Some((k.clone(), n.to_string())),
                    Value::Bool(b) => Some((k.clone(), b.to_string())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A config file that exists but cannot be read as its client would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    pub client: &'static str,
    pub scope: &'static str,
    pub config_path: PathBuf,
    pub line: Option<u64>,
    pub message: String,
}

/// Everything discovery saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Discovery {
    pub servers: Vec<FoundServer>,
    pub problems: Vec<ConfigProblem>,
    /// Servers that are configured but switched off (e.g. `disabledMcpjsonServers`), with why.
    pub skipped: Vec<String>,
    /// Every config file that was read.
    pub files: Vec<PathBuf>,
    #[serde(skip)]
    seen: HashSet<PathBuf>,
}

/// Reads every client config under `loc`.
pub fn discover(loc: &Locations) -> Discovery {
    let mut d = Discovery::default();
    claude::discover(loc, &mut d);
    clients::discover(loc, &mut d);
    codex::discover(loc, &mut d);
    d
}

impl Discovery {
    /// Reads a config file once: `None` when it does not exist, was read already (home and
    /// project can be the same directory), or cannot be read (then a problem is recorded).
    pub(crate) fn read(&mut self, client: &'static str, scope: &'static str, path: &Path) -> Option<String> {
        let meta = match std::fs::metadata(path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                self.problem(client, scope, path, None, format!("cannot read: {e}"));
                return None;
            }
        };
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if !self.seen.insert(key) {
            return None;
        }
        if meta.len() > MAX_CONFIG_BYTES {
            self.problem(
                client,
                scope,
                path,
                None,
                format!(
                    "file is {} bytes, larger than the {MAX_CONFIG_BYTES}-byte limit; its servers were not checked",
                    meta.len()
                ),
            );
            return None;
        }
        match std::fs::read_to_string(path) {
            Ok(text) => {
                self.files.push(path.to_path_buf());
                Some(text)
            }
            Err(e) => {
                self.problem(client, scope, path, None, format!("cannot read: {e}"));
                None
            }
        }
    }

    /// Reads and parses a JSON (or, with `jsonc`, JSON-with-comments) config file.
    pub(crate) fn read_json(
        &mut self,
        client: &'static str,
        scope: &'static str,
        path: &Path,
        jsonc: bool,
    ) -> Option<(String, Value)> {
        let text = self.read(client, scope, path)?;
        let parsed = if jsonc {
            jsonc::parse(&text)
        } else {
            serde_json::from_str::<Value>(&text)
        };
        match parsed {
            Ok(v) => Some((text, v)),
            Err(e) => {
                let line = Some(e.line() as u64).filter(|l| *l > 0);
                self.problem(
                    client,
                    scope,
                    path,
                    line,
                    format!("not valid JSON: {e}; its servers were not checked"),
                );
                None
            }
        }
    }

    pub(crate) fn problem(
        &mut self,
        client: &'static str,
        scope: &'static str,
        path: &Path,
        line: Option<u64>,
        message: String,
    ) {
        self.problems.push(ConfigProblem {
            client,
            scope,
            config_path: path.to_path_buf(),
            line,
            message,
        });
    }

    /// Adds every entry of a JSON `{name: {command, args, url...}}` map.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_servers(
        &mut self,
        client: &'static str,
        scope: &'static str,
        path: &Path,
        text: &str,
        servers: &Value,
        search_from: usize,
        context: Option<String>,
        skip: &dyn Fn(&str) -> Option<String>,
    ) {
        let Some(map) = servers.as_object() else {
            if !servers.is_null() {
                self.problem(
                    client,
                    scope,
                    path,
                    None,
                    "the servers entry is not an object; its servers were not checked".into(),
                );
            }
            return;
        };
        for (name, entry) in map {
            let line = find_key_line(text, name, search_from);
            if let Some(why) = skip(name) {
                self.skipped
                    .push(format!("{client} {scope} server '{name}' in {}: {why}", path.display()));
                continue;
            }
            match server_spec(entry) {
                Ok((command, args, url)) => self.servers.push(FoundServer {
                    client,
                    scope,
                    config_path: path.to_path_buf(),
                    name: name.clone(),
                    line,
                    command,
                    args,
                    url,
                    context: context.clone(),
                    env: string_map(entry.get("env")),
                    headers: string_map(
                        entry
                            .get("headers")
                            .or_else(|| entry.get("requestInit").and_then(|r| r.get("headers"))),
                    ),
                    cwd: entry.get("cwd").and_then(Value::as_str).map(str::to_string),
                }),
                Err(why) => self.problem(client, scope, path, line, format!("server '{name}': {why}")),
            }
        }
    }
}

/// A server entry's command, arguments and URL.
type ServerSpec = (Option<String>, Vec<String>, Option<String>);

/// The command, arguments and URL of one JSON server entry, in any client's shape.
fn server_spec(entry: &Value) -> Result<ServerSpec, String> {
    let Some(obj) = entry.as_object() else {
        return Err("entry is not an object".into());
    };
    let command = match obj.get("command") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("`command` is not a string".into()),
    };
    let args = match obj.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                _ => Err("`args` holds something other than strings".to_string()),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`args` is not an array".into()),
    };
    let url = ["url", "serverUrl", "httpUrl"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .map(str::to_string);
    if command.is_none() && url.is_none() {
        return Err("entry has neither `command` nor `url`".into());
    }
    Ok((command, args, url))
}

/// The 1-based line where `"key":` first appears at or after byte `from`.
pub(crate) fn find_key_line(text: &str, key: &str, from: usize) -> Option<u64> {
    let quoted = serde_json::to_string(key).ok()?;
    let mut start = from.min(text.len());
    while let Some(i) = text.get(start..)?.find(&quoted) {
        let at = start + i;
        let after = text[at + quoted.len()..].trim_start();
        if after.starts_with(':') {
            return Some(line_of(text, at));
        }
        start = at + quoted.len();
    }
    None
}

/// The 1-based line of byte offset `at`.
pub(crate) fn line_of(text: &str, at: usize) -> u64 {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count() as u64
        + 1
}

/// The byte offset of `"key":` in `text`, for searching inside that object.
pub(crate) fn key_offset(text: &str, key: &str) -> usize {
    let Ok(quoted) = serde_json::to_string(key) else {
        return 0;
    };
    let mut start = 0;
    while let Some(i) = text[start..].find(&quoted) {
        let at = start + i;
        if text[at + quoted.len()..].trim_start().starts_with(':') {
            return at;
        }
        start = at + quoted.len();
    }
    0
}
