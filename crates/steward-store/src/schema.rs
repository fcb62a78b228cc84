use rusqlite::Connection;

use crate::StoreError;

/// The newest schema this build knows: the base tables below plus every migration in
/// [`MIGRATIONS`] (PostgreSQL stores count the same versions, see `pg::schema`).
pub(crate) const SCHEMA_VERSION: i64 = 3;

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

/// Schema changes after version 1, in order: `(version, SQL)`. Each runs once, in one transaction
/// with the version bump. PostgreSQL has its own list (`pg::schema`) with the same versions.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        2,
        "
CREATE TABLE IF NOT EXISTS audit_sink_cursors (
    sink          TEXT PRIMARY KEY,
    seq           INTEGER NOT NULL,
    delivered     INTEGER NOT NULL,
    updated_at    TEXT,
    last_error    TEXT,
    last_error_at TEXT,
    lease_owner   TEXT,
    lease_until   TEXT
);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    id         INTEGER PRIMARY KEY,
    seq        INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    head_ts    TEXT NOT NULL,
    ts         TEXT NOT NULL,
    event_seq  INTEGER NOT NULL,
    public_key TEXT,
    signature  TEXT
);
CREATE TABLE IF NOT EXISTS audit_anchors (
    id            INTEGER PRIMARY KEY,
    seq           INTEGER NOT NULL,
    hash          TEXT NOT NULL,
    pruned_before TEXT NOT NULL,
    removed       INTEGER NOT NULL,
    ts            TEXT NOT NULL,
    public_key    TEXT,
    signature     TEXT
);
",
    ),
    // The gateway instance that wrote each row (rows before it have none, and keep their hash).
    // Added by `add_missing_columns` (SQLite has no ADD COLUMN IF NOT EXISTS).
    (3, ""),
];

/// Columns later migrations add, created when missing.
const ADDED_COLUMNS: &[(i64, &str, &str, &str)] = &[(3, "audit_events", "instance", "TEXT")];

fn add_missing_columns(conn: &Connection, version: i64) -> rusqlite::Result<()> {
    for (_, table, column, decl) in ADDED_COLUMNS.iter().filter(|c| c.0 == version) {
        let present: i64 = conn.query_row(
            &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
            [column],
            |r| r.get(0),
        )?;
        if present == 0 {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
        }
    }
    Ok(())
}

pub(crate) fn prepare(conn: &Connection, path: &str) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // WAL checkpoints run on the audit writer's background connection, never inside a commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.execute_batch(SCHEMA)?;
    let found: Option<i64> = conn
        .query_row("SELECT value FROM steward_meta WHERE key = 'schema_version'", [], |r| {
            r.get::<_, String>(0)
        })
        .ok()
        .and_then(|v| v.parse().ok());
    if let Some(v) = found
        && v > SCHEMA_VERSION
    {
        return Err(StoreError::SchemaTooNew {
            path: path.to_string(),
            found: v,
            known: SCHEMA_VERSION,
        });
    }
    migrate(conn, found.unwrap_or(1))
}

/// Applies the migrations newer than `from`. The version is re-read inside the write
/// transaction: two processes opening an old file at once migrate it once.
fn migrate(conn: &Connection, from: i64) -> Result<(), StoreError> {
    if from >= SCHEMA_VERSION {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let run = || -> Result<(), StoreError> {
        let current: i64 = conn
            .query_row("SELECT value FROM steward_meta WHERE key = 'schema_version'", [], |r| {
                r.get::<_, String>(0)
            })
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            conn.execute_batch(sql)?;
            add_missing_columns(conn, *version)?;
            conn.execute(
                "INSERT INTO steward_meta(key, value) VALUES ('schema_version', ?1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [version.to_string()],
            )?;
        }
        Ok(())
    };
    match run() {
        Ok(()) => {
            conn.execute_batch("COMMIT")?;
            Ok(())
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
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
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.execute_batch(schema)
    };
    prepare(&conn).map_err(|e| OpenFailure::Open(display, e))?;
    Ok(conn)
}
