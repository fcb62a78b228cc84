//! Which store `steward approvals` and `steward audit` read: `--db`, else the gateway's
//! (`--config`'s `store.sqlite` or `store.postgres`), else the demo gateway's
//! `./steward-data/steward.db` when it exists, else the stdio proxy's default. The command says
//! on stderr which one it read.

use std::path::{Path, PathBuf};

use anyhow::Context;
use steward_gateway::evidence::EvidenceFile;
use steward_store::{Store, StoreLocation};

use crate::paths::default_audit_db;

/// Where `steward serve` on embedded defaults keeps its store, relative to where it runs.
pub const DEMO_STORE: &str = "steward-data/steward.db";

/// A store found, with the policy that goes with it (a gateway's `policy:`), and how.
pub struct Located {
    pub location: StoreLocation,
    pub policy: Option<PathBuf>,
    /// The name rows written with this store carry (a PostgreSQL gateway's instance).
    pub instance: Option<String>,
    pub how: &'static str,
}

/// Finds the store. `config`: a gateway's steward.yaml.
pub fn locate(db: Option<&Path>, config: Option<&Path>) -> anyhow::Result<Located> {
    if let Some(db) = db {
        return Ok(Located {
            location: StoreLocation::Sqlite(db.to_path_buf()),
            policy: None,
            instance: None,
            how: "--db",
        });
    }
    if let Some(config) = config {
        // Only the store and policy keys are read: an operator's shell need not hold the
        // servers' secrets for these commands to work.
        let cfg = EvidenceFile::load(config)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("cannot read the gateway config {}", config.display()))?;
        let how = if cfg.store.is_postgres() {
            "the gateway's store.postgres (--config)"
        } else {
            "the gateway's store.sqlite (--config)"
        };
        return Ok(Located {
            location: cfg.store,
            policy: cfg.policy,
            instance: cfg.instance,
            how,
        });
    }
    let demo = PathBuf::from(DEMO_STORE);
    if demo.is_file() {
        return Ok(Located {
            location: StoreLocation::Sqlite(demo),
            policy: None,
            instance: None,
            how: "the gateway's embedded defaults, found in the current directory",
        });
    }
    Ok(Located {
        location: StoreLocation::Sqlite(default_audit_db()),
        policy: None,
        instance: None,
        how: "the stdio proxy's default; pass --config or --db for another",
    })
}

impl Located {
    /// Says on stderr which store the command reads.
    pub fn announce(&self) {
        let place = match &self.location {
            StoreLocation::Sqlite(p) => p.display().to_string(),
            other => other.describe(),
        };
        eprintln!("steward: store {place} ({})", self.how);
    }

    /// The SQLite file, or an error naming `what` for a PostgreSQL store.
    pub fn sqlite_path(&self, what: &str) -> anyhow::Result<PathBuf> {
        match &self.location {
            StoreLocation::Sqlite(p) => Ok(p.clone()),
            other => anyhow::bail!("{what} reads SQLite stores only; {} is PostgreSQL", other.describe()),
        }
    }

    /// Opens the (existing) store; rows written through it name the config's instance.
    pub fn open(&self) -> anyhow::Result<Store> {
        Ok(Store::open_existing(&self.location)?.with_instance(self.instance.clone()))
    }
}
