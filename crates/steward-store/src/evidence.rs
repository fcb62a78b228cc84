//! The audit log's upkeep beside the writer: sink cursors, checkpoints, prune anchors, retention.
//!
//! One connection of its own (SQLite; on PostgreSQL the process's pool), so shipping and upkeep
//! never share the writer's queue. Every operation is a short statement or transaction; async
//! callers use `spawn_blocking`.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

use crate::backend::Conn;
use crate::checkpoint::{self, Anchor, Checkpoint};
use crate::cursors::{self, Lease, SinkCursor};
use crate::db::vals;
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
    conn: Conn,
    instance: Option<String>,
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
            conn: Conn::sqlite(conn, path),
            instance: None,
        })
    }

    /// Opens an existing database (for the CLI): a missing file is an error, not a new one.
    pub fn open_existing(path: &Path) -> Result<EvidenceStore, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        EvidenceStore::open_sqlite(path)
    }

    pub(crate) fn on(conn: Conn, instance: Option<String>) -> EvidenceStore {
        EvidenceStore { conn, instance }
    }

    /// The SQLite file (`None` on PostgreSQL).
    pub fn path(&self) -> Option<&Path> {
        self.conn.sqlite_path()
    }

    /// The SQLite file or the PostgreSQL URL (without its password), for messages.
    pub fn location(&self) -> String {
        self.conn.describe()
    }

    // ---- the committed log ----

    pub fn head(&self) -> Result<Option<ChainHead>, StoreError> {
        self.conn.read(|db| {
            let Some(mut r) = db.query_opt("SELECT seq, hash, ts FROM audit_events ORDER BY seq DESC LIMIT 1", &[])?
            else {
                return Ok(None);
            };
            Ok(Some(ChainHead {
                seq: r.int(0)?,
                hash: r.text(1)?,
                ts: r.text(2)?,
            }))
        })
    }

    /// Committed rows after `seq`, oldest first, at most `limit`.
    pub fn rows_after(&self, seq: i64, limit: usize) -> Result<Vec<AuditRow>, StoreError> {
        self.conn.read(|db| {
            let rows = db.query(
                &format!("SELECT {COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"),
                &vals![seq, limit.min(i64::MAX as usize) as i64],
            )?;
            Ok(rows.into_iter().map(AuditRow::from_row).collect::<Result<_, _>>()?)
        })
    }

    pub fn verify(&self, opts: &VerifyOptions) -> Result<VerifyReport, StoreError> {
        self.conn.read(|db| verify::run(db, opts))
    }

    // ---- sink cursors ----

    pub fn cursors(&self) -> Result<Vec<SinkCursor>, StoreError> {
        Ok(self.conn.read(cursors::list)?)
    }

    pub fn cursor(&self, sink: &str) -> Result<Option<SinkCursor>, StoreError> {
        Ok(self.conn.read(|db| cursors::get(db, sink))?)
    }

    /// Takes or renews the lease on `sink`'s cursor (creating the cursor at 0) for `ttl`;
    /// `stale` names an owner known to be dead, whose lease may be taken at once.
    pub fn lease_sink(&self, sink: &str, owner: &str, ttl: Duration, stale: Option<&str>) -> Result<Lease, StoreError> {
        cursors::lease(&self.conn, sink, owner, ttl, stale)
    }

    /// Moves the cursor to `seq` after `count` events were delivered; `false` when `owner` lost
    /// the lease meanwhile.
    pub fn advance_sink(&self, sink: &str, owner: &str, seq: i64, count: i64) -> Result<bool, StoreError> {
        Ok(self.conn.read(|db| cursors::advance(db, sink, owner, seq, count))?)
    }

    pub fn sink_error(&self, sink: &str, error: &str) -> Result<(), StoreError> {
        Ok(self.conn.read(|db| cursors::record_error(db, sink, error))?)
    }

    pub fn release_sink(&self, sink: &str, owner: &str) -> Result<(), StoreError> {
        Ok(self.conn.read(|db| cursors::release(db, sink, owner))?)
    }

    // ---- checkpoints and anchors ----

    /// Signs the chain head (unsigned without a key), records the checkpoint and appends its
    /// `checkpoint` event, atomically. `None` when the log is empty.
    pub fn checkpoint(&self, key: Option<&SigningKey>, by: &str) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self
            .conn
            .write(|db| checkpoint::append(db, key, by, self.instance.as_deref()))?)
    }

    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        Ok(self.conn.read(checkpoint::list)?)
    }

    pub fn last_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self.conn.read(checkpoint::last)?)
    }

    /// The anchor the chain starts from after a prune.
    pub fn anchor(&self) -> Result<Option<Anchor>, StoreError> {
        Ok(self.conn.read(checkpoint::anchor)?)
    }

    // ---- retention ----

    pub fn plan_prune(&self, req: &PruneRequest) -> Result<PrunePlan, StoreError> {
        self.conn.read(|db| retention::plan(db, req))
    }

    /// Prunes as planned: verifies what goes, writes the anchor (signed with `key`) and its
    /// event, then deletes in batches of `req.batch`.
    pub fn prune(&self, req: &PruneRequest, key: Option<&SigningKey>, by: &str) -> Result<PruneOutcome, StoreError> {
        retention::prune(&self.conn, req, key, by, self.instance.as_deref())
    }
}
