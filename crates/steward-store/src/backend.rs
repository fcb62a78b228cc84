//! What a store handle runs its statements on: its own SQLite connection, or the process's
//! PostgreSQL pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, TransactionBehavior};

use crate::db::sqlite::Lite;
use crate::db::{Db, DbError, Dialect};
use crate::pg::Pg;

#[derive(Clone)]
pub(crate) enum Conn {
    Sqlite {
        conn: Arc<Mutex<Connection>>,
        path: PathBuf,
    },
    Postgres(Arc<Pg>),
}

impl Conn {
    pub fn sqlite(conn: Connection, path: &Path) -> Conn {
        Conn::Sqlite {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite { .. } => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite file, or the PostgreSQL URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Conn::Sqlite { path, .. } => path.display().to_string(),
            Conn::Postgres(pg) => pg.target.clone(),
        }
    }

    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Conn::Sqlite { path, .. } => Some(path),
            Conn::Postgres(_) => None,
        }
    }

    pub fn pg(&self) -> Option<&Arc<Pg>> {
        match self {
            Conn::Postgres(pg) => Some(pg),
            Conn::Sqlite { .. } => None,
        }
    }

    /// `f` on the connection, outside a transaction.
    pub fn read<T, E: From<DbError>>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T, E>) -> Result<T, E> {
        match self {
            Conn::Sqlite { conn, .. } => f(&mut Lite(&lock(conn))),
            Conn::Postgres(pg) => pg.read(f),
        }
    }

    /// `f` in one write transaction (SQLite `BEGIN IMMEDIATE`: no other writer until it ends),
    /// committed when it returns `Ok`.
    pub fn write<T, E: From<DbError>>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T, E>) -> Result<T, E> {
        match self {
            Conn::Sqlite { conn, .. } => {
                let mut guard = lock(conn);
                let tx = guard
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(DbError::from)?;
                let out = f(&mut Lite(&tx))?;
                tx.commit().map_err(DbError::from)?;
                Ok(out)
            }
            Conn::Postgres(pg) => pg.write(f),
        }
    }

    /// The raw SQLite connection, for what only SQLite has (checkpoints of its WAL).
    pub fn sqlite_conn(&self) -> Option<MutexGuard<'_, Connection>> {
        match self {
            Conn::Sqlite { conn, .. } => Some(lock(conn)),
            Conn::Postgres(_) => None,
        }
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock leaves the connection itself usable.
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
