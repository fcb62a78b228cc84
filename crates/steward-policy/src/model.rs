//! The compiled policy model: what a loaded policy is, after validation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cond::Condition;
use crate::detect::Detectors;
use crate::glob::ToolPattern;

/// The MCP methods Steward governs, which rules select with `method:`.
pub const GOVERNED_METHODS: [&str; 7] = [
    "tools/call",
    "tools/list",
    "resources/read",
    "resources/list",
    "resources/templates/list",
    "prompts/get",
    "prompts/list",
];

/// The registry statuses a server can have (`server.status`; null when there is no registry).
pub const SERVER_STATUSES: [&str; 5] = ["approved", "pending_review", "denied", "expired", "unlisted"];

/// The list methods, and the method that uses what they list.
pub(crate) const LIST_METHODS: [(&str, &str); 4] = [
    ("tools/list", "tools/call"),
    ("resources/list", "resources/read"),
    ("resources/templates/list", "resources/read"),
    ("prompts/list", "prompts/get"),
];

/// What happens to a call. Ordered so that the stricter effect compares greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    /// Confirmed by the user through the client's own elicitation (LOW and MEDIUM calls only;
    /// a door that cannot ask, or a riskier call, makes it `approve`).
    Ask,
    Approve,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Ask => "ask",
            Effect::Approve => "approve",
            Effect::Deny => "deny",
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Effect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "allow" => Ok(Effect::Allow),
            "ask" => Ok(Effect::Ask),
            "approve" => Ok(Effect::Approve),
            "deny" => Ok(Effect::Deny),
            other => Err(format!(
                "unknown effect '{other}' (expected allow, ask, approve or deny)"
            )),
        }
    }
}

/// How risky a call is. Ordered from least to most risky.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Risk {
    Low,
    Medium,
    High,
    Critical,
}

impl Risk {
    pub const ALL: [Risk; 4] = [Risk::Low, Risk::Medium, Risk::High, Risk::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "LOW",
            Risk::Medium => "MEDIUM",
            Risk::High => "HIGH",
            Risk::Critical => "CRITICAL",
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Risk {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "LOW" => Ok(Risk::Low),
            "MEDIUM" => Ok(Risk::Medium),
            "HIGH" => Ok(Risk::High),
            "CRITICAL" => Ok(Risk::Critical),
            other => Err(format!(
                "unknown risk '{other}' (expected LOW, MEDIUM, HIGH or CRITICAL)"
            )),
        }
    }
}

/// What a risk level leads to when no rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskEffect {
    Allow,
    Deny,
    Approve,
    /// Approve when a detector flagged the arguments, allow otherwise.
    ApproveIfDangerous,
}

impl RiskEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskEffect::Allow => "allow",
            RiskEffect::Deny => "deny",
            RiskEffect::Approve => "approve",
            RiskEffect::ApproveIfDangerous => "approve_if_dangerous",
        }
    }
}

/// The MCP tool annotations that matter to risk classification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolAnnotations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
}

impl ToolAnnotations {
    /// The risk a server's annotations claim for a tool that no `tools` entry classifies:
    /// `destructiveHint` → HIGH, anything else MEDIUM. Annotations come from the (untrusted)
    /// server, so they never make a tool less risky than MEDIUM: `readOnlyHint` lowers nothing.
    pub fn default_risk(annotations: Option<&ToolAnnotations>) -> Risk {
        ToolAnnotations::risk_floor(annotations).unwrap_or(Risk::Medium)
    }

    /// The floor a tool's annotations put under its risk, if any (`destructiveHint: true` → HIGH).
    pub fn risk_floor(annotations: Option<&ToolAnnotations>) -> Option<Risk> {
        annotations
            .is_some_and(|a| a.destructive_hint == Some(true))
            .then_some(Risk::High)
    }
}

/// Whether a policy (or one rule) is enforced, or only decided and audited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    /// Decide and audit what would happen, but let the call through.
    Shadow,
}

