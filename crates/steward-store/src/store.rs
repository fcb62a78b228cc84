//! An opened store: where the state lives, and the handles onto it. Every part (the audit
//! writer, approvals, pins, keys, the upkeep tables, readers, shared counters) is opened from
//! here, so a process talks to one backend: its SQLite file, or one PostgreSQL pool.

use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;

use crate::backend::Conn;
use crate::pg::Pg;
use crate::pg::counters::SharedCounters;
use crate::pg::listen::Change;
use crate::pg::writer::PgSink;
use crate::{
    ApprovalStore, AuditLog, AuditReader, EvidenceStore, KeyError, KeyStore, PinError, PinStore, StoreError,
    StoreLocation, schema,
};

/// An opened store. Cheap to clone: clones share the PostgreSQL pool.
#[derive(Clone)]
pub struct Store {
    location: StoreLocation,
    backend: Backend,
    instance: Option<String>,
}

#[derive(Clone)]
enum Backend {
    Sqlite,
    Postgres(Arc<Pg>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .field("instance", &self.instance)
            .finish()
    }
}

impl Store {
    /// Opens the store at `location`, creating it if needed: a SQLite file (and its directory),
    /// or a PostgreSQL database, migrated to this build's schema (a newer one is refused).
    /// PostgreSQL is waited for a few seconds; then opening fails with the reason.
    pub fn open(location: &StoreLocation) -> Result<Store, StoreError> {
        let backend = match location {
            StoreLocation::Sqlite(path) => {
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
                Backend::Sqlite
            }
            StoreLocation::Postgres(cfg) => Backend::Postgres(Pg::connect(cfg)?),
        };
        Ok(Store {
            location: location.clone(),
            backend,
            instance: None,
        })
    }

    /// Opens an existing store for the CLI: a missing SQLite file is an error, not a new store.
    pub fn open_existing(location: &StoreLocation) -> Result<Store, StoreError> {
        if let StoreLocation::Sqlite(path) = location
            && !path.exists()
        {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        Store::open(location)
    }

    /// Rows this process appends name `instance` (on SQLite only when given; on PostgreSQL
    /// every gateway should have its own).
    pub fn with_instance(mut self, instance: Option<String>) -> Store {
        self.instance = instance.filter(|i| !i.trim().is_empty());
        self
    }

    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    pub fn instance(&self) -> Option<&str> {
        self.instance.as_deref()
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// A connection for one handle: its own for SQLite, the pool for PostgreSQL.
    fn conn(&self) -> Result<Conn, StoreError> {
        match (&self.backend, &self.location) {
            (Backend::Postgres(pg), _) => Ok(Conn::Postgres(pg.clone())),
            (Backend::Sqlite, StoreLocation::Sqlite(path)) => Ok(Conn::sqlite(open_sqlite(path)?, path)),
            (Backend::Sqlite, StoreLocation::Postgres(_)) => Err(StoreError::Config {
                store: self.location.describe(),
                problem: "opened as SQLite".into(),
            }),
        }
    }

    /// The audit writer (one per process: it group-commits everything the process appends).
    pub fn audit_log(&self) -> Result<AuditLog, StoreError> {
        match (&self.backend, &self.location) {
            (Backend::Postgres(pg), _) => AuditLog::start(
                Box::new(PgSink::new(pg.clone())),
                None,
                pg.target.clone(),
                self.instance.clone(),
            ),
            (Backend::Sqlite, StoreLocation::Sqlite(path)) => {
                let log = AuditLog::open_sqlite(path)?;
                Ok(match &self.instance {
                    Some(i) => log.named(i.clone()),
                    None => log,
                })
            }
            (Backend::Sqlite, StoreLocation::Postgres(_)) => Err(StoreError::Config {
                store: self.location.describe(),
                problem: "opened as SQLite".into(),
            }),
        }
    }

    pub fn approvals(&self) -> Result<ApprovalStore, StoreError> {
        let conn = self.conn()?;
        if let Some(c) = conn.sqlite_conn() {
            ApprovalStore::sqlite_schema(&c)?;
        }
        Ok(ApprovalStore::on(conn, self.instance.clone()))
    }

    pub fn pins(&self) -> Result<PinStore, PinError> {
        let conn = self.conn()?;
        if let Some(c) = conn.sqlite_conn() {
            PinStore::sqlite_schema(&c)?;
        }
        Ok(PinStore::on(conn))
    }

    pub fn keys(&self) -> Result<KeyStore, KeyError> {
        let conn = self.conn()?;
        if let Some(c) = conn.sqlite_conn() {
            KeyStore::sqlite_schema(&c)?;
        }
        Ok(KeyStore::on(conn))
    }

    pub fn evidence(&self) -> Result<EvidenceStore, StoreError> {
        Ok(EvidenceStore::on(self.conn()?, self.instance.clone()))
    }

    /// Read access (SQLite: a read-only connection).
    pub fn reader(&self) -> Result<AuditReader, StoreError> {
        match (&self.backend, &self.location) {
            (Backend::Sqlite, StoreLocation::Sqlite(path)) => AuditReader::open(path),
            _ => Ok(AuditReader::on(self.conn()?)),
        }
    }

    /// Whether the store answers now (`SELECT 1` on PostgreSQL; SQLite: the file opens).
    pub fn ping(&self) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.read(|db: &mut dyn crate::db::Db| db.query("SELECT 1", &[]).map(|_| ()))?;
        Ok(())
    }

    /// The budget and breaker counters every gateway shares (PostgreSQL only: on SQLite one
    /// gateway keeps them in memory).
    pub fn counters(&self) -> Option<SharedCounters> {
        match &self.backend {
            Backend::Postgres(pg) => Some(SharedCounters { pg: pg.clone() }),
            Backend::Sqlite => None,
        }
    }

    /// Changes other processes commit, as they commit (PostgreSQL only).
    pub fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        match &self.backend {
            Backend::Postgres(pg) => Some(pg.changes().subscribe()),
            Backend::Sqlite => None,
        }
    }

    pub(crate) fn pg(&self) -> Option<&Arc<Pg>> {
        match &self.backend {
            Backend::Postgres(pg) => Some(pg),
            Backend::Sqlite => None,
        }
    }
}

fn open_sqlite(path: &Path) -> Result<Connection, StoreError> {
    let display = path.display().to_string();
    let conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: display.clone(),
        source,
    })?;
    schema::prepare(&conn, &display)?;
    Ok(conn)
}
