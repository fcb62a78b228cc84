//! What a report holds: the same content for HTML and JSON.

use std::collections::BTreeMap;

use serde::Serialize;
use steward_policy::PolicySummary;
use steward_store::{Anchor, Checkpoint, OpenCalls, Truncation};

/// At most this many items are listed per table (all are counted; a cut is stated in `limits`).
pub const MAX_LISTED: usize = 500;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub title: String,
    pub generated_at: String,
    pub period: Period,
    pub sources: Sources,
    /// SOC 2 and ISO 27001 controls, and the sections that evidence each.
    pub controls: Vec<Control>,
    pub access: AccessSection,
    pub decisions: DecisionsSection,
    pub approvals: ApprovalsSection,
    pub denials: DenialsSection,
    pub api_keys: KeysSection,
    pub registry: RegistrySection,
    pub tool_drift: DriftSection,
    pub canaries_and_redaction: CanarySection,
    pub integrity: IntegritySection,
    /// Listings cut short, stated so nobody mistakes them for complete.
    pub limits: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Period {
    pub since: String,
    pub until: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sources {
    pub database: String,
    pub config: Option<String>,
    pub policy: String,
    pub registry: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Control {
    pub framework: &'static str,
    pub id: &'static str,
    pub title: &'static str,
    pub sections: Vec<&'static str>,
}

/// Section ids, in report order, with their titles.
pub const SECTIONS: [(&str, &str); 9] = [
    ("access", "Who may do what"),
    ("decisions", "Decisions"),
    ("approvals", "Approvals"),
    ("denials", "Denied and blocked operations"),
    ("api_keys", "API keys"),
    ("registry", "Approved-server registry"),
    ("tool_drift", "Tool drift"),
    ("canaries_and_redaction", "Canaries and redaction"),
    ("integrity", "Audit log integrity"),
];

pub fn controls() -> Vec<Control> {
    let c = |framework, id, title, sections: &[&'static str]| Control {
        framework,
        id,
        title,
        sections: sections.to_vec(),
    };
    vec![
        c(
            "SOC 2",
            "CC6.1",
            "Logical access security: access to protected resources is restricted to authorised users",
            &["access", "decisions", "denials", "api_keys"],
        ),
        c(
            "SOC 2",
            "CC6.3",
            "Access is authorised, modified and removed by role, with least privilege and segregation of duties",
            &["access", "approvals", "api_keys"],
        ),
        c(
            "SOC 2",
            "CC7.1",
            "Detection and monitoring of configuration changes and anomalies",
            &[
                "decisions",
                "denials",
                "tool_drift",
                "canaries_and_redaction",
                "integrity",
            ],
        ),
        c(
            "SOC 2",
            "CC9.2",
            "Risks from vendors and business partners are assessed and managed",
            &["registry", "tool_drift"],
        ),
        c(
            "ISO 27001",
            "A.8.3",
            "Information access restriction",
            &["access", "decisions", "denials", "canaries_and_redaction"],
        ),
        c("ISO 27001", "A.8.24", "Use of cryptography", &["integrity", "api_keys"]),
        c(
            "ISO 27001",
            "A.8.25",
            "Secure development life cycle: changes are reviewed and approved",
            &["access", "tool_drift", "approvals"],
        ),
        c(
            "ISO 27001",
            "A.5.23",
            "Information security for the use of cloud (third-party) services",
            &["registry", "tool_drift"],
        ),
    ]
}

#[derive(Debug, Clone, Serialize)]
pub struct AccessSection {
    pub controls: Vec<&'static str>,
    pub policy: PolicySummary,
    /// Policy versions decisions were made under in the period.
    pub versions: Vec<PolicyVersion>,
    /// Hot reloads recorded in the period.
    pub changes: Vec<PolicyChange>,
    /// Principals that made calls, with their call counts.
    pub principals: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyVersion {
    pub version: String,
    pub first_seen: String,
    pub last_seen: String,
    pub decisions: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyChange {
    pub ts: String,
    pub old_version: Option<String>,
    pub new_version: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DecisionsSection {
    pub controls: Vec<&'static str>,
    /// `tools/call` decisions.
    pub total: u64,
    pub by_effect: BTreeMap<String, u64>,
    pub by_risk: BTreeMap<String, u64>,
    pub by_server: BTreeMap<String, u64>,
    pub by_door: BTreeMap<String, u64>,
    /// Per UTC day: decisions by effect.
    pub by_day: Vec<DayCount>,
    /// Every audit event in the period, by kind.
    pub events_by_kind: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DayCount {
    pub day: String,
    pub allow: u64,
    pub ask: u64,
    pub approve: u64,
    pub deny: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ApprovalsSection {
    pub controls: Vec<&'static str>,
    pub total: u64,
    pub by_state: BTreeMap<String, u64>,
    pub items: Vec<ApprovalItem>,
    /// Seconds from request to decision, over decided approvals.
    pub wait: WaitStats,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApprovalItem {
    pub id: String,
    pub requester: String,
    pub server: String,
    pub tool: String,
    pub risk: String,
    pub state: String,
    pub mode: String,
    pub reasons: Vec<String>,
    pub approvers: Vec<Vote>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub wait_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Vote {
    pub by: String,
    pub at: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct WaitStats {
    pub decided: u64,
    pub median_seconds: Option<f64>,
    pub p95_seconds: Option<f64>,
    pub max_seconds: Option<f64>,
    /// Counts per bucket (`<1m`, `1-5m`, `5-15m`, `15-60m`, `1-4h`, `>4h`).
    pub histogram: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DenialsSection {
    pub controls: Vec<&'static str>,
    /// Denied `tools/call` decisions.
    pub denied_calls: u64,
    /// Messages refused before the policy (malformed, oversized, limits).
    pub refused_messages: u64,
    /// Tools hidden from listings for their definition (scan finding or drift).
    pub blocked_tools: u64,
    pub top_reasons: Vec<(String, u64)>,
    pub by_rule: Vec<(String, u64)>,
    /// The newest denied calls.
    pub recent: Vec<EventItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventItem {
    pub seq: i64,
    pub ts: String,
    pub principal: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub risk: Option<String>,
    pub effect: Option<String>,
    pub reason: Option<String>,
    pub rule_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct KeysSection {
    pub controls: Vec<&'static str>,
    pub created: Vec<KeyItem>,
    pub revoked: Vec<KeyItem>,
    pub expired: Vec<KeyItem>,
    /// Keys usable at report time.
    pub active: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyItem {
    pub id: String,
    pub name: Option<String>,
    pub principal: String,
    pub roles: Vec<String>,
    pub created: String,
    pub expires: Option<String>,
    pub revoked: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RegistrySection {
    pub controls: Vec<&'static str>,
    /// Whether a registry was given; without one this section is empty.
    pub configured: bool,
    pub source: Option<String>,
    pub owner: Option<String>,
    pub review_cadence_days: Option<i64>,
    pub entries: Vec<RegistryItem>,
    pub expired: u64,
    pub past_review: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegistryItem {
    pub name: String,
    /// approved, pending_review or denied.
    pub status: String,
    pub owner: Option<String>,
    pub version: Option<String>,
    pub risk: Option<String>,
    pub data_scope: Option<String>,
    pub approved_date: Option<String>,
    pub expires: Option<String>,
    pub review_due: Option<String>,
    pub expired: bool,
    pub past_review: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DriftSection {
    pub controls: Vec<&'static str>,
    /// Listings that hid a drifted tool, denied calls to one, and drift warnings.
    pub events: Vec<DriftEvent>,
    pub event_count: u64,
    /// Tools drifted at report time, waiting for review.
    pub drifted_now: Vec<PinItem>,
    /// Drifts approved in the period.
    pub approved: Vec<PinItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DriftEvent {
    pub seq: i64,
    pub ts: String,
    pub server: Option<String>,
    pub tool: Option<String>,
    /// `hidden` (left out of a listing), `denied` (a call refused), `warning`.
    pub what: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PinItem {
    pub server: String,
    pub tool: String,
    pub fingerprint: String,
    pub current_fingerprint: Option<String>,
    pub drifted_at: Option<String>,
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CanarySection {
    pub controls: Vec<&'static str>,
    pub canary_calls: Vec<EventItem>,
    pub canary_count: u64,
    /// Results with sensitive data found, by what was done and what was found.
    pub redacted_results: u64,
    pub withheld_results: u64,
    pub findings_by_kind: BTreeMap<String, u64>,
    pub events: Vec<RedactionItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RedactionItem {
    pub seq: i64,
    pub ts: String,
    pub principal: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub outcome: Option<String>,
    pub findings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IntegritySection {
    pub controls: Vec<&'static str>,
    pub ok: bool,
    pub rows: u64,
    pub first_seq: i64,
    pub last_seq: i64,
    pub last_hash: Option<String>,
    pub broken: Option<(i64, String)>,
    pub truncated: Option<Truncation>,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
    /// The newest checkpoint that matches the chain.
    pub signed_head: Option<Checkpoint>,
    pub checkpoints: u64,
    pub anchor: Option<Anchor>,
    pub calls_without_outcome: OpenCalls,
    /// Whether checkpoints and anchors had to be signed by a given key.
    pub trusted_keys: Vec<String>,
}
