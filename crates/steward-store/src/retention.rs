//! Retention: removing old rows in batches while the log stays verifiable.
//!
//! A prune first checks the rows it is about to remove (a broken chain is evidence, and is never
//! pruned away), then records an anchor (the seq and hash of the first row it keeps, signed when
//! a key is given) together with a `system` event saying what it removes, and only then deletes,
//! one batch per transaction so the writer never waits long. The newest row is always kept: the
//! chain continues from it. Rows a sink has not delivered yet are kept unless forced.

use serde::Serialize;

use crate::StoreError;
use crate::backend::Conn;
use crate::chain::{self, Start};
use crate::checkpoint::{self, Anchor};
use crate::cursors;
use crate::db::{Db, vals};
use crate::event::{AuditEvent, EventKind};
use crate::signing::SigningKey;

/// What to prune.
#[derive(Debug, Clone)]
pub struct PruneRequest {
    /// Rows with `ts` before this RFC 3339 time go.
    pub before: String,
    /// The sinks whose undelivered rows must be kept; `None`: every sink with a cursor.
    pub sinks: Option<Vec<String>>,
    /// Remove rows even when a sink has not delivered them.
    pub force: bool,
    /// Rows deleted per transaction.
    pub batch: i64,
}

/// What a prune would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrunePlan {
    pub before: String,
    /// The oldest row present.
    pub first_seq: Option<i64>,
    /// The first row that stays (the new anchor).
    pub keep_from: i64,
    /// Rows `first_seq..keep_from` that go.
    pub remove: i64,
    /// Where the time cut alone would have kept from.
    pub keep_from_by_time: i64,
    /// Sinks that keep rows because they have not delivered them: (sink, its cursor).
    pub held_back_by: Vec<(String, i64)>,
}

/// What a prune did.
#[derive(Debug, Clone, Serialize)]
pub struct PruneOutcome {
    pub plan: PrunePlan,
    pub removed: i64,
    pub anchor: Option<Anchor>,
}

pub(crate) fn plan(db: &mut dyn Db, req: &PruneRequest) -> Result<PrunePlan, StoreError> {
    let r = db.query_one("SELECT min(seq), max(seq) FROM audit_events", &[])?;
    let bounds: Option<(i64, i64)> = r.opt_int(0)?.zip(r.opt_int(1)?);
    let Some((first, head)) = bounds else {
        return Ok(PrunePlan {
            before: req.before.clone(),
            first_seq: None,
            keep_from: 0,
            remove: 0,
            keep_from_by_time: 0,
            held_back_by: Vec::new(),
        });
    };
    // Timestamps come from several writers, so they are not strictly ordered by seq: the cut is
    // the first row at or after the cut-off, and everything before it goes.
    let by_time: i64 = db
        .query_one(
            "SELECT min(seq) FROM audit_events WHERE ts >= $1",
            &vals![req.before.as_str()],
        )?
        .opt_int(0)?
        .unwrap_or(head)
        .min(head);
    let mut keep_from = by_time;
    let mut held_back_by = Vec::new();
    if !req.force {
        let known = cursors::list(db)?;
        let relevant: Vec<(String, i64)> = match &req.sinks {
            None => known.iter().map(|c| (c.sink.clone(), c.seq)).collect(),
            Some(names) => names
                .iter()
                .map(|n| {
                    let seq = known.iter().find(|c| &c.sink == n).map(|c| c.seq).unwrap_or(0);
                    (n.clone(), seq)
                })
                .collect(),
        };
        for (sink, seq) in relevant {
            if seq + 1 < keep_from {
                keep_from = keep_from.min(seq + 1);
            }
            if seq + 1 < by_time {
                held_back_by.push((sink, seq));
            }
        }
    }
    let keep_from = keep_from.max(first);
    Ok(PrunePlan {
        before: req.before.clone(),
        first_seq: Some(first),
        keep_from,
        remove: keep_from - first,
        keep_from_by_time: by_time,
        held_back_by,
    })
}

pub(crate) fn prune(
    conn: &Conn,
    req: &PruneRequest,
    key: Option<&SigningKey>,
    by: &str,
    instance: Option<&str>,
) -> Result<PruneOutcome, StoreError> {
    let plan = conn.read(|db| plan(db, req))?;
    let Some(first) = plan.first_seq.filter(|_| plan.remove > 0) else {
        return Ok(PruneOutcome {
            plan,
            removed: 0,
            anchor: None,
        });
    };
    // The rows that go, and the first that stays, must verify: from the current anchor when
    // there is one (rows before it are already given up), else from the genesis hash.
    let current = conn.read(|db| checkpoint::anchor(db))?;
    let start = match &current {
        Some(a) => Start {
            seq: a.seq,
            prev: None,
            expect_hash: Some(a.hash.clone()),
        },
        None => Start::genesis(),
    };
    let until = plan.keep_from.max(start.seq);
    let walk = conn.read(|db| chain::walk(db, &start, Some(until), |_| {}))?;
    if let Some((seq, problem)) = walk.broken {
        return Err(StoreError::ChainBroken { seq, problem });
    }
    // Only rows a previous, interrupted prune left before its anchor go: that anchor still holds.
    let anchor = if current.as_ref().is_some_and(|a| plan.keep_from <= a.seq) {
        None
    } else {
        let kept_hash = walk.last_hash.clone().ok_or_else(|| StoreError::ChainBroken {
            seq: plan.keep_from,
            problem: "the first row to keep is missing".into(),
        })?;
        let mut event = AuditEvent::new(EventKind::System);
        event.principal = Some(by.to_string());
        event.reason = Some(format!(
            "audit log pruned: rows {first}..{} (before {}) removed; the chain now starts at seq {} ({} anchor)",
            plan.keep_from - 1,
            req.before,
            plan.keep_from,
            if key.is_some() { "signed" } else { "unsigned" }
        ));
        let anchor = conn.write(|db| -> Result<Anchor, StoreError> {
            let anchor = checkpoint::write_anchor(db, plan.keep_from, &kept_hash, &req.before, plan.remove, key)?;
            event.detail = Some(serde_json::json!({
                "action": "audit.prune",
                "anchor": { "seq": anchor.seq, "hash": anchor.hash, "public_key": anchor.public_key, "signature": anchor.signature },
                "removed_from": first,
                "removed_to": plan.keep_from - 1,
                "pruned_before": req.before,
                "forced": req.force,
            }));
            chain::append_in(db, vec![event], instance)?;
            Ok(anchor)
        })?;
        Some(anchor)
    };

    let batch = req.batch.max(1);
    let mut removed = 0i64;
    let mut lo = first;
    while lo < plan.keep_from {
        let hi = (lo + batch).min(plan.keep_from);
        removed += conn
            .write(|db| db.execute("DELETE FROM audit_events WHERE seq >= $1 AND seq < $2", &vals![lo, hi]))?
            as i64;
        lo = hi;
    }
    // SQLite: the deletes sit in the WAL; copy them into the file now rather than letting the
    // WAL grow until a writer's checkpointer runs.
    if let Some(c) = conn.sqlite_conn() {
        let _ = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
    Ok(PruneOutcome { plan, removed, anchor })
}
