//! `steward scan`: the offline counterpart of what the gateway does live. Every MCP server in
//! the client configs is started (stdio) or connected to (streamable HTTP), initialised and
//! listed (tools, prompts, resources, resource templates, with pagination), and what it
//! offers is scanned: poisoned descriptions, cross-server shadowing within each client, drift
//! against the previous run, and servers that could not be reached.
//!
//! Every limit (time per server, pages, items, message size) that stops a listing early is
//! a HIGH `analysis-incomplete` finding: what was not seen is not reported clean.

pub mod client;
pub mod pins;
pub mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use steward_registry::FoundServer;
use steward_scan::{ANALYSIS_INCOMPLETE, ServerTools, Severity};

pub use client::{Client, ClientError, Endpoint};
pub use pins::{PinFile, ServerPins};

/// Limits of one scan.
#[derive(Debug, Clone)]
pub struct SurveyOptions {
    /// For everything one server takes: start, initialise, every list.
    pub timeout: Duration,
    /// Pages per list method.
    pub max_pages: usize,
    /// Items per list method (tools, prompts, ...) over all pages.
    pub max_items: usize,
    /// One message from a server.
    pub max_message: usize,
    /// Servers surveyed at once.
    pub concurrency: usize,
}

impl Default for SurveyOptions {
    fn default() -> Self {
        SurveyOptions {
            timeout: Duration::from_secs(15),
            max_pages: 100,
            max_items: 10_000,
            max_message: 16 * 1024 * 1024,
            concurrency: 4,
        }
    }
}

/// Where one server entry was configured.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigRef {
    pub client: &'static str,
    pub scope: &'static str,
    pub config_path: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The registry's verdict on this entry, when a registry was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_status: Option<String>,
}

/// One distinct server: entries in several configs that start the same thing are one target.
#[derive(Debug, Clone)]
pub struct Target {
    /// The name reports use (the config key; qualified when two different servers share it).
    pub name: String,
    /// Stable key for pins.
    pub key: String,
    pub endpoint: Endpoint,
    /// `stdio` or `http`.
    pub transport: &'static str,
    /// The config wrapped the server in `steward proxy`; the server itself is scanned.
    pub unwrapped: bool,
    pub configs: Vec<ConfigRef>,
}

/// What one server offered, or why it could not be asked.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub server_info: Option<Value>,
    pub tools: Vec<Value>,
    pub prompts: Vec<Value>,
    pub resources: Vec<Value>,
    pub templates: Vec<Value>,
    /// Why it could not be reached (then the lists are empty).
    pub error: Option<String>,
    /// Limits that cut a list short, with the method.
    pub incomplete: Vec<String>,
}

/// One finding of a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub kind: String,
    pub server: String,
    /// `tool NAME`, `prompt NAME`, `resource URI`, or none for the server as a whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// Where inside the item, e.g. `inputSchema.properties.a.description`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_server: Option<String>,
}

/// One server in the report.
#[derive(Debug, Clone, Serialize)]
pub struct ServerSummary {
    pub name: String,
    pub transport: &'static str,
    pub unwrapped_from_steward_proxy: bool,
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_info: Option<Value>,
    pub tools: usize,
    pub prompts: usize,
    pub resources: usize,
    pub resource_templates: usize,
    pub configs: Vec<ConfigRef>,
}

/// The whole scan.
#[derive(Debug, Clone, Serialize)]
pub struct SurveyReport {
    pub servers: Vec<ServerSummary>,
    pub findings: Vec<Finding>,
    /// Configs that could not be read, servers switched off: discovery's notes.
    pub notes: Vec<String>,
    /// Where the fingerprints of this run were stored (drift is against the previous ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pins_file: Option<PathBuf>,
}

impl SurveyReport {
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    pub fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }
}

