//! The approved-server registry and everything that keeps machines true to it:
//!
//! - [`Registry`]: the registry YAML (approved / pending_review / denied, pinned versions,
//!   expiry, data scope, risk), loaded with `file:line:col` diagnostics, and [`lint`];
//! - [`Registry::servable`]: what the gateway asks before serving a server;
//! - [`discover`] + [`check`]: every MCP server in every known client config, classified
//!   APPROVED, UNAPPROVED, DENIED, EXPIRED, PENDING or DRIFT, rendered by [`report`];
//! - [`export`]: the registry as Claude Code managed settings;
//! - [`hook`]: the Claude Code hook protocol (events in, decisions out);
//! - [`tier`] and [`doctor`]: project set-up for a governance tier, and its audit.

mod check;
pub mod discover;
pub mod doctor;
mod error;
pub mod export;
pub mod hook;
mod lint;
mod load;
mod model;
pub mod pin;
pub mod report;
mod serve;
mod status;
pub mod tier;
mod wrap;

pub use check::{CheckOptions, CheckReport, CheckResult, check};
pub use discover::{ConfigProblem, Discovery, FoundServer, Locations, discover};
pub use error::RegistryError;
pub use lint::{SOON_EXPIRING_DAYS, has_errors, lint};
pub use load::MAX_REGISTRY_BYTES;
pub use model::{ApprovedServer, DataScope, DeniedServer, PendingServer, Registry, ServerConfig};
pub use serve::{Entry, NotServable, Servable, today};
pub use status::Status;
pub use wrap::{Wrapped, gateway_server, unwrap_steward_proxy};

/// Reads a registry file's text (size-limited) for [`lint`].
pub fn read_registry_text(path: &std::path::Path) -> Result<String, RegistryError> {
    load::read_limited(path)
}
