//! The hash chain: appending rows inside a caller's transaction, and walking the chain (the one
//! check `verify` and `prune` share).

use crate::db::{Db, DbError, Dialect, Val, vals};
use crate::event::{AuditEvent, AuditRow, COLUMNS};
use crate::schema::GENESIS;

/// Rows read per query while walking: memory stays flat on a log of any length.
const PAGE: i64 = 10_000;

pub(crate) const INSERT: &str = "INSERT INTO audit_events (seq, ts, kind, decision_id, principal, client, session, \
    door, server, tool, method, operation, args, args_digest, effect, risk, flags, reason, rule_ids, policy_version, \
    approval_id, approvers, outcome, duration_ms, detail, prev_hash, hash, instance) VALUES ($1, $2, $3, $4, $5, $6, \
    $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)";

/// The chain head an append continues from: `(seq, hash)`, `(0, GENESIS)` for an empty log.
/// On SQLite the caller's `BEGIN IMMEDIATE` keeps it from moving; on PostgreSQL the head row
/// is locked until the transaction ends, which orders appends from every gateway.
pub(crate) fn head_for_append(db: &mut dyn Db) -> Result<(i64, String), DbError> {
    let row = match db.dialect() {
        Dialect::Sqlite => db.query_opt("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1", &[])?,
        Dialect::Postgres => db.query_opt("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE", &[])?,
    };
    match row {
        Some(mut r) => Ok((r.int(0)?, r.text(1)?)),
        None => Ok((0, GENESIS.to_string())),
    }
}

/// Moves PostgreSQL's head row to the last appended row (SQLite reads its head from the log).
pub(crate) fn set_head(db: &mut dyn Db, seq: i64, hash: &str) -> Result<(), DbError> {
    if db.dialect() == Dialect::Postgres {
        db.execute(
            "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
            &vals![seq, hash],
        )?;
    }
    Ok(())
}

/// A row's values in [`INSERT`]'s order.
pub(crate) fn row_vals(row: AuditRow) -> Vec<Val> {
    vals![
        row.seq,
        row.ts,
        row.kind,
        row.decision_id,
        row.principal,
        row.client,
        row.session,
        row.door,
        row.server,
        row.tool,
        row.method,
        row.operation,
        row.args,
        row.args_digest,
        row.effect,
        row.risk,
        row.flags,
        row.reason,
        row.rule_ids,
        row.policy_version,
        row.approval_id,
        row.approvers,
        row.outcome,
        row.duration_ms,
        row.detail,
        row.prev_hash,
        row.hash,
        row.instance,
    ]
    .into()
}

/// Appends events to the chain inside a write transaction the caller opened, so other state
/// changes commit with their audit rows. Events without an instance are stamped with
/// `instance`. Returns their sequence numbers.
pub(crate) fn append_in(db: &mut dyn Db, events: Vec<AuditEvent>, instance: Option<&str>) -> Result<Vec<i64>, DbError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let (mut seq, mut prev) = head_for_append(db)?;
    let mut seqs = Vec::with_capacity(events.len());
    for mut event in events {
        if event.ts.is_empty() {
            event.ts = crate::writer::now_rfc3339();
        }
        if event.instance.is_none() {
            event.instance = instance.map(str::to_string);
        }
        seq += 1;
        let row = AuditRow::from_event(event, seq, prev);
        prev = row.hash.clone();
        db.execute(INSERT, &row_vals(row))?;
        seqs.push(seq);
    }
    set_head(db, seq, &prev)?;
    Ok(seqs)
}

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
/// `None`), calling `each` on every row that checks out. Stops at the first break. Reads the
/// log a page at a time.
pub(crate) fn walk(
    db: &mut dyn Db,
    start: &Start,
    until: Option<i64>,
    mut each: impl FnMut(&AuditRow),
) -> Result<Walk, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM audit_events WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT $3");
    let until = until.unwrap_or(i64::MAX);
    let mut expected_seq = start.seq;
    let mut prev = start.prev.clone();
    let mut walk = Walk {
        last_seq: start.seq - 1,
        ..Walk::default()
    };
    let mut from = start.seq;
    loop {
        let page = db.query(&sql, &vals![from, until, PAGE])?;
        let fetched = page.len() as i64;
        for r in page {
            let seq_here = r.opt_int(0).ok().flatten().unwrap_or(expected_seq);
            from = seq_here.saturating_add(1);
            let row = match AuditRow::from_row(r) {
                Ok(row) => row,
                Err(e) => {
                    walk.broken = Some((seq_here, format!("row cannot be read as written: {e}")));
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
                    "prev_hash does not match the previous row's hash (a row was removed, inserted or reordered)"
                        .into(),
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
                    "the first kept row does not match the prune anchor's hash (the row or the anchor was changed)"
                        .into(),
                ));
                return Ok(walk);
            }
            each(&row);
            walk.rows += 1;
            walk.last_seq = row.seq;
            expected_seq += 1;
            walk.last_ts = Some(row.ts);
            walk.last_hash = Some(row.hash.clone());
            prev = Some(row.hash);
        }
        if fetched < PAGE || from > until {
            break;
        }
    }
    if walk.rows == 0 && start.expect_hash.is_some() {
        walk.broken = Some((
            start.seq,
            "the row the prune anchor names is missing (the log was cut after the anchor)".into(),
        ));
    }
    Ok(walk)
}
