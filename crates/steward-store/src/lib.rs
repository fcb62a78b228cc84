//! Steward's durable state: the hash-chained, tamper-evident audit log, and beside it the sink
//! cursors, signed checkpoints and prune anchors that let it be shipped, kept and proved.
//!
//! One writer thread owns the SQLite connection and group-commits: every event waiting when a
//! transaction starts goes into that transaction, so throughput grows with load while each
//! caller can still wait for its own row to be committed ([`AuditLog::append`]).

mod activity;
mod approval;
mod approvals;
mod cef;
mod chain;
mod checkpoint;
mod cursors;
mod error;
mod event;
mod evidence;
mod health;
mod keys;
mod pins;
mod reader;
mod retention;
mod schema;
pub mod signing;
mod verify;
mod writer;

pub use activity::{
    ActivityFilter, AlertRow, AlertRows, DenialBurst, HourCount, MAX_ACTIVITY_ROWS, Overview, hourly_series,
};
pub use approval::{APPROVER_ROLE, Actor, Approval, ApprovalError, ApprovalState, ApprovalVote, Approved, NewApproval};
pub use approvals::{ApprovalStore, MAX_LIST, Reusable, SYSTEM_ACTOR, human as human_duration, may_approve, may_deny};
pub use cef::{cef_line, cef_severity};
pub use checkpoint::{Anchor, Checkpoint, Signature};
pub use cursors::{Lease, SinkCursor};
pub use error::StoreError;
pub use event::{AuditEvent, AuditRow, EventKind};
pub use evidence::{ChainHead, EvidenceStore};
pub use health::AuditUnhealthy;
pub use keys::{ApiKey, CreatedKey, KEY_LEN, KEY_PREFIX, KeyError, KeyStore, NewKey, Revoked, split_key};
pub use pins::{
    KnownTool, MAX_TOOL_JSON, Pin, PinApproval, PinDiff, PinError, PinSource, PinState, PinStatus, PinStore,
};
pub use reader::{AuditReader, QueryFilter, Stats};
pub use retention::{PruneOutcome, PrunePlan, PruneRequest};
pub use verify::{
    AnchorCheck, CheckpointSummary, MAX_LISTED_OPEN_CALLS, OpenCall, OpenCalls, Truncation, VerifyOptions, VerifyReport,
};
pub use writer::{AuditLog, now_rfc3339};
