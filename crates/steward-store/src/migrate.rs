//! `steward store migrate --from sqlite:PATH --to postgres:URL`: copies a SQLite store into an
//! empty PostgreSQL one (the audit log row for row, with its hashes, and every other table),
//! in one transaction, then verifies the chain on the target.

use std::fmt::Write as _;

use crate::backend::Conn;
use crate::db::{Db, DbError, Row, Val, vals};
use crate::event::COLUMNS;
use crate::{AuditReader, Store, StoreError, StoreLocation, VerifyReport};

/// Rows per INSERT when copying the audit log (28 parameters each, well under PostgreSQL's
/// 65,535).
const PAGE: usize = 1_000;

/// Why a migration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Refused(String),
}

impl From<DbError> for MigrateError {
    fn from(e: DbError) -> MigrateError {
        MigrateError::Store(e.into())
    }
}

/// What was copied, and how the target verified.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrateReport {
    /// `(table, rows)`, in copy order.
    pub copied: Vec<(String, u64)>,
    pub verify: VerifyReport,
}

/// The tables copied besides the audit log, with their columns (the same on both backends).
const TABLES: &[(&str, &str)] = &[
    (
        "audit_checkpoints",
        "id, seq, hash, head_ts, ts, event_seq, public_key, signature",
    ),
    (
        "audit_anchors",
        "id, seq, hash, pruned_before, removed, ts, public_key, signature",
    ),
    (
        "audit_sink_cursors",
        "sink, seq, delivered, updated_at, last_error, last_error_at, lease_owner, lease_until",
    ),
    ("approvals", crate::approvals::COLUMNS),
    (
        "tool_pins",
        "server, tool, fingerprint, tool_json, state, source, first_seen, approved_by, approved_at, current_fingerprint, current_json, drifted_at",
    ),
    (
        "api_keys",
        "id, secret_sha256, principal, roles, name, created_at, expires_at, revoked_at",
    ),
];

/// Copies `from` (SQLite) into `to` (PostgreSQL), which must hold nothing yet. The source's
/// chain must verify first: a broken chain is evidence, and is not carried off.
pub fn migrate(
    from: &StoreLocation,
    to: &StoreLocation,
    mut progress: impl FnMut(&str),
) -> Result<MigrateReport, MigrateError> {
    let StoreLocation::Sqlite(path) = from else {
        return Err(MigrateError::Refused(
            "--from must be a SQLite store (sqlite:PATH)".into(),
        ));
    };
    if !to.is_postgres() {
        return Err(MigrateError::Refused(
            "--to must be a PostgreSQL store (postgres:URL)".into(),
        ));
    }
    let source = AuditReader::open(path)?;
    progress("verifying the source's chain");
    let before = source.verify()?;
    if !before.ok() {
        return Err(MigrateError::Refused(format!(
            "the source's audit log does not verify ({}); it is left where it is (run `steward audit verify --db {}`)",
            before
                .broken
                .as_ref()
                .map(|b| format!("chain broken at seq {}: {}", b.0, b.1))
                .or_else(|| before
                    .truncated
                    .as_ref()
                    .map(|t| format!("truncated at seq {}", t.log_ends_at)))
                .unwrap_or_else(|| before.problems.join("; ")),
            path.display()
        )));
    }
    let target = Store::open(to)?;
    let Some(pg) = target.pg() else {
        return Err(MigrateError::Refused("the target did not open as PostgreSQL".into()));
    };
    let source_conn = source_conn(&source);
    let copied = pg.write(|db| -> Result<Vec<(String, u64)>, MigrateError> {
        refuse_non_empty(db)?;
        let mut copied = Vec::new();
        progress("copying the audit log");
        let (rows, head) = copy_events(&source_conn, db)?;
        if let Some((seq, hash)) = head {
            db.execute("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1", &vals![seq, hash])?;
        }
        copied.push(("audit_events".to_string(), rows));
        for (table, columns) in TABLES {
            progress(&format!("copying {table}"));
            let n = copy_table(&source_conn, db, table, columns)?;
            copied.push((table.to_string(), n));
        }
        for table in ["audit_checkpoints", "audit_anchors"] {
            db.query(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                ),
                &[],
            )?;
        }
        Ok(copied)
    })?;
    progress("verifying the chain on the target");
    let verify = target.reader()?.verify()?;
    Ok(MigrateReport { copied, verify })
}

fn source_conn(reader: &AuditReader) -> Conn {
    reader.conn().clone()
}

fn refuse_non_empty(db: &mut dyn Db) -> Result<(), MigrateError> {
    let mut found = Vec::new();
    for table in std::iter::once("audit_events").chain(TABLES.iter().map(|(t, _)| *t)) {
        let n = db.query_int(&format!("SELECT count(*) FROM {table}"), &[])?;
        if n > 0 {
            found.push(format!("{table}: {n} row(s)"));
        }
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(MigrateError::Refused(format!(
            "the target store is not empty ({}); migrate only into a new database, nothing was copied",
            found.join(", ")
        )))
    }
}

/// The audit log, a page at a time, as multi-row INSERTs. Returns the rows copied and the head.
fn copy_events(source: &Conn, db: &mut dyn Db) -> Result<(u64, Option<(i64, String)>), MigrateError> {
    let select = format!("SELECT {COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2");
    let (mut after, mut copied, mut head) = (i64::MIN, 0u64, None);
    loop {
        let page: Vec<Row> = source.read(|s| s.query(&select, &vals![after, PAGE as i64]))?;
        let fetched = page.len();
        if fetched == 0 {
            break;
        }
        let mut params: Vec<Val> = Vec::with_capacity(fetched * 28);
        for r in page {
            let seq = r.int(0)?;
            let hash = match r.0.get(26) {
                Some(Val::Text(h)) => h.clone(),
                _ => String::new(),
            };
            after = seq;
            head = Some((seq, hash));
            params.extend(r.0);
        }
        db.execute(&insert_sql("audit_events", COLUMNS, 28, fetched), &params)?;
        copied += fetched as u64;
        if fetched < PAGE {
            break;
        }
    }
    Ok((copied, head))
}

/// One table, all of it (these are small: approvals, pins, keys, cursors, checkpoints).
fn copy_table(source: &Conn, db: &mut dyn Db, table: &str, columns: &str) -> Result<u64, MigrateError> {
    let exists = source.read(|s| s.has_table(table))?;
    if !exists {
        return Ok(0);
    }
    let width = columns.split(',').count();
    let rows: Vec<Row> = source.read(|s| s.query(&format!("SELECT {columns} FROM {table}"), &[]))?;
    let mut copied = 0u64;
    for chunk in rows.chunks(PAGE) {
        let mut params: Vec<Val> = Vec::with_capacity(chunk.len() * width);
        for r in chunk {
            params.extend(r.0.iter().cloned());
        }
        db.execute(&insert_sql(table, columns, width, chunk.len()), &params)?;
        copied += chunk.len() as u64;
    }
    Ok(copied)
}

/// `INSERT INTO table (columns) VALUES ($1, …), (…), …` for `rows` rows of `width` values.
fn insert_sql(table: &str, columns: &str, width: usize, rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({columns}) VALUES ");
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            n += 1;
            let _ = write!(sql, "${n}");
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    #[test]
    fn insert_statements_number_their_placeholders() {
        assert_eq!(
            super::insert_sql("t", "a, b", 2, 2),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
    }
}
