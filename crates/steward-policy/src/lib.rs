//! Steward's policy engine: pure, synchronous decisions over MCP calls.
//!
//! A [`Policy`] is loaded from YAML ([`Policy::from_yaml`]), validated strictly, and then
//! asked to [`Policy::decide`] on a [`Call`]. No IO, no async: doors build calls, the engine
//! answers with a [`Decision`], and doors enforce it.

mod check;
mod cond;
mod decide;
pub mod detect;
pub mod digest;
mod error;
mod glob;
mod index;
mod load;
mod model;
mod native;
pub mod protections;
mod summary;
pub mod testing;
mod vars;

pub use decide::{Call, Decision, Principal, Shadow, Step};
pub use error::{Diagnostic, PolicyError, Severity};
pub use glob::ToolPattern;
pub use model::{
    APPROVER_ROLE, Approval, ApprovalMode, ApprovalSettings, Approvers, BUILTIN_ROLES, Effect, GOVERNED_METHODS, Mode,
    Policy, PrincipalKind, Risk, RiskEffect, SERVER_STATUSES, ToolAnnotations,
};
pub use summary::{PolicySummary, PrincipalSummary, RoleSummary, RuleSummary, ToolClassSummary};

/// The built-in baseline policy used when no policy file is given: default allow, detectors on,
/// dangerous HIGH calls and every CRITICAL call need approval.
pub const BASELINE_POLICY_YAML: &str = include_str!("baseline.yaml");

impl Policy {
    /// The built-in baseline policy (see [`BASELINE_POLICY_YAML`]).
    pub fn baseline() -> Policy {
        Policy::from_yaml(BASELINE_POLICY_YAML, "<built-in baseline>").expect("the built-in baseline policy is valid")
    }
}