/// `${VAR}` and `${VAR:-default}` as clients expand them in configs, from `vars`.
pub fn expand(s: &str, vars: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[at..]);
            return out;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match vars(name) {
            Some(v) if !v.is_empty() => out.push_str(&v),
            _ => out.push_str(default.unwrap_or("")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The environment a stdio server is started with: a minimal base from this process (PATH,
/// HOME set to the scanned home, locale, temp dir) and exactly what its config declares.
pub fn stdio_env(declared: &BTreeMap<String, String>, home: &Path) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for k in ["PATH", "LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME", "SYSTEMROOT"] {
        if let Ok(v) = std::env::var(k) {
            env.insert(k.to_string(), v);
        }
    }
    env.insert("HOME".to_string(), home.to_string_lossy().into_owned());
    let lookup = |n: &str| std::env::var(n).ok();
    for (k, v) in declared {
        env.insert(k.clone(), expand(v, &lookup));
    }
    env
}

/// The distinct servers among discovery's entries.
pub fn targets(
    found: &[FoundServer],
    home: &Path,
    project: &Path,
    registry_status: &dyn Fn(&FoundServer) -> Option<String>,
) -> Vec<Target> {
    let lookup = |n: &str| std::env::var(n).ok();
    let mut by_identity: BTreeMap<String, Target> = BTreeMap::new();
    for f in found {
        let (endpoint, transport, unwrapped) = match (&f.command, &f.url) {
            (Some(command), _) => {
                let args: Vec<String> = f.args.iter().map(|a| expand(a, &lookup)).collect();
                let command = expand(command, &lookup);
                let (command, args, unwrapped) = match steward_registry::unwrap_steward_proxy(&command, &args) {
                    Some(w) => (w.command, w.args, true),
                    None => (command, args, false),
                };
                let cwd = f
                    .cwd
                    .as_ref()
                    .map(PathBuf::from)
                    .or_else(|| Some(project.to_path_buf()));
                (
                    Endpoint::Stdio {
                        command,
                        args,
                        env: stdio_env(&f.env, home),
                        cwd,
                    },
                    "stdio",
                    unwrapped,
                )
            }
            (None, Some(url)) => (
                Endpoint::Http {
                    url: expand(url, &lookup),
                    headers: f.headers.iter().map(|(k, v)| (k.clone(), expand(v, &lookup))).collect(),
                },
                "http",
                false,
            ),
            (None, None) => continue,
        };
        let identity = identity(&endpoint);
        let config = ConfigRef {
            client: f.client,
            scope: f.scope,
            config_path: f.config_path.clone(),
            line: f.line,
            registry_status: registry_status(f),
        };
        by_identity
            .entry(format!("{}\0{identity}", f.name))
            .or_insert_with(|| Target {
                name: f.name.clone(),
                key: String::new(),
                endpoint,
                transport,
                unwrapped,
                configs: Vec::new(),
            })
            .configs
            .push(config);
    }
    let mut out: Vec<Target> = by_identity.into_values().collect();
    // Names shared by different servers are qualified with their first config.
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for t in &out {
        *count.entry(t.name.clone()).or_default() += 1;
    }
    for t in &mut out {
        let id = identity(&t.endpoint);
        if count.get(&t.name).copied().unwrap_or(0) > 1 {
            let c = &t.configs[0];
            t.key = format!("{}#{}", t.name, &id[..12]);
            t.name = format!("{} ({} {})", t.name, c.client, c.scope);
        } else {
            t.key = t.name.clone();
        }
    }
    out
}

/// What starts the server, hashed (environment and headers included, never shown).
fn identity(e: &Endpoint) -> String {
    let v = match e {
        Endpoint::Stdio { command, args, env, .. } => json!({"command": command, "args": args, "env": env}),
        Endpoint::Http { url, headers } => json!({"url": url, "headers": headers}),
    };
    hex::encode(Sha256::digest(v.to_string().as_bytes()))
}

/// Lists every target, at most `opts.concurrency` at once, each within `opts.timeout`.
pub async fn survey(targets: &[Target], opts: &SurveyOptions) -> Vec<Listing> {
    use futures_util::stream::{self, StreamExt};
    let listings: Vec<(usize, Listing)> = stream::iter(targets.iter().enumerate())
        .map(|(i, t)| async move { (i, list_one(&t.endpoint, opts).await) })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    let mut ordered: Vec<Option<Listing>> = vec![None; targets.len()];
    for (i, l) in listings {
        ordered[i] = Some(l);
    }
    ordered.into_iter().map(Option::unwrap_or_default).collect()
}

async fn list_one(endpoint: &Endpoint, opts: &SurveyOptions) -> Listing {
    let mut listing = Listing::default();
    let mut client = match Client::open(endpoint, opts.timeout, opts.max_message) {
        Ok(c) => c,
        Err(e) => {
            listing.error = Some(steward_scan::redact::redact_text(&e.to_string()));
            return listing;
        }
    };
    let work = async {
        let init = client.initialize().await?;
        listing.server_info = init.get("serverInfo").cloned();
        let caps = init.get("capabilities").cloned().unwrap_or(Value::Null);
        listing.tools = list_all(&mut client, "tools/list", "tools", opts, &mut listing.incomplete).await?;
        if caps.get("prompts").is_some() {
            listing.prompts = list_all(&mut client, "prompts/list", "prompts", opts, &mut listing.incomplete).await?;
        }
        if caps.get("resources").is_some() {
            listing.resources = list_all(
                &mut client,
                "resources/list",
                "resources",
                opts,
                &mut listing.incomplete,
            )
            .await?;
            listing.templates = list_all(
                &mut client,
                "resources/templates/list",
                "resourceTemplates",
                opts,
                &mut listing.incomplete,
            )
            .await?;
        }
        Ok::<(), ClientError>(())
    };
    // Error texts can quote what a server said: secrets in them are redacted like audit text.
    let clean = |e: String| steward_scan::redact::redact_text(&e);
    match tokio::time::timeout(opts.timeout, work).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            if listing.server_info.is_none() {
                listing.error = Some(clean(e.to_string()));
            } else {
                listing.incomplete.push(clean(format!("listing stopped: {e}")));
            }
        }
        Err(_) => {
            let why = format!("no complete answer within {:?}", opts.timeout);
            if listing.server_info.is_none() {
                listing.error = Some(why);
            } else {
                listing.incomplete.push(why);
            }
        }
    }
    client.close().await;
    listing
}