/// How an operation (or a tools entry) asks for human approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// Always at least approve, even when an allow rule matched (deny still wins).
    Always,
    /// Detectors alone never make the call need approval.
    Never,
    /// Approve when a detector flagged the arguments.
    IfDangerous,
}

impl Approval {
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::Always => "always",
            Approval::Never => "never",
            Approval::IfDangerous => "if_dangerous",
        }
    }
}

/// Who may approve a call that needs approval: at least `count` distinct people holding one
/// of `roles` (the policy's `approvals.default_approver_roles` when empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approvers {
    pub roles: Vec<String>,
    pub count: u32,
    /// How the call waits for its approvers; the policy's `approvals.mode` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ApprovalMode>,
    /// How long a held call waits; the policy's `approvals.hold_timeout` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_timeout: Option<std::time::Duration>,
}

impl Approvers {
    /// Combines two requirements: the union of roles, the larger count.
    pub(crate) fn merge(a: Option<Approvers>, b: &Approvers) -> Approvers {
        match a {
            None => b.clone(),
            Some(mut a) => {
                for r in &b.roles {
                    if !a.roles.contains(r) {
                        a.roles.push(r.clone());
                    }
                }
                a.count = a.count.max(b.count);
                // Queue wins over hold (it ties up no connection); the shorter hold wins.
                a.mode = match (a.mode, b.mode) {
                    (Some(ApprovalMode::Queue), _) | (_, Some(ApprovalMode::Queue)) => Some(ApprovalMode::Queue),
                    (x, y) => x.or(y),
                };
                a.hold_timeout = match (a.hold_timeout, b.hold_timeout) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    (x, y) => x.or(y),
                };
                a
            }
        }
    }
}

/// How a call that needs approval waits for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalMode {
    /// The client's request waits (up to `hold_timeout`) and then gets the real result.
    #[default]
    Hold,
    /// The client is refused at once with the approval id; one identical retry runs after approval.
    Queue,
}

impl ApprovalMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalMode::Hold => "hold",
            ApprovalMode::Queue => "queue",
        }
    }
}

/// The built-in role that may approve calls whose `approvers` name no roles (the default of
/// `approvals.default_approver_roles`). It needs no entry under `roles:`: it grants no capability.
pub const APPROVER_ROLE: &str = "steward:approver";

/// Roles every policy knows without defining them under `roles:`.
pub const BUILTIN_ROLES: [&str; 1] = [APPROVER_ROLE];

/// The policy-wide `approvals:` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalSettings {
    /// The mode of approvals whose `approvers` do not say.
    pub mode: ApprovalMode,
    /// How long a held call waits for its approvers; a time-out is a denial.
    pub hold_timeout: std::time::Duration,
    /// After approval, how long the one identical retry (queue mode, lost clients) may take.
    pub grant_window: std::time::Duration,
    /// How long a pending approval can be approved at all.
    pub expiry: std::time::Duration,
    /// Who may approve a call whose `approvers` name no roles; never empty.
    pub default_approver_roles: Vec<String>,
    /// How long a held call whose client sent no progress token waits before it is answered
    /// queue-style (clients without progress updates commonly time out after 60 s).
    pub hold_without_progress: std::time::Duration,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        ApprovalSettings {
            mode: ApprovalMode::Hold,
            hold_timeout: std::time::Duration::from_secs(5 * 60),
            grant_window: std::time::Duration::from_secs(15 * 60),
            expiry: std::time::Duration::from_secs(60 * 60),
            default_approver_roles: vec![APPROVER_ROLE.to_string()],
            hold_without_progress: std::time::Duration::from_secs(20),
        }
    }
}

/// What the policy's `servers:` inventory says about one server.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerDef {
    /// The server's tools; empty when the inventory does not list them.
    pub tools: Vec<String>,
    pub version: Option<String>,
    pub data_scope: Option<String>,
    pub risk: Option<Risk>,
}

