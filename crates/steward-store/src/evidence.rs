//! The audit log's upkeep beside the writer: sink cursors, checkpoints, prune anchors, retention.
//!
//! One connection of its own, so shipping and upkeep never share the writer's queue. Every
//! operation is a short statement or transaction; async callers use `spawn_blocking`. The SQL
//! is plain (no SQLite-only clauses) so another backend can implement the same functions.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use crate::checkpoint::{self, Anchor, Checkpoint};
use crate::cursors::{self, Lease, SinkCursor};
use crate::event::{AuditRow, COLUMNS};
use crate::retention::{self, PruneOutcome, PrunePlan, PruneRequest};
use crate::signing::SigningKey;
use crate::verify::{self, VerifyOptions, VerifyReport};
use crate::{StoreError, schema};

/// The newest row of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
    pub ts: String,
}

/// Read-write access to the audit log's upkeep tables. Cheap to share behind an `Arc`.
pub struct EvidenceStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl EvidenceStore {
    /// Opens (creating and migrating if needed) the audit database at `path`.
    pub fn open_sqlite(path: &Path) -> Result<EvidenceStore, StoreError> {
        let display = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: display.clone(),
            source,
        })?;
        schema::prepare(&conn, &display)?;
        Ok(EvidenceStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing database (for the CLI): a missing file is an error, not a new one.
    pub fn open_existing(path: &Path) -> Result<EvidenceStore, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        EvidenceStore::open_sqlite(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- the committed log ----

    pub fn head(&self) -> Result<Option<ChainHead>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT seq, hash, ts FROM audit_events ORDER BY seq DESC LIMIT 1",
                [],
                |r| {
                    Ok(ChainHead {
                        seq: r.get(0)?,
                        hash: r.get(1)?,
                        ts: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Committed rows after `seq`, oldest first, at most `limit`.
    pub fn rows_after(&self, seq: i64, limit: usize) -> Result<Vec<AuditRow>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM audit_events WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![seq, limit.min(i64::MAX as usize) as i64], AuditRow::from_sql)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn verify(&self, opts: &VerifyOptions) -> Result<VerifyReport, StoreError> {
        verify::run(&self.lock(), opts)
    }

    // ---- sink cursors ----

    pub fn cursors(&self) -> Result<Vec<SinkCursor>, StoreError> {
        cursors::list(&self.lock())
    }

    pub fn cursor(&self, sink: &str) -> Result<Option<SinkCursor>, StoreError> {
        cursors::get(&self.lock(), sink)
    }

    /// Takes or renews the lease on `sink`'s cursor (creating the cursor at 0) for `ttl`;
    /// `stale` names an owner known to be dead, whose lease may be taken at once.
    pub fn lease_sink(&self, sink: &str, owner: &str, ttl: Duration, stale: Option<&str>) -> Result<Lease, StoreError> {
        cursors::lease(&mut self.lock(), sink, owner, ttl, stale)
    }

    /// Moves the cursor to `seq` after `count` events were delivered; `false` when `owner` lost
    /// the lease meanwhile.
    pub fn advance_sink(&self, sink: &str, owner: &str, seq: i64, count: i64) -> Result<bool, StoreError> {
        cursors::advance(&self.lock(), sink, owner, seq, count)
    }

    pub fn sink_error(&self, sink: &str, error: &str) -> Result<(), StoreError> {
        cursors::record_error(&self.lock(), sink, error)
    }

    pub fn release_sink(&self, sink: &str, owner: &str) -> Result<(), StoreError> {
        cursors::release(&self.lock(), sink, owner)
    }

    // ---- checkpoints and anchors ----

    /// Signs the chain head (unsigned without a key), records the checkpoint and appends its
    /// `checkpoint` event, atomically. `None` when the log is empty.
    pub fn checkpoint(&self, key: Option<&SigningKey>, by: &str) -> Result<Option<Checkpoint>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let cp = checkpoint::append(&tx, key, by)?;
        tx.commit()?;
        Ok(cp)
    }

    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        checkpoint::list(&self.lock())
    }

    pub fn last_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        checkpoint::last(&self.lock())
    }

    /// The anchor the chain starts from after a prune.
    pub fn anchor(&self) -> Result<Option<Anchor>, StoreError> {
        checkpoint::anchor(&self.lock())
    }

    // ---- retention ----

    pub fn plan_prune(&self, req: &PruneRequest) -> Result<PrunePlan, StoreError> {
        retention::plan(&self.lock(), req)
    }

    /// Prunes as planned: verifies what goes, writes the anchor (signed with `key`) and its
    /// event, then deletes in batches of `req.batch`.
    pub fn prune(&self, req: &PruneRequest, key: Option<&SigningKey>, by: &str) -> Result<PruneOutcome, StoreError> {
        retention::prune(&mut self.lock(), req, key, by)
    }
}