/// Every page of one list method, within the page and item limits.
async fn list_all(
    client: &mut Client,
    method: &str,
    field: &str,
    opts: &SurveyOptions,
    incomplete: &mut Vec<String>,
) -> Result<Vec<Value>, ClientError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen_cursors = BTreeSet::new();
    for page in 0.. {
        if page >= opts.max_pages {
            incomplete.push(format!("{method}: more than {} pages", opts.max_pages));
            break;
        }
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let result = match client.request(method, params).await {
            Ok(r) => r,
            // The capability was advertised but the method is missing: nothing to list.
            Err(ClientError::Rpc { code: -32601, .. }) => break,
            Err(e) => return Err(e),
        };
        if let Some(list) = result.get(field).and_then(Value::as_array) {
            for item in list {
                if items.len() >= opts.max_items {
                    incomplete.push(format!("{method}: more than {} items", opts.max_items));
                    return Ok(items);
                }
                items.push(item.clone());
            }
        }
        match result.get("nextCursor").and_then(Value::as_str) {
            Some(next) if !next.is_empty() => {
                if !seen_cursors.insert(next.to_string()) {
                    incomplete.push(format!("{method}: the server repeated a cursor"));
                    break;
                }
                cursor = Some(next.to_string());
            }
            _ => break,
        }
    }
    Ok(items)
}

/// The fingerprints of one listing.
pub fn pins_of(listing: &Listing) -> ServerPins {
    let mut p = ServerPins::default();
    for t in &listing.tools {
        if let Some(n) = t.get("name").and_then(Value::as_str) {
            p.tools.insert(n.to_string(), steward_mcp::fingerprint::fingerprint(t));
        }
    }
    for e in &listing.prompts {
        if let Some(n) = e.get("name").and_then(Value::as_str) {
            p.prompts.insert(n.to_string(), pins::entry_fingerprint(e));
        }
    }
    for e in listing.resources.iter().chain(&listing.templates) {
        if let Some(u) = e.get("uri").or_else(|| e.get("uriTemplate")).and_then(Value::as_str) {
            p.resources.insert(u.to_string(), pins::entry_fingerprint(e));
        }
    }
    p
}

/// Everything found: descriptions, shadowing per client, drift against `before`, unreachable
/// servers and incomplete listings. Findings are ordered most severe first.
pub fn assess(targets: &[Target], listings: &[Listing], before: Option<&PinFile>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (t, l) in targets.iter().zip(listings) {
        if let Some(err) = &l.error {
            out.push(Finding {
                severity: Severity::High,
                kind: "unreachable".into(),
                server: t.name.clone(),
                item: None,
                location: None,
                message: format!("the server could not be listed, so nothing it offers was checked: {err}"),
                other_server: None,
            });
            continue;
        }
        for why in &l.incomplete {
            out.push(Finding {
                severity: Severity::High,
                kind: ANALYSIS_INCOMPLETE.into(),
                server: t.name.clone(),
                item: None,
                location: None,
                message: format!("not everything the server offers was seen ({why})"),
                other_server: None,
            });
        }
        let mut push = |item: String, findings: Vec<steward_scan::Finding>| {
            for f in findings {
                out.push(Finding {
                    severity: f.severity,
                    kind: f.kind.to_string(),
                    server: t.name.clone(),
                    item: Some(item.clone()),
                    location: (!f.location.is_empty()).then(|| f.location.clone()),
                    message: f.message,
                    other_server: None,
                });
            }
        };
        for tool in &l.tools {
            push(format!("tool {}", name_of(tool, "name")), steward_scan::scan_tool(tool));
        }
        for p in &l.prompts {
            push(format!("prompt {}", name_of(p, "name")), steward_scan::scan_prompt(p));
        }
        for r in &l.resources {
            push(
                format!("resource {}", name_of(r, "uri")),
                steward_scan::scan_resource(r),
            );
        }
        for r in &l.templates {
            push(
                format!("resource template {}", name_of(r, "uriTemplate")),
                steward_scan::scan_resource(r),
            );
        }
        if let Some(old) = before.and_then(|b| b.servers.get(&t.key)) {
            for c in pins::changes(old, &pins_of(l)) {
                let (severity, message) = match c.change {
                    "changed" => (
                        Severity::High,
                        format!(
                            "the {} changed since the previous scan (a rug pull looks like this)",
                            c.item
                        ),
                    ),
                    "added" => (Severity::Low, format!("a new {} since the previous scan", c.item)),
                    _ => (Severity::Low, format!("the {} is gone since the previous scan", c.item)),
                };
                out.push(Finding {
                    severity,
                    kind: format!("{}_{}", c.item, c.change).replace("_changed", "_drift"),
                    server: t.name.clone(),
                    item: Some(format!("{} {}", c.item, c.name)),
                    location: None,
                    message,
                    other_server: None,
                });
            }
        }
    }
    out.extend(shadowing(targets, listings));
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.server.cmp(&b.server))
            .then(a.item.cmp(&b.item))
            .then(a.kind.cmp(&b.kind))
            .then(a.location.cmp(&b.location))
    });
    out.dedup();
    out
}

