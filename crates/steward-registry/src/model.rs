//! The loaded registry: which MCP servers an organisation approved, is reviewing, or denied.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::Serialize;
use steward_policy::Risk;

/// How sensitive the data a server can reach is. Ordered from least to most sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DataScope {
    Public,
    Internal,
    Confidential,
    Restricted,
}

impl DataScope {
    pub const ALL: [DataScope; 4] = [
        DataScope::Public,
        DataScope::Internal,
        DataScope::Confidential,
        DataScope::Restricted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DataScope::Public => "PUBLIC",
            DataScope::Internal => "INTERNAL",
            DataScope::Confidential => "CONFIDENTIAL",
            DataScope::Restricted => "RESTRICTED",
        }
    }
}

impl fmt::Display for DataScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DataScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DataScope::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown data_scope '{s}' (expected PUBLIC, INTERNAL, CONFIDENTIAL or RESTRICTED)"))
    }
}

/// How a server is started (stdio) or reached (remote `url`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServerConfig {
    /// The program to run, for stdio servers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment for the server; values may reference `${VAR}`. Never compared for drift.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The endpoint, for remote servers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The sandbox the server starts in (`sandbox:`, see docs/sandbox.md), as written: the
    /// gateway reads it. Never compared for drift.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<serde_json::Value>,
}

impl ServerConfig {
    /// `command args...` as one line, for messages.
    pub fn command_line(&self) -> String {
        match (&self.command, &self.url) {
            (Some(c), _) => std::iter::once(c.as_str())
                .chain(self.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            (None, Some(u)) => u.clone(),
            (None, None) => String::new(),
        }
    }

    /// The exact argv (`command` then `args`), for stdio servers.
    pub fn argv(&self) -> Option<Vec<String>> {
        self.command
            .as_ref()
            .map(|c| std::iter::once(c.clone()).chain(self.args.iter().cloned()).collect())
    }
}

/// An `approved` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovedServer {
    pub name: String,
    pub version: Option<String>,
    pub source: Option<String>,
    pub npm_package: Option<String>,
    pub approved_by: Option<String>,
    pub approved_date: Option<NaiveDate>,
    /// The last day the approval is valid.
    pub expires: Option<NaiveDate>,
    pub data_scope: DataScope,
    pub risk: Risk,
    pub rationale: Option<String>,
    pub restrictions: Vec<String>,
    pub config: Option<ServerConfig>,
    /// `sandbox: required`: the server may only run inside a sandbox (through
    /// `steward proxy --sandbox`, or the gateway with a `sandbox:` in `config`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sandbox_required: bool,
    /// Line of the entry in the registry file (0 when unknown).
    #[serde(skip)]
    pub line: u64,
}

impl ApprovedServer {
    /// Whether the approval has lapsed on `today` (it is valid through its `expires` day).
    pub fn is_expired(&self, today: NaiveDate) -> bool {
        self.expires.is_some_and(|e| today > e)
    }
}

/// A `pending_review` entry: requested, not yet approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingServer {
    pub name: String,
    pub version: Option<String>,
    pub npm_package: Option<String>,
    pub requested_by: Option<String>,
    pub requested_date: Option<String>,
    pub notes: Option<String>,
    pub config: Option<ServerConfig>,
    #[serde(skip)]
    pub line: u64,
}

/// A `denied` entry, with why and what to use instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeniedServer {
    pub name: String,
    pub reason: Option<String>,
    pub alternative: Option<String>,
    pub npm_package: Option<String>,
    pub denied_by: Option<String>,
    pub denied_date: Option<String>,
    pub config: Option<ServerConfig>,
    #[serde(skip)]
    pub line: u64,
}

/// A loaded registry file.
#[derive(Debug, Clone, Serialize)]
pub struct Registry {
    /// Where it came from (a path), for messages.
    pub source_name: String,
    /// Free-form: organisation, owner, version, updated...
    pub metadata: serde_json::Value,
    pub approved: Vec<ApprovedServer>,
    pub pending_review: Vec<PendingServer>,
    pub denied: Vec<DeniedServer>,
    /// Free-form: how version bumps of approved servers are handled.
    pub version_bump_policy: serde_json::Value,
    /// Free-form: who to call and what to do when a server misbehaves.
    pub incident_response: serde_json::Value,
}

impl Registry {
    pub fn approved(&self, name: &str) -> Option<&ApprovedServer> {
        self.approved.iter().find(|a| a.name == name)
    }

    pub fn pending(&self, name: &str) -> Option<&PendingServer> {
        self.pending_review.iter().find(|a| a.name == name)
    }

    pub fn denied(&self, name: &str) -> Option<&DeniedServer> {
        self.denied.iter().find(|a| a.name == name)
    }

    /// `metadata.<key>` as a string, when it is one.
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(|v| v.as_str())
    }
}
