//! Reading a registry file: the YAML schema, with locations for every finding.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::Spanned;
use steward_policy::{Diagnostic, Risk, Severity};

use crate::error::{RegistryError, error, warning, with_hint};
use crate::model::{ApprovedServer, DataScope, DeniedServer, PendingServer, Registry, ServerConfig};

/// Registry files larger than this are refused: a registry is configuration, not data.
pub const MAX_REGISTRY_BYTES: u64 = 4 * 1024 * 1024;

/// The top-level keys a registry has; others are reported as warnings, not errors, so a
/// registry that carries extra organisation-specific sections still loads.
const TOP_LEVEL_KEYS: &[&str] = &[
    "metadata",
    "approved",
    "pending_review",
    "denied",
    "version_bump_policy",
    "incident_response",
];

#[derive(Deserialize)]
struct RegistryDoc {
    #[serde(default)]
    metadata: Option<serde_json::Value>,
    #[serde(default)]
    approved: Option<Vec<Spanned<ApprovedDoc>>>,
    #[serde(default)]
    pending_review: Option<Vec<Spanned<PendingDoc>>>,
    #[serde(default)]
    denied: Option<Vec<Spanned<DeniedDoc>>>,
    #[serde(default)]
    version_bump_policy: Option<serde_json::Value>,
    #[serde(default)]
    incident_response: Option<serde_json::Value>,
}

/// Approved entries are strict: a misspelt `expires` must not silently approve forever.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApprovedDoc {
    pub name: Spanned<String>,
    #[serde(default)]
    pub version: Option<Spanned<String>>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub npm_package: Option<Spanned<String>>,
    #[serde(default)]
    pub approved_by: Option<String>,
    #[serde(default)]
    pub approved_date: Option<Spanned<String>>,
    #[serde(default)]
    pub expires: Option<Spanned<String>>,
    #[serde(default)]
    pub data_scope: Option<Spanned<String>>,
    #[serde(default)]
    pub risk: Option<Spanned<String>>,
    #[serde(default)]
    pub rationale: Option<String>,
    #[serde(default)]
    pub restrictions: Option<serde_json::Value>,
    #[serde(default)]
    pub config: Option<Spanned<ConfigDoc>>,
    /// `required` or `optional` (the default).
    #[serde(default)]
    pub sandbox: Option<Spanned<String>>,
    // Descriptive fields registries in the field carry; accepted and ignored.
    #[serde(default, rename = "description")]
    _description: Option<IgnoredAny>,
    #[serde(default, rename = "owner")]
    _owner: Option<IgnoredAny>,
    #[serde(default, rename = "notes")]
    _notes: Option<IgnoredAny>,
    #[serde(default, rename = "tags")]
    _tags: Option<IgnoredAny>,
    #[serde(default, rename = "category")]
    _category: Option<IgnoredAny>,
    #[serde(default, rename = "homepage")]
    _homepage: Option<IgnoredAny>,
    #[serde(default, rename = "license")]
    _license: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigDoc {
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub url: Option<String>,
    /// Checked by the gateway, which knows the sandbox schema.
    #[serde(default)]
    pub sandbox: Option<serde_json::Value>,
    // Accepted for remote and working-directory configs; not compared for drift.
    #[serde(default, rename = "type")]
    _transport: Option<IgnoredAny>,
    #[serde(default, rename = "headers")]
    _headers: Option<IgnoredAny>,
    #[serde(default, rename = "cwd")]
    _cwd: Option<IgnoredAny>,
}

/// Pending and denied entries are informational: unknown keys are accepted.
#[derive(Deserialize)]
pub(crate) struct PendingDoc {
    pub name: Spanned<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub npm_package: Option<String>,
    #[serde(default)]
    pub requested_by: Option<String>,
    #[serde(default)]
    pub requested_date: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub config: Option<ConfigDoc>,
}

#[derive(Deserialize)]
pub(crate) struct DeniedDoc {
    pub name: Spanned<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub alternative: Option<String>,
    #[serde(default)]
    pub npm_package: Option<String>,
    #[serde(default)]
    pub denied_by: Option<String>,
    #[serde(default)]
    pub denied_date: Option<String>,
    #[serde(default)]
    pub config: Option<ConfigDoc>,
}

impl Registry {
    /// Reads a registry file. Fails on schema errors; semantic findings (expired approvals,
    /// unpinned versions...) are for [`crate::lint`] and the checks.
    pub fn from_file(path: &Path) -> Result<Registry, RegistryError> {
        let text = read_limited(path)?;
        Registry::from_yaml(&text, &path.display().to_string())
    }

    /// Parses registry YAML. `name` is used in diagnostics (`name:line:col`).
    pub fn from_yaml(text: &str, name: &str) -> Result<Registry, RegistryError> {
        let Parsed {
            registry, diagnostics, ..
        } = parse(text, name);
        match registry {
            Some(r) if !diagnostics.iter().any(|d| d.severity == Severity::Error) => Ok(r),
            _ => Err(RegistryError::Invalid {
                file: name.to_string(),
                diagnostics,
            }),
        }
    }
}

