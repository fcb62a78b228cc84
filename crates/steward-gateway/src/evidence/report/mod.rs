//! `steward report`: compliance evidence for a period, from the audit database, the policy and
//! the registry, as one self-contained HTML file or the same content as JSON. Sections map to
//! SOC 2 CC6.1/CC6.3/CC7.1/CC9.2 and ISO 27001 A.8.3/A.8.24/A.8.25/A.5.23 (see [`controls`]).

mod gather;
mod html;
mod model;
mod svg;

use std::path::PathBuf;

use steward_policy::Policy;
use steward_store::AuditReader;
use steward_store::signing::PublicKey;

pub use html::render as render_html;
pub use model::*;

/// What to report on.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    pub db: PathBuf,
    /// The steward.yaml the other paths came from, for the record.
    pub config: Option<PathBuf>,
    /// The policy file; the built-in baseline when `None`.
    pub policy: Option<PathBuf>,
    pub registry: Option<PathBuf>,
    /// RFC 3339 start of the period (the end is now).
    pub since: String,
    /// Keys checkpoints and anchors must be signed with (empty: any valid signature).
    pub public_keys: Vec<PublicKey>,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] steward_store::StoreError),
    #[error("policy {path}: {message}")]
    Policy { path: String, message: String },
    #[error("registry {path}: {message}")]
    Registry { path: String, message: String },
}

/// Gathers the report's content.
pub fn build(req: &ReportRequest) -> Result<Report, ReportError> {
    let reader = AuditReader::open(&req.db)?;
    let policy = match &req.policy {
        Some(p) => Policy::from_file(p).map_err(|e| ReportError::Policy {
            path: p.display().to_string(),
            message: e.to_string(),
        })?,
        None => Policy::baseline(),
    };
    let registry = req
        .registry
        .as_deref()
        .map(|p| {
            steward_registry::Registry::from_file(p).map_err(|e| ReportError::Registry {
                path: p.display().to_string(),
                message: e.to_string(),
            })
        })
        .transpose()?;
    Ok(gather::gather(gather::Inputs {
        reader: &reader,
        policy: &policy,
        registry: registry.as_ref(),
        since: req.since.clone(),
        trusted: &req.public_keys,
        sources: Sources {
            database: req.db.display().to_string(),
            config: req.config.as_ref().map(|c| c.display().to_string()),
            policy: req
                .policy
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "built-in baseline".into()),
            registry: req.registry.as_ref().map(|r| r.display().to_string()),
        },
    })?)
}
