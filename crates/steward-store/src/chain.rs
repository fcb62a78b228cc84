//! Walking the hash chain: the one check `verify` and `prune` share.

use rusqlite::Connection;

use crate::StoreError;
use crate::event::{AuditRow, COLUMNS};
use crate::schema::GENESIS;

/// Where a walk starts.
#[derive(Debug, Clone)]
pub(crate) struct Start {
    /// The first sequence number the walk expects.
    pub seq: i64,
    /// The previous row's hash the first row must link to; `None` after a prune, when the
    /// first row is vouched for by the anchor instead (`expect_hash`).
    pub prev: Option<String>,
    /// The hash the first row must have (the anchor's).
    pub expect_hash: Option<String>,
}

impl Start {
    pub fn genesis() -> Start {
        Start {
            seq: 1,
            prev: Some(GENESIS.to_string()),
            expect_hash: None,
        }
    }
}

/// What a walk found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Walk {
    pub rows: u64,
    pub last_seq: i64,
    pub last_hash: Option<String>,
    pub last_ts: Option<String>,
    /// The first sequence number at which the chain is broken, and what is wrong there.
    pub broken: Option<(i64, String)>,
}

/// Recomputes the chain from `start` through `until` (inclusive; the end of the log when
/// `None`), calling `each` on every row that checks out. Stops at the first break.
pub(crate) fn walk(
    conn: &Connection,
    start: &Start,
    until: Option<i64>,
    mut each: impl FnMut(&AuditRow),
) -> Result<Walk, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq"
    ))?;
    let mut rows = stmt.query(rusqlite::params![start.seq, until.unwrap_or(i64::MAX)])?;
    let mut expected_seq = start.seq;
    let mut prev = start.prev.clone();
    let mut walk = Walk {
        last_seq: start.seq - 1,
        ..Walk::default()
    };
    while let Some(r) = rows.next()? {
        let row = match AuditRow::from_sql(r) {
            Ok(row) => row,
            Err(e) => {
                let seq: i64 = r.get(0).unwrap_or(expected_seq);
                walk.broken = Some((seq, format!("row cannot be read as written: {e}")));
                return Ok(walk);
            }
        };
        if row.seq != expected_seq {
            let what = if row.seq > expected_seq {
                format!("rows {expected_seq}..{} are missing (deleted)", row.seq - 1)
            } else {
                "sequence numbers are out of order".to_string()
            };
            walk.broken = Some((expected_seq, what));
            return Ok(walk);
        }
        if let Some(p) = &prev
            && row.prev_hash != *p
        {
            walk.broken = Some((
                row.seq,
                "prev_hash does not match the previous row's hash (a row was removed, inserted or reordered)".into(),
            ));
            return Ok(walk);
        }
        if row.compute_hash() != row.hash {
            walk.broken = Some((
                row.seq,
                "row content does not match its hash (the row was edited)".into(),
            ));
            return Ok(walk);
        }
        if walk.rows == 0
            && let Some(h) = &start.expect_hash
            && row.hash != *h
        {
            walk.broken = Some((
                row.seq,
                "the first kept row does not match the prune anchor's hash (the row or the anchor was changed)".into(),
            ));
            return Ok(walk);
        }
        each(&row);
        walk.rows += 1;
        walk.last_seq = row.seq;
        walk.last_ts = Some(row.ts.clone());
        prev = Some(row.hash.clone());
        walk.last_hash = prev.clone();
        expected_seq += 1;
    }
    if walk.rows == 0 && start.expect_hash.is_some() {
        walk.broken = Some((
            start.seq,
            "the row the prune anchor names is missing (the log was cut after the anchor)".into(),
        ));
    }
    Ok(walk)
}
