//! Which SQLite store `steward approvals` and `steward audit` read: `--db`, else the gateway's
//! (`--config`'s `store.sqlite`), else the demo gateway's `./steward-data/steward.db` when it
//! exists, else the stdio proxy's default. The command says on stderr which one it read.

use std::path::{Path, PathBuf};

use anyhow::Context;
use steward_gateway::evidence::EvidenceFile;

use crate::paths::default_audit_db;

/// Where `steward serve` on embedded defaults keeps its store, relative to where it runs.
pub const DEMO_STORE: &str = "steward-data/steward.db";

/// A store found, with the policy that goes with it (a gateway's `policy:`), and how.
pub struct Located {
    pub path: PathBuf,
    pub policy: Option<PathBuf>,
    pub how: &'static str,
}

/// Finds the store. `config`: a gateway's steward.yaml.
pub fn locate(db: Option<&Path>, config: Option<&Path>) -> anyhow::Result<Located> {
    if let Some(db) = db {
        return Ok(Located {
            path: db.to_path_buf(),
            policy: None,
            how: "--db",
        });
    }
    if let Some(config) = config {
        // Only the store and policy keys are read: an operator's shell need not hold the
        // servers' secrets for these commands to work.
        let cfg = EvidenceFile::load(config)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("cannot read the gateway config {}", config.display()))?;
        return Ok(Located {
            path: cfg.sqlite,
            policy: cfg.policy,
            how: "the gateway's store.sqlite (--config)",
        });
    }
    let demo = PathBuf::from(DEMO_STORE);
    if demo.is_file() {
        return Ok(Located {
            path: demo,
            policy: None,
            how: "the gateway's embedded defaults, found in the current directory",
        });
    }
    Ok(Located {
        path: default_audit_db(),
        policy: None,
        how: "the stdio proxy's default; pass --config or --db for another",
    })
}

impl Located {
    /// Says on stderr which store the command reads.
    pub fn announce(&self) {
        eprintln!("steward: store {} ({})", self.path.display(), self.how);
    }
}
