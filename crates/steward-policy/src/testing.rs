//! Policy tests: YAML files of calls and the decisions they must get (`steward policy test`).
//!
//! ```yaml
//! policy: policy.yaml          # relative to the test file
//! tests:
//!   - name: operator runs uptime
//!     principal: alice          # or {id: alice, roles: [operator], attributes: {...}, auth: jwt}
//!     tool: it-ops/ssh-exec
//!     args: {host: web1, command: uptime}
//!     expect: {effect: allow, risk: HIGH, flags: [], rule: some-id}
//! ```

use std::time::SystemTime;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::decide::{Call, Decision, Principal};
use crate::error::{Diagnostic, PolicyError};
use crate::model::{Effect, Policy, Risk, ToolAnnotations};

/// Test files larger than this are refused.
const MAX_TEST_BYTES: usize = 4 * 1024 * 1024;

/// A parsed test file.
#[derive(Debug)]
pub struct TestFile {
    /// The policy to test, as written (relative to the test file).
    pub policy: Option<String>,
    pub cases: Vec<TestCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    policy: Option<String>,
    tests: Vec<TestCase>,
}

/// One call and what the policy must decide about it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: Spanned<String>,
    pub principal: PrincipalSpec,
    /// `server/tool` (for `resources/read`, `server/uri`).
    pub tool: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub args: Option<serde_json::Value>,
    #[serde(default)]
    pub annotations: Option<ToolAnnotations>,
    #[serde(default)]
    pub request: Request,
    /// What the registry would say about the server.
    #[serde(default)]
    pub server: ServerInfo,
    /// When the call happens (RFC 3339), for time conditions; default: now.
    #[serde(default)]
    pub time: Option<String>,
    pub expect: Expect,
}

/// A principal by name (its roles come from the policy), or in full.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PrincipalSpec {
    Name(String),
    Full(PrincipalDoc),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalDoc {
    pub id: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub auth: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub client_name: Option<String>,
    pub client_version: Option<String>,
    pub door: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerInfo {
    pub version: Option<String>,
    pub data_scope: Option<String>,
    pub risk: Option<Risk>,
    /// The registry status (`approved`, `pending_review`, `denied`, `expired`, `unlisted`).
    #[serde(default)]
    pub status: Option<String>,
}

/// What the decision must be. Only `effect` is required; the rest is checked when given.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub effect: Effect,
    #[serde(default)]
    pub risk: Option<Risk>,
    /// Exactly these flags (order does not matter); `[]` means none.
    #[serde(default)]
    pub flags: Option<Vec<String>>,
    /// This rule is among the deciding rules.
    #[serde(default)]
    pub rule: Option<String>,
    /// Exactly these deciding rules.
    #[serde(default)]
    pub rules: Option<Vec<String>>,
    /// The operation that refined the tool; `none` for no operation.
    #[serde(default)]
    pub operation: Option<String>,
    /// The would-be effect under shadow mode; `none` when shadow mode changes nothing.
    #[serde(default)]
    pub shadow: Option<String>,
    /// Roles that may approve (for an approve decision).
    #[serde(default)]
    pub approvers: Option<Vec<String>>,
    /// A text the reason must contain.
    #[serde(default)]
    pub reason: Option<String>,
}

/// How one test case went.
#[derive(Debug)]
pub struct CaseResult {
    /// What did not match, one line each; empty when the case passed.
    pub failures: Vec<String>,
    pub decision: Decision,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl TestFile {
    /// Parses a test file; `name` is used in diagnostics.
    pub fn from_yaml(text: &str, name: &str) -> Result<TestFile, PolicyError> {
        let fail = |line, column, message: String, hint: &str| PolicyError::Invalid {
            file: name.to_string(),
            diagnostics: vec![Diagnostic::error(line, column, message).hint(hint)],
        };
        if text.len() > MAX_TEST_BYTES {
            return Err(fail(1, 1, "test file is larger than 4 MiB".into(), "split it"));
        }
        let doc: FileDoc = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
            let message = crate::load::strip_location(e.without_snippet().to_string().lines().next().unwrap_or("invalid YAML"));
            fail(
                line,
                column,
                message,
                "a test file has `policy:` and `tests:`; each test has name, principal, tool, args and expect (docs/policy.md)",
            )
        })?;
        for case in &doc.tests {
            if let Err(e) = case.target() {
                return Err(fail(
                    case.name.referenced.line(),
                    case.name.referenced.column(),
                    e,
                    "write the tool as server/tool",
                ));
            }
            if let Some(t) = &case.time
                && chrono::DateTime::parse_from_rfc3339(t).is_err()
            {
                return Err(fail(
                    case.name.referenced.line(),
                    case.name.referenced.column(),
                    format!("time '{t}' is not RFC 3339"),
                    "e.g. 2026-03-02T09:30:00+01:00",
                ));
            }
            if let Some(m) = &case.method
                && !crate::load::GOVERNED_METHODS.contains(&m.as_str())
            {
                return Err(fail(
                    case.name.referenced.line(),
                    case.name.referenced.column(),
                    format!("'{m}' is not a governed method"),
                    &crate::model::GOVERNED_METHODS.join(", "),
                ));
            }
        }
        Ok(TestFile {
            policy: doc.policy,
            cases: doc.tests,
        })
    }
}