pub(crate) fn read_limited(path: &Path) -> Result<String, RegistryError> {
    let name = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| RegistryError::Io {
        path: name.clone(),
        source,
    })?;
    if meta.len() > MAX_REGISTRY_BYTES {
        return Err(RegistryError::Invalid {
            file: name,
            diagnostics: vec![error(
                1,
                1,
                format!(
                    "registry file is {} bytes; the limit is {MAX_REGISTRY_BYTES}",
                    meta.len()
                ),
            )],
        });
    }
    std::fs::read_to_string(path).map_err(|source| RegistryError::Io { path: name, source })
}

/// Where an approved entry's fields are in the file, for lint findings.
#[derive(Debug, Clone, Default)]
pub(crate) struct EntrySpans {
    pub name: (u64, u64),
    pub version: Option<(u64, u64)>,
    pub expires: Option<(u64, u64)>,
    pub config: Option<(u64, u64)>,
    pub sandbox: Option<(u64, u64)>,
}

/// The result of reading registry YAML: the registry when the YAML has the right shape, every
/// schema finding, and the locations of the approved entries' fields (in order).
pub(crate) struct Parsed {
    pub registry: Option<Registry>,
    pub diagnostics: Vec<Diagnostic>,
    pub spans: Vec<EntrySpans>,
}

fn at<T>(s: &Spanned<T>) -> (u64, u64) {
    (s.referenced.line(), s.referenced.column())
}

/// Parses and validates the schema.
pub(crate) fn parse(text: &str, name: &str) -> Parsed {
    let mut diags = Vec::new();
    let mut spans = Vec::new();
    if text.len() as u64 > MAX_REGISTRY_BYTES {
        diags.push(error(1, 1, "registry text is larger than 4 MiB"));
        return Parsed {
            registry: None,
            diagnostics: diags,
            spans,
        };
    }
    let doc: RegistryDoc = match serde_saphyr::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
            let message = e.without_snippet().to_string();
            let message = message.lines().next().unwrap_or("invalid YAML").to_string();
            diags.push(with_hint(error(line, column, message), yaml_hint(&e.to_string())));
            return Parsed {
                registry: None,
                diagnostics: diags,
                spans,
            };
        }
    };
    unknown_top_level_keys(text, &mut diags);

    let mut approved = Vec::new();
    for entry in doc.approved.unwrap_or_default() {
        let line = entry.referenced.line();
        let e = &entry.value;
        let entry_spans = EntrySpans {
            name: at(&e.name),
            version: e.version.as_ref().map(at),
            expires: e.expires.as_ref().map(at),
            config: e.config.as_ref().map(at),
            sandbox: e.sandbox.as_ref().map(at),
        };
        if let Some(a) = approved_entry(entry.value, line, &mut diags) {
            approved.push(a);
            spans.push(entry_spans);
        }
    }
    let pending_review = doc
        .pending_review
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let p = p.value;
            PendingServer {
                line: p.name.referenced.line(),
                name: p.name.value,
                version: p.version,
                npm_package: p.npm_package,
                requested_by: p.requested_by,
                requested_date: p.requested_date,
                notes: p.notes,
                config: p.config.map(server_config),
            }
        })
        .collect();
    let denied = doc
        .denied
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            let d = d.value;
            DeniedServer {
                line: d.name.referenced.line(),
                name: d.name.value,
                reason: d.reason,
                alternative: d.alternative,
                npm_package: d.npm_package,
                denied_by: d.denied_by,
                denied_date: d.denied_date,
                config: d.config.map(server_config),
            }
        })
        .collect();
    let registry = Registry {
        source_name: name.to_string(),
        metadata: doc.metadata.unwrap_or(serde_json::Value::Null),
        approved,
        pending_review,
        denied,
        version_bump_policy: doc.version_bump_policy.unwrap_or(serde_json::Value::Null),
        incident_response: doc.incident_response.unwrap_or(serde_json::Value::Null),
    };
    Parsed {
        registry: Some(registry),
        diagnostics: diags,
        spans,
    }
}

