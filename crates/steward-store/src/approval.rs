//! What an approval is: its states, its record, and why a transition was refused.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Where an approval is in its life: `pending → approved | denied | expired | cancelled`, and
/// an approved call that runs ends `executed | failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalState {
    Pending,
    Approved,
    Denied,
    Expired,
    Cancelled,
    Executed,
    Failed,
}

impl ApprovalState {
    pub const ALL: [ApprovalState; 7] = [
        ApprovalState::Pending,
        ApprovalState::Approved,
        ApprovalState::Denied,
        ApprovalState::Expired,
        ApprovalState::Cancelled,
        ApprovalState::Executed,
        ApprovalState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Denied => "denied",
            ApprovalState::Expired => "expired",
            ApprovalState::Cancelled => "cancelled",
            ApprovalState::Executed => "executed",
            ApprovalState::Failed => "failed",
        }
    }
}

impl fmt::Display for ApprovalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApprovalState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApprovalState::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown approval state '{s}' (expected pending, approved, denied, expired, cancelled, executed or failed)"))
    }
}

/// One approver's yes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ApprovalVote {
    pub by: String,
    /// RFC 3339 UTC.
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A stored approval, as `approvals list --json` and the HTTP API show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    pub id: String,
    pub state: ApprovalState,
    /// Who asked for the call.
    pub principal: String,
    pub server: String,
    pub tool: String,
    pub risk: String,
    /// The decision that asked for approval.
    pub decision_id: String,
    /// The arguments as approvers see them (secrets redacted).
    pub args: serde_json::Value,
    /// `sha256:` of the canonical JSON of the real arguments: what the approval is bound to.
    pub args_digest: String,
    pub policy_version: String,
    pub reasons: Vec<String>,
    pub rule_ids: Vec<String>,
    pub flags: Vec<String>,
    /// At least `required_count` distinct approvers, each holding one of `required_roles`
    /// ([`APPROVER_ROLE`] when empty: rows written before approver roles were required).
    pub required_roles: Vec<String>,
    pub required_count: u32,
    /// `hold` or `queue`.
    pub mode: String,
    pub door: Option<String>,
    pub session: Option<String>,
    pub client: Option<String>,
    pub created_at: String,
    /// After this, a pending approval can no longer be approved.
    pub expires_at: String,
    /// After approval, how long the granted call may take to arrive.
    pub grant_window_seconds: u64,
    pub approvals: Vec<ApprovalVote>,
    /// When and by whom the approval reached its current final state, and why.
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    /// Until when the approved call may run (queue mode, or a held client that went away).
    pub grant_expires_at: Option<String>,
    /// When the approved call was released, and by which decision.
    pub consumed_at: Option<String>,
    pub consumed_by: Option<String>,
    pub finished_at: Option<String>,
}

impl Approval {
    /// `server/tool`.
    pub fn target(&self) -> String {
        format!("{}/{}", self.server, self.tool)
    }

    /// `1/2`: approvals given over approvals needed.
    pub fn progress(&self) -> String {
        format!("{}/{}", self.approvals.len(), self.required_count)
    }

    /// Whether the approved call has been released to run.
    pub fn consumed(&self) -> bool {
        self.consumed_at.is_some()
    }

    /// The roles one of which an approver must hold: `required_roles`, or [`APPROVER_ROLE`]
    /// when that is empty. Never empty, so no approval is open to anyone authenticated.
    pub fn approver_roles(&self) -> Vec<String> {
        if self.required_roles.is_empty() {
            vec![APPROVER_ROLE.to_string()]
        } else {
            self.required_roles.clone()
        }
    }
}

/// The role that may approve what names no approver roles. The same name as
/// `steward_policy::APPROVER_ROLE` (the store does not depend on the policy crate).
pub const APPROVER_ROLE: &str = "steward:approver";

/// What creating an approval needs.
#[derive(Debug, Clone)]
pub struct NewApproval {
    /// From [`crate::ApprovalStore::new_id`], so a decision row can name it before it exists.
    pub id: String,
    pub decision_id: String,
    pub principal: String,
    pub server: String,
    pub tool: String,
    /// Redacted.
    pub args: serde_json::Value,
    pub args_digest: String,
    pub policy_version: String,
    pub risk: String,
    pub reasons: Vec<String>,
    pub rule_ids: Vec<String>,
    pub flags: Vec<String>,
    pub required_roles: Vec<String>,
    pub required_count: u32,
    pub mode: String,
    pub expiry: std::time::Duration,
    pub grant_window: std::time::Duration,
    pub door: Option<String>,
    pub session: Option<String>,
    pub client: Option<String>,
}

/// Who acts on an approval, and the roles they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub roles: Vec<String>,
}

impl Actor {
    /// Whether this actor holds a role that may approve or deny `a` (a principal without
    /// roles never may). Says nothing about the requester rule or the approval's state.
    pub fn may_decide(&self, a: &Approval) -> bool {
        !self.roles.is_empty() && a.approver_roles().iter().any(|r| self.roles.contains(r))
    }
}

/// What an approve did.
#[derive(Debug, Clone)]
pub struct Approved {
    pub approval: Approval,
    /// True when this approval completed the count (the call may now run).
    pub complete: bool,
}

/// Why an approval operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    #[error("no approval with id '{0}' (see `steward approvals list`)")]
    NotFound(String),
    #[error("approval {id} is {state}{}; only a pending approval can be {action}", by.as_ref().map(|b| format!(" (by {b})")).unwrap_or_default())]
    NotPending {
        id: String,
        state: ApprovalState,
        by: Option<String>,
        action: &'static str,
    },
    #[error("approval {id} expired at {at}; it can no longer be approved (the call has to be made again)")]
    Expired { id: String, at: String },
    #[error("{approver} asked for the call of approval {id} and cannot approve it: someone else has to")]
    SelfApproval { id: String, approver: String },
    #[error("{approver} has already approved {id} ({progress}); it needs {missing} more approval(s) from someone else")]
    AlreadyApproved {
        id: String,
        approver: String,
        progress: String,
        missing: u32,
    },
    #[error("{approver} cannot {action} {id}: it needs an approver with role {}, and {approver} has {}", required.join(" or "), if has.is_empty() { "no role".to_string() } else { format!("only {}", has.join(", ")) })]
    MissingRole {
        id: String,
        approver: String,
        action: &'static str,
        required: Vec<String>,
        has: Vec<String>,
    },
    #[error("{0}")]
    InvalidInput(String),
}

impl ApprovalError {
    /// True when the request was refused by a rule (as opposed to the store failing).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, ApprovalError::Store(_))
    }
}

impl From<rusqlite::Error> for ApprovalError {
    fn from(e: rusqlite::Error) -> Self {
        ApprovalError::Store(crate::StoreError::Sqlite(e))
    }
}
