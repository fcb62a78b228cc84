use std::fmt;

use super::facility::Facility;

/// Why a sandboxed server cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The kernel lacks a facility the sandbox needs (and `best_effort` is off).
    #[error("{0}")]
    Unavailable(Unavailable),
    #[error("sandbox path '{path}': {message}")]
    Path { path: String, message: String },
    #[error("sandbox: cannot build the Landlock ruleset: {0}")]
    Landlock(String),
    #[error("sandbox: cannot build the seccomp filter: {0}")]
    Seccomp(String),
    #[error("sandbox: {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// The facilities a sandbox needs that this machine does not offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    pub missing: Vec<Missing>,
}

/// One missing facility: what it was needed for, why it is missing, how to do without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub facility: Facility,
    pub needed_for: &'static str,
    pub why: String,
    /// A change to the sandbox that does without it, when there is one.
    pub relax: Option<&'static str>,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the sandbox cannot be enforced on this machine, so the server was not started:"
        )?;
        for m in &self.missing {
            write!(
                f,
                "\n  - {} is missing ({}); it enforces {}",
                m.facility, m.why, m.needed_for
            )?;
        }
        let relax: Vec<&str> = self.missing.iter().filter_map(|m| m.relax).collect();
        write!(
            f,
            "\n  to start it with what this kernel offers, set `best_effort: true` in its `sandbox:` \
             (steward proxy: --sandbox-best-effort): what is missing is skipped, logged and audited"
        )?;
        for r in relax {
            write!(f, "\n  or relax the sandbox: {r}")?;
        }
        Ok(())
    }
}