fn approved_entry(a: ApprovedDoc, entry_line: u64, diags: &mut Vec<Diagnostic>) -> Option<ApprovedServer> {
    let (line, column) = (a.name.referenced.line(), a.name.referenced.column());
    let name = a.name.value.trim().to_string();
    if name.is_empty() {
        diags.push(with_hint(
            error(line, column, "approved entry has an empty name"),
            "every entry needs a `name`",
        ));
    }
    let data_scope = match &a.data_scope {
        None => {
            diags.push(with_hint(
                error(line, column, format!("approved server '{name}' has no data_scope")),
                "add `data_scope: PUBLIC|INTERNAL|CONFIDENTIAL|RESTRICTED`",
            ));
            None
        }
        Some(s) => match s.value.parse::<DataScope>() {
            Ok(d) => Some(d),
            Err(e) => {
                diags.push(error(s.referenced.line(), s.referenced.column(), e));
                None
            }
        },
    };
    let risk = match &a.risk {
        None => {
            diags.push(with_hint(
                error(line, column, format!("approved server '{name}' has no risk")),
                "add `risk: LOW|MEDIUM|HIGH|CRITICAL`",
            ));
            None
        }
        Some(s) => match s.value.parse::<Risk>() {
            Ok(r) => Some(r),
            Err(e) => {
                diags.push(error(s.referenced.line(), s.referenced.column(), e));
                None
            }
        },
    };
    let sandbox_required = match &a.sandbox {
        None => false,
        Some(s) => match s.value.trim() {
            "required" => true,
            "optional" => false,
            other => {
                diags.push(with_hint(
                    error(
                        s.referenced.line(),
                        s.referenced.column(),
                        format!("sandbox of '{name}' is '{other}'"),
                    ),
                    "an entry's `sandbox` is `required` or `optional`; the sandbox itself goes in `config: {sandbox: ...}`",
                ));
                false
            }
        },
    };
    let approved_date = a.approved_date.as_ref().and_then(|d| date(d, "approved_date", diags));
    let expires = a.expires.as_ref().and_then(|d| date(d, "expires", diags));
    let config = match a.config {
        None => None,
        Some(c) => {
            let (cl, cc) = (c.referenced.line(), c.referenced.column());
            let cfg = c.value;
            match (&cfg.command, &cfg.url) {
                (None, None) => diags.push(with_hint(
                    error(cl, cc, format!("config of '{name}' has neither command nor url")),
                    "stdio servers need `command` (and `args`); remote servers need `url`",
                )),
                (Some(_), Some(_)) => diags.push(error(
                    cl,
                    cc,
                    format!("config of '{name}' has both command and url; give one"),
                )),
                (Some(cmd), None) if cmd.trim().is_empty() => {
                    diags.push(error(cl, cc, format!("config of '{name}' has an empty command")))
                }
                _ => {}
            }
            Some(server_config(cfg))
        }
    };
    Some(ApprovedServer {
        name,
        version: a.version.map(|v| v.value.trim().to_string()),
        source: a.source,
        npm_package: a.npm_package.map(|p| p.value.trim().to_string()),
        approved_by: a.approved_by,
        approved_date,
        expires,
        data_scope: data_scope?,
        risk: risk?,
        rationale: a.rationale.filter(|r| !r.trim().is_empty()),
        restrictions: restrictions(a.restrictions),
        config,
        sandbox_required,
        line: entry_line.max(line),
    })
}

fn server_config(c: ConfigDoc) -> ServerConfig {
    ServerConfig {
        command: c.command.map(|s| s.trim().to_string()),
        args: c.args.unwrap_or_default(),
        env: c.env.unwrap_or_default(),
        url: c.url.map(|s| s.trim().to_string()),
        sandbox: c.sandbox,
    }
}

fn restrictions(v: Option<serde_json::Value>) -> Vec<String> {
    match v {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(s)) => vec![s],
        Some(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|i| match i {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        Some(other) => vec![other.to_string()],
    }
}

/// Parses `YYYY-MM-DD` (a timestamp's date part is accepted too).
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let day = s.get(..10).unwrap_or(s);
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .filter(|_| s.len() == 10 || s.as_bytes().get(10) == Some(&b'T'))
}

fn date(d: &Spanned<String>, field: &str, diags: &mut Vec<Diagnostic>) -> Option<NaiveDate> {
    let parsed = parse_date(&d.value);
    if parsed.is_none() {
        diags.push(with_hint(
            error(
                d.referenced.line(),
                d.referenced.column(),
                format!("{field} '{}' is not a date", d.value),
            ),
            "write dates as YYYY-MM-DD, e.g. 2027-03-31",
        ));
    }
    parsed
}

/// Finds top-level keys the schema does not know, by their `key:` line at column 1.
fn unknown_top_level_keys(text: &str, diags: &mut Vec<Diagnostic>) {
    for (i, line) in text.lines().enumerate() {
        if line.starts_with([' ', '\t', '#', '-']) || line.starts_with("---") || line.starts_with("...") {
            continue;
        }
        let Some((key, _)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_matches(['"', '\'']);
        if !key.is_empty() && !TOP_LEVEL_KEYS.contains(&key) {
            diags.push(with_hint(
                warning(i as u64 + 1, 1, format!("unknown top-level key '{key}' is ignored")),
                format!("a registry has: {}", TOP_LEVEL_KEYS.join(", ")),
            ));
        }
    }
}

fn yaml_hint(message: &str) -> String {
    if message.contains("unknown field") {
        "check the spelling; docs/registry.md lists every key an entry may have".to_string()
    } else if message.contains("missing field") {
        "every approved, pending_review and denied entry needs a `name`".to_string()
    } else {
        "see docs/registry.md for the registry format".to_string()
    }
}
