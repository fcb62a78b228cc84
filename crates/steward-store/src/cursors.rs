//! Durable sink cursors: how far each sink has delivered the log, and who is delivering.
//!
//! A cursor is the last seq a sink has delivered. It only moves after a delivery succeeded, so
//! a crash re-sends at most the batch in flight (at least once, in order). One process at a
//! time ships a sink: it holds a lease on the cursor row that it renews while it works; a
//! lease that ran out (its holder died) can be taken by anyone.

use std::time::Duration;

use serde::Serialize;

use crate::StoreError;
use crate::backend::Conn;
use crate::db::{Db, DbError, Row, vals};

/// Errors longer than this are cut before they are stored.
const MAX_ERROR_LEN: usize = 1_000;

/// One sink's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkCursor {
    pub sink: String,
    /// The last seq delivered (0: nothing yet).
    pub seq: i64,
    /// Events delivered so far.
    pub delivered: i64,
    /// When the cursor last moved.
    pub updated_at: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<String>,
}

/// The outcome of asking for a sink's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// The caller holds it (newly or still); `seq` is the cursor.
    Held { seq: i64 },
    /// Another owner holds it until `until`.
    Busy { owner: String, until: String },
}

const COLUMNS: &str = "sink, seq, delivered, updated_at, last_error, last_error_at, lease_owner, lease_until";

fn from_row(mut r: Row) -> Result<SinkCursor, DbError> {
    Ok(SinkCursor {
        sink: r.text(0)?,
        seq: r.int(1)?,
        delivered: r.int(2)?,
        updated_at: r.opt_text(3)?,
        last_error: r.opt_text(4)?,
        last_error_at: r.opt_text(5)?,
        lease_owner: r.opt_text(6)?,
        lease_until: r.opt_text(7)?,
    })
}

fn stamp_in(d: Duration) -> String {
    let t = chrono::Utc::now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(60));
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn list(db: &mut dyn Db) -> Result<Vec<SinkCursor>, DbError> {
    if !db.has_table("audit_sink_cursors")? {
        return Ok(Vec::new());
    }
    let rows = db.query(&format!("SELECT {COLUMNS} FROM audit_sink_cursors ORDER BY sink"), &[])?;
    rows.into_iter().map(from_row).collect()
}

pub(crate) fn get(db: &mut dyn Db, sink: &str) -> Result<Option<SinkCursor>, DbError> {
    if !db.has_table("audit_sink_cursors")? {
        return Ok(None);
    }
    db.query_opt(
        &format!("SELECT {COLUMNS} FROM audit_sink_cursors WHERE sink = $1"),
        &vals![sink],
    )?
    .map(from_row)
    .transpose()
}

/// Takes or renews `sink`'s lease for `ttl`. A lease past its time is free; so is one held by
/// `stale` (an owner the caller knows is dead, e.g. a process of this host that has exited).
pub(crate) fn lease(
    conn: &Conn,
    sink: &str,
    owner: &str,
    ttl: Duration,
    stale: Option<&str>,
) -> Result<Lease, StoreError> {
    let now = crate::writer::now_rfc3339();
    let (n, row) = conn.write(|db| -> Result<(u64, SinkCursor), DbError> {
        db.execute(
            "INSERT INTO audit_sink_cursors (sink, seq, delivered) VALUES ($1, 0, 0) ON CONFLICT (sink) DO NOTHING",
            &vals![sink],
        )?;
        // The conditional UPDATE takes the row lock: of two gateways asking at once, one wins.
        let n = db.execute(
            "UPDATE audit_sink_cursors SET lease_owner = $2, lease_until = $3 WHERE sink = $1 AND \
             (lease_owner IS NULL OR lease_owner = $2 OR lease_until IS NULL OR lease_until < $4 OR lease_owner = $5)",
            &vals![sink, owner, stamp_in(ttl), now.as_str(), stale],
        )?;
        let row = db.query_one(
            &format!("SELECT {COLUMNS} FROM audit_sink_cursors WHERE sink = $1"),
            &vals![sink],
        )?;
        Ok((n, from_row(row)?))
    })?;
    Ok(if n == 1 {
        Lease::Held { seq: row.seq }
    } else {
        Lease::Busy {
            owner: row.lease_owner.unwrap_or_default(),
            until: row.lease_until.unwrap_or_default(),
        }
    })
}

/// Moves `sink`'s cursor forward to `seq` after `count` more events were delivered. `false`
/// when the caller no longer holds the lease (the cursor is left alone).
pub(crate) fn advance(db: &mut dyn Db, sink: &str, owner: &str, seq: i64, count: i64) -> Result<bool, DbError> {
    let n = db.execute(
        "UPDATE audit_sink_cursors SET seq = $3, delivered = delivered + $4, updated_at = $5 \
         WHERE sink = $1 AND lease_owner = $2 AND seq < $3",
        &vals![sink, owner, seq, count, crate::writer::now_rfc3339()],
    )?;
    Ok(n == 1)
}

/// Records why the latest delivery to `sink` failed.
pub(crate) fn record_error(db: &mut dyn Db, sink: &str, error: &str) -> Result<(), DbError> {
    let mut error = error.replace(['\n', '\r'], " ");
    if error.len() > MAX_ERROR_LEN {
        let mut cut = MAX_ERROR_LEN;
        while !error.is_char_boundary(cut) {
            cut -= 1;
        }
        error.truncate(cut);
        error.push('…');
    }
    db.execute(
        "UPDATE audit_sink_cursors SET last_error = $2, last_error_at = $3 WHERE sink = $1",
        &vals![sink, error, crate::writer::now_rfc3339()],
    )?;
    Ok(())
}

/// Gives the lease up (a clean stop): the next process need not wait for it to run out.
pub(crate) fn release(db: &mut dyn Db, sink: &str, owner: &str) -> Result<(), DbError> {
    db.execute(
        "UPDATE audit_sink_cursors SET lease_owner = NULL, lease_until = NULL WHERE sink = $1 AND lease_owner = $2",
        &vals![sink, owner],
    )?;
    Ok(())
}
