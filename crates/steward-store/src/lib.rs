//! Steward's durable state: the hash-chained, tamper-evident audit log.
//!
//! One writer thread owns the SQLite connection and group-commits: every event waiting when a
//! transaction starts goes into that transaction, so throughput grows with load while each
//! caller can still wait for its own row to be committed ([`AuditLog::append`]).

mod approval;
mod approvals;
mod error;
mod event;
mod health;
mod keys;
mod pins;
mod reader;
mod schema;
mod writer;

pub use approval::{APPROVER_ROLE, Actor, Approval, ApprovalError, ApprovalState, ApprovalVote, Approved, NewApproval};
pub use approvals::{ApprovalStore, MAX_LIST, Reusable, SYSTEM_ACTOR, human as human_duration};
pub use error::StoreError;
pub use event::{AuditEvent, AuditRow, EventKind};
pub use health::AuditUnhealthy;
pub use keys::{ApiKey, CreatedKey, KEY_LEN, KEY_PREFIX, KeyError, KeyStore, NewKey, Revoked, split_key};
pub use pins::{
    KnownTool, MAX_TOOL_JSON, Pin, PinApproval, PinDiff, PinError, PinSource, PinState, PinStatus, PinStore,
};
pub use reader::{AuditReader, QueryFilter, Stats, VerifyReport};
pub use writer::{AuditLog, now_rfc3339};
