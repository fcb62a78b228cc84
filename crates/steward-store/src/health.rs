//! Whether the audit writer can write: the writer sets a failure when a commit fails and
//! clears it when one succeeds (a real batch, or a probe it runs while failing), so readiness
//! checks say the truth while nothing else is being written.

use std::sync::{Arc, Mutex};

/// Why the audit log cannot be written at the moment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit log cannot be written since {since}: {error}")]
pub struct AuditUnhealthy {
    /// RFC 3339 UTC: when the first failing commit of this spell happened.
    pub since: String,
    pub error: String,
}

/// Shared between the writer thread (which sets and clears it) and every handle.
#[derive(Clone, Default)]
pub(crate) struct WriterHealth(Arc<Mutex<Option<AuditUnhealthy>>>);

impl WriterHealth {
    pub(crate) fn failed(&self, error: &str) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_mut() {
            Some(f) => f.error = error.to_string(),
            None => {
                *slot = Some(AuditUnhealthy {
                    since: crate::writer::now_rfc3339(),
                    error: error.to_string(),
                })
            }
        }
    }

    pub(crate) fn succeeded(&self) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = slot.take() {
            tracing::info!(since = %f.since, "the audit log can be written again");
        }
    }

    pub(crate) fn failing(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    pub(crate) fn get(&self) -> Option<AuditUnhealthy> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