impl TestCase {
    /// The line of the case's `name`, for reports.
    pub fn line(&self) -> u64 {
        self.name.referenced.line()
    }

    fn target(&self) -> Result<(&str, &str), String> {
        match self.tool.split_once('/') {
            Some((s, t)) if !s.is_empty() && !t.is_empty() => Ok((s, t)),
            _ => Err(format!("tool '{}' is not server/tool", self.tool)),
        }
    }

    fn principal(&self) -> Principal {
        match &self.principal {
            PrincipalSpec::Name(id) => Principal::new(id.clone(), "test"),
            PrincipalSpec::Full(p) => Principal {
                id: p.id.clone(),
                roles: p.roles.clone(),
                attributes: p.attributes.clone(),
                auth: p.auth.clone().unwrap_or_else(|| "test".into()),
            },
        }
    }

    /// Decides the case's call with `policy` (explaining it) and compares with the expectation.
    pub fn run(&self, policy: &Policy) -> CaseResult {
        let principal = self.principal();
        let (server, tool) = self.target().unwrap_or(("", ""));
        let empty = serde_json::Value::Object(Default::default());
        let args = self.args.as_ref().unwrap_or(&empty);
        let now = self
            .time
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(SystemTime::from)
            .unwrap_or_else(SystemTime::now);
        let call = Call {
            method: self.method.as_deref().unwrap_or("tools/call"),
            annotations: self.annotations.as_ref(),
            door: self.request.door.as_deref().unwrap_or("test"),
            client_name: self.request.client_name.as_deref(),
            client_version: self.request.client_version.as_deref(),
            source: self.request.source.as_deref(),
            now,
            server_version: self.server.version.as_deref(),
            server_data_scope: self.server.data_scope.as_deref(),
            server_risk: self.server.risk,
            server_status: self.server.status.as_deref(),
            ..Call::tool_call(&principal, server, tool, args)
        };
        let d = policy.explain(&call);
        let e = &self.expect;
        let mut failures = Vec::new();
        if d.effect != e.effect {
            failures.push(format!("effect: expected {}, got {}", e.effect, d.effect));
        }
        if let Some(r) = e.risk
            && r != d.risk
        {
            failures.push(format!("risk: expected {r}, got {}", d.risk));
        }
        if let Some(flags) = &e.flags {
            let mut want = flags.clone();
            want.sort();
            want.dedup();
            if want != d.flags {
                failures.push(format!(
                    "flags: expected [{}], got [{}]",
                    want.join(", "),
                    d.flags.join(", ")
                ));
            }
        }
        let deciding: Vec<&String> = d
            .rule_ids
            .iter()
            .chain(d.shadow.iter().flat_map(|s| s.rule_ids.iter()))
            .collect();
        if let Some(rule) = &e.rule
            && !deciding.contains(&rule)
        {
            failures.push(format!(
                "rule: expected '{rule}' among the deciding rules, got [{}]",
                join(&deciding)
            ));
        }
        if let Some(rules) = &e.rules {
            let mut want: Vec<&String> = rules.iter().collect();
            want.sort();
            let mut got = deciding.clone();
            got.sort();
            got.dedup();
            if want != got {
                failures.push(format!("rules: expected [{}], got [{}]", join(&want), join(&got)));
            }
        }
        if let Some(op) = &e.operation {
            let got = d.operation.as_deref().unwrap_or("none");
            if op != got {
                failures.push(format!("operation: expected {op}, got {got}"));
            }
        }
        if let Some(s) = &e.shadow {
            let got = d.shadow.as_ref().map(|s| s.effect.as_str()).unwrap_or("none");
            if s != got {
                failures.push(format!("shadow: expected {s}, got {got}"));
            }
        }
        if let Some(roles) = &e.approvers {
            let got = d.approvers.as_ref().map(|a| a.roles.clone()).unwrap_or_default();
            let (mut w, mut g) = (roles.clone(), got);
            w.sort();
            g.sort();
            if w != g {
                failures.push(format!(
                    "approvers: expected [{}], got [{}]",
                    w.join(", "),
                    g.join(", ")
                ));
            }
        }
        if let Some(text) = &e.reason
            && !d.reason().contains(text.as_str())
            && !d
                .shadow
                .as_ref()
                .is_some_and(|s| s.reasons.join("; ").contains(text.as_str()))
        {
            failures.push(format!("reason: expected it to contain {text:?}, got {:?}", d.reason()));
        }
        CaseResult { failures, decision: d }
    }
}

fn join(items: &[&String]) -> String {
    items.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}