/// Shadowing among the servers each client sees.
fn shadowing(targets: &[Target], listings: &[Listing]) -> Vec<Finding> {
    let clients: BTreeSet<&str> = targets
        .iter()
        .flat_map(|t| t.configs.iter().map(|c| c.client))
        .collect();
    let mut out: BTreeSet<(String, String, String, String, Severity, String)> = BTreeSet::new();
    for client in clients {
        let seen: Vec<ServerTools<'_>> = targets
            .iter()
            .zip(listings)
            .filter(|(t, l)| l.error.is_none() && t.configs.iter().any(|c| c.client == client))
            .map(|(t, l)| ServerTools {
                server: &t.name,
                tools: &l.tools,
            })
            .collect();
        for f in steward_scan::shadowing(&seen) {
            out.insert((
                f.server,
                f.tool,
                f.kind.to_string(),
                f.other_server,
                f.severity,
                f.message,
            ));
        }
    }
    out.into_iter()
        .map(|(server, tool, kind, other, severity, message)| Finding {
            severity,
            kind,
            server,
            item: Some(format!("tool {tool}")),
            location: None,
            message,
            other_server: Some(other),
        })
        .collect()
}

fn name_of(v: &Value, field: &str) -> String {
    v.get(field).and_then(Value::as_str).unwrap_or("?").to_string()
}

/// The servers part of the report.
pub fn summaries(targets: &[Target], listings: &[Listing]) -> Vec<ServerSummary> {
    targets
        .iter()
        .zip(listings)
        .map(|(t, l)| ServerSummary {
            name: t.name.clone(),
            transport: t.transport,
            unwrapped_from_steward_proxy: t.unwrapped,
            reachable: l.error.is_none(),
            error: l.error.clone(),
            server_info: l.server_info.clone(),
            tools: l.tools.len(),
            prompts: l.prompts.len(),
            resources: l.resources.len(),
            resource_templates: l.templates.len(),
            configs: t.configs.clone(),
        })
        .collect()
}

/// The pins of this run: every reachable server's fingerprints; an unreachable server keeps
/// its previous pins, so drift is still found when it comes back.
pub fn next_pins(
    targets: &[Target],
    listings: &[Listing],
    before: Option<&PinFile>,
    home: &Path,
    project: &Path,
) -> PinFile {
    let mut p = PinFile {
        home: home.to_string_lossy().into_owned(),
        project: project.to_string_lossy().into_owned(),
        servers: BTreeMap::new(),
    };
    for (t, l) in targets.iter().zip(listings) {
        if l.error.is_none() && l.incomplete.is_empty() {
            p.servers.insert(t.key.clone(), pins_of(l));
        } else if let Some(old) = before.and_then(|b| b.servers.get(&t.key)) {
            p.servers.insert(t.key.clone(), old.clone());
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_variables_like_clients() {
        let vars = |n: &str| match n {
            "TOKEN" => Some("t0k".to_string()),
            _ => None,
        };
        assert_eq!(expand("Bearer ${TOKEN}", &vars), "Bearer t0k");
        assert_eq!(expand("${MISSING:-fallback}/x", &vars), "fallback/x");
        assert_eq!(expand("${MISSING}", &vars), "");
        assert_eq!(expand("no ${ end", &vars), "no ${ end");
    }

    #[test]
    fn the_child_environment_is_the_base_and_the_declared() {
        let declared = BTreeMap::from([("API_KEY".to_string(), "k".to_string())]);
        let env = stdio_env(&declared, Path::new("/home/x"));
        assert_eq!(env["HOME"], "/home/x");
        assert_eq!(env["API_KEY"], "k");
        assert!(env.keys().all(|k| matches!(
            k.as_str(),
            "PATH" | "LANG" | "LC_ALL" | "TMPDIR" | "USER" | "LOGNAME" | "SYSTEMROOT" | "HOME" | "API_KEY"
        )));
    }
}