/// A named principal's static attributes from the policy file.
#[derive(Debug, Clone, Default)]
pub(crate) struct PrincipalDef {
    pub roles: Vec<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub kind: PrincipalKind,
}

/// What a principal is (`kind:` in `principals:`): a person, or an agent acting for one. An
/// agent can never decide an approval, whatever its roles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    #[default]
    Human,
    Agent,
}

/// An operation: a refinement of a tool by its arguments.
#[derive(Debug)]
pub(crate) struct Operation {
    pub name: String,
    pub when: Option<Condition>,
    pub risk: Option<Risk>,
    pub requires: Vec<String>,
    pub approval: Option<Approval>,
    pub approvers: Option<Approvers>,
}

/// A `tools` entry: risk and required capabilities for the tools its pattern matches.
#[derive(Debug)]
pub(crate) struct ToolClass {
    pub patterns: Vec<ToolPattern>,
    pub risk: Option<Risk>,
    pub requires: Vec<String>,
    pub approval: Option<Approval>,
    pub approvers: Option<Approvers>,
    pub operations: Vec<Operation>,
}

impl ToolClass {
    pub fn label(&self) -> String {
        self.patterns
            .iter()
            .map(ToolPattern::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    pub id: String,
    pub patterns: Vec<ToolPattern>,
    pub methods: Vec<String>,
    pub when: Option<Condition>,
    pub effect: Effect,
    pub reason: Option<String>,
    pub approvers: Option<Approvers>,
    pub shadow: bool,
}

impl Rule {
    pub fn applies_to_method(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method)
    }
}

/// A loaded, validated policy. Cheap to share behind an `Arc`; decisions take `&self`.
#[derive(Debug)]
pub struct Policy {
    pub(crate) source_name: String,
    pub(crate) version: String,
    pub(crate) default: Effect,
    pub(crate) mode: Mode,
    pub(crate) timezone: Option<chrono_tz::Tz>,
    pub(crate) roles: BTreeMap<String, BTreeSet<String>>,
    pub(crate) principals: BTreeMap<String, PrincipalDef>,
    pub(crate) servers: BTreeMap<String, ServerDef>,
    pub(crate) tools: Vec<ToolClass>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) risk_effects: BTreeMap<Risk, RiskEffect>,
    pub(crate) detectors: Detectors,
    pub(crate) approvals: ApprovalSettings,
    pub(crate) protections: crate::protections::Protections,
    /// Which `tools` entry and rules apply to a server/tool pair, computed on first use.
    pub(crate) index: crate::index::Index,
}

impl Policy {
    /// Defences beyond the call itself: scanning, drift, output protection, budgets, canaries.
    pub fn protections(&self) -> &crate::protections::Protections {
        &self.protections
    }

    /// A short content hash (SHA-256, 16 hex digits) that identifies this policy's text.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Where the policy came from (a file path, or a built-in name).
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    pub fn default_effect(&self) -> Effect {
        self.default
    }

    /// Whether the whole policy is in shadow mode (decides and audits, but allows).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The detectors this policy runs.
    pub fn detectors(&self) -> &Detectors {
        &self.detectors
    }

    /// The policy-wide approval settings (`approvals:`).
    pub fn approval_settings(&self) -> &ApprovalSettings {
        &self.approvals
    }

    /// The roles the policy's `principals:` entry gives `id` (empty when it has none).
    pub fn principal_roles(&self, id: &str) -> Vec<String> {
        self.principals.get(id).map(|d| d.roles.clone()).unwrap_or_default()
    }

    /// Whether the policy's `principals:` marks `id` as `kind: agent`. Names compare without
    /// case, as approvers do: `Bot` is the agent `bot`.
    pub fn is_agent(&self, id: &str) -> bool {
        let id = id.trim();
        self.principals
            .iter()
            .any(|(name, d)| d.kind == PrincipalKind::Agent && name.trim().eq_ignore_ascii_case(id))
    }
}
