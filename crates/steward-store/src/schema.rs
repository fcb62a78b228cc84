use rusqlite::Connection;

use crate::StoreError;

pub(crate) const SCHEMA_VERSION: i64 = 1;

/// The hash every chain starts from.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_events (
    seq            INTEGER PRIMARY KEY,
    ts             TEXT NOT NULL,
    kind           TEXT NOT NULL,
    decision_id    TEXT,
    principal      TEXT,
    client         TEXT,
    session        TEXT,
    door           TEXT,
    server         TEXT,
    tool           TEXT,
    method         TEXT,
    operation      TEXT,
    args           TEXT,
    args_digest    TEXT,
    effect         TEXT,
    risk           TEXT,
    flags          TEXT,
    reason         TEXT,
    rule_ids       TEXT,
    policy_version TEXT,
    approval_id    TEXT,
    approvers      TEXT,
    outcome        TEXT,
    duration_ms    REAL,
    detail         TEXT,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_ts ON audit_events(ts);
CREATE INDEX IF NOT EXISTS audit_events_decision ON audit_events(decision_id);
CREATE TABLE IF NOT EXISTS steward_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

pub(crate) fn prepare(conn: &Connection, path: &str) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(SCHEMA)?;
    let found: Option<i64> = conn
        .query_row("SELECT value FROM steward_meta WHERE key = 'schema_version'", [], |r| {
            r.get::<_, String>(0)
        })
        .ok()
        .and_then(|v| v.parse().ok());
    match found {
        Some(v) if v > SCHEMA_VERSION => {
            return Err(StoreError::SchemaTooNew {
                path: path.to_string(),
                found: v,
                known: SCHEMA_VERSION,
            });
        }
        Some(_) => {}
        None => {
            conn.execute(
                "INSERT OR IGNORE INTO steward_meta(key, value) VALUES ('schema_version', ?1)",
                [SCHEMA_VERSION.to_string()],
            )?;
        }
    }
    Ok(())
}

/// Why a store's SQLite file could not be opened.
pub(crate) enum OpenFailure {
    CreateDir(String, std::io::Error),
    Open(String, rusqlite::Error),
}

/// Opens (creating the file and its directory if needed) a store's SQLite file in WAL mode and
/// creates its tables: the shared start of every store that lives beside the audit log.
pub(crate) fn open_with_schema(path: &std::path::Path, schema: &str) -> Result<Connection, OpenFailure> {
    let display = path.display().to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| OpenFailure::CreateDir(dir.display().to_string(), e))?;
    }
    let conn = Connection::open(path).map_err(|e| OpenFailure::Open(display.clone(), e))?;
    let prepare = |conn: &Connection| -> rusqlite::Result<()> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(schema)
    };
    prepare(&conn).map_err(|e| OpenFailure::Open(display, e))?;
    Ok(conn)
}
