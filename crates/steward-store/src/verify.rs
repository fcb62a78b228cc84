//! `audit verify`: the hash chain, from the genesis hash or the prune anchor, every checkpoint
//! against it (truncation shows as a log that ends before a checkpoint), signatures, and forwarded
//! calls that have no outcome row.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::StoreError;
use crate::chain::{self, Start};
use crate::checkpoint::{self, Anchor, Checkpoint, Signature};
use crate::db::{Db, vals};
use crate::signing::PublicKey;

/// At most this many calls without outcome are listed (all are counted).
pub const MAX_LISTED_OPEN_CALLS: usize = 20;

/// What a verifier trusts.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Checkpoints and anchors must be signed by one of these keys. Empty: a signature is
    /// checked against the key it names (self-consistent, not proof of who signed).
    pub public_keys: Vec<PublicKey>,
}

/// The result of checking the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Rows checked.
    pub rows: u64,
    /// Where the check started: 1, or the prune anchor's seq.
    pub first_seq: i64,
    pub last_seq: i64,
    pub last_hash: Option<String>,
    /// The first sequence number at which the chain is broken, and what is wrong there.
    pub broken: Option<(i64, String)>,
    pub anchor: Option<AnchorCheck>,
    /// Rows older than the anchor that an interrupted prune left (not checked).
    pub rows_before_anchor: u64,
    pub checkpoints: CheckpointSummary,
    /// The log ends before the newest checkpoint.
    pub truncated: Option<Truncation>,
    /// Everything else that fails verification (bad signatures, mismatched checkpoints…).
    pub problems: Vec<String>,
    /// Findings that do not fail verification.
    pub notes: Vec<String>,
    /// Forwarded calls whose decision row has no outcome row (a crash, or still running).
    pub calls_without_outcome: OpenCalls,
}

impl VerifyReport {
    /// Whether the log verifies: chain intact, not truncated, no other problem. Calls without
    /// outcome do not fail it.
    pub fn ok(&self) -> bool {
        self.broken.is_none() && self.truncated.is_none() && self.problems.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnchorCheck {
    pub anchor: Anchor,
    pub signature: Signature,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckpointSummary {
    pub total: u64,
    /// Match the row at their seq, with a valid signature by a trusted key.
    pub verified: u64,
    /// Match, unsigned.
    pub unsigned: u64,
    /// Older than the prune anchor (their rows are gone).
    pub before_anchor: u64,
    /// The newest checkpoint that matched the chain: the signed head.
    pub last_verified: Option<Checkpoint>,
    pub last: Option<Checkpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Truncation {
    /// The last row present.
    pub log_ends_at: i64,
    /// The seq the log should reach: the newest checkpoint's head, or its own event row.
    pub checkpoint_seq: i64,
    pub checkpoint_ts: String,
    pub signed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OpenCalls {
    pub count: u64,
    /// The oldest ones, at most [`MAX_LISTED_OPEN_CALLS`].
    pub calls: Vec<OpenCall>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenCall {
    pub seq: i64,
    pub ts: String,
    pub decision_id: Option<String>,
    pub principal: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
}

pub(crate) fn run(conn: &mut dyn Db, opts: &VerifyOptions) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport {
        rows: 0,
        first_seq: 1,
        last_seq: 0,
        last_hash: None,
        broken: None,
        anchor: None,
        rows_before_anchor: 0,
        checkpoints: CheckpointSummary::default(),
        truncated: None,
        problems: Vec::new(),
        notes: Vec::new(),
        calls_without_outcome: OpenCalls::default(),
    };
    let trusted = &opts.public_keys;
    let start = match checkpoint::anchor(conn)? {
        Some(a) => {
            let signature = Signature::check(a.public_key.as_deref(), a.signature.as_deref(), &a.message(), trusted);
            judge_signature(&signature, "the prune anchor", !trusted.is_empty(), &mut report);
            report.rows_before_anchor =
                conn.query_int("SELECT count(*) FROM audit_events WHERE seq < $1", &vals![a.seq])? as u64;
            if report.rows_before_anchor > 0 {
                report.notes.push(format!(
                    "{} row(s) older than the prune anchor remain (an interrupted prune); they are not checked and the next prune removes them",
                    report.rows_before_anchor
                ));
            }
            let start = Start {
                seq: a.seq,
                prev: None,
                expect_hash: Some(a.hash.clone()),
            };
            report.anchor = Some(AnchorCheck { anchor: a, signature });
            start
        }
        None => Start::genesis(),
    };
    report.first_seq = start.seq;

    // Checkpoints by the seq they vouch for, and the ones the chain itself records.
    let checkpoints = checkpoint::list(conn)?;
    let mut wanted: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, c) in checkpoints.iter().enumerate() {
        wanted.entry(c.seq).or_default().push(i);
    }
    let mut matched = vec![false; checkpoints.len()];
    let mut mismatched: Vec<(usize, String)> = Vec::new();
    let mut in_chain: Vec<(i64, i64, String)> = Vec::new();
    let walk = chain::walk(conn, &start, None, |row| {
        if let Some(idx) = wanted.get(&row.seq) {
            for &i in idx {
                if checkpoints[i].hash == row.hash {
                    matched[i] = true;
                } else {
                    mismatched.push((i, row.hash.clone()));
                }
            }
        }
        if row.kind == "checkpoint"
            && let Some((seq, hash)) = recorded_checkpoint(row.detail.as_deref())
        {
            in_chain.push((row.seq, seq, hash));
        }
    })?;
    report.rows = walk.rows;
    report.last_seq = walk.last_seq.max(0);
    report.last_hash = walk.last_hash.clone();
    report.broken = walk.broken.clone();

    let chain_end = if report.broken.is_some() {
        None
    } else {
        Some(report.last_seq)
    };
    let mut summary = CheckpointSummary {
        total: checkpoints.len() as u64,
        last: checkpoints.last().cloned(),
        ..CheckpointSummary::default()
    };
    let mut unsigned_seen = 0u64;
    for (i, c) in checkpoints.iter().enumerate() {
        if c.seq < start.seq {
            summary.before_anchor += 1;
            continue;
        }
        let signature = Signature::check(c.public_key.as_deref(), c.signature.as_deref(), &c.message(), trusted);
        match &signature {
            Signature::Invalid => report.problems.push(format!(
                "checkpoint #{} (seq {}, {}): the signature does not verify; the checkpoint was changed",
                c.id, c.seq, c.ts
            )),
            Signature::OtherKey { key_id } => report.problems.push(format!(
                "checkpoint #{} (seq {}, {}) is signed by key {key_id}, which is not a trusted key",
                c.id, c.seq, c.ts
            )),
            Signature::Unsigned if !trusted.is_empty() => report.problems.push(format!(
                "checkpoint #{} (seq {}, {}) is unsigned, but a signed one was required (--public-key)",
                c.id, c.seq, c.ts
            )),
            Signature::Unsigned => unsigned_seen += 1,
            Signature::Valid { .. } => {}
        }
        if let Some((_, found)) = mismatched.iter().find(|(j, _)| *j == i) {
            report.problems.push(format!(
                "checkpoint #{} says seq {} has hash {}, the log has {found}: the row or the checkpoint was changed",
                c.id, c.seq, c.hash
            ));
            continue;
        }
        if matched[i] {
            if matches!(signature, Signature::Valid { .. }) {
                summary.verified += 1;
                summary.last_verified = Some(c.clone());
            } else if signature == Signature::Unsigned && trusted.is_empty() {
                summary.unsigned += 1;
                summary.last_verified = Some(c.clone());
            }
        }
        // The checkpoint's own event row follows the head it signed: the log must reach both.
        let reach = c.seq.max(c.event_seq);
        if let Some(end) = chain_end
            && reach > end
            && report.truncated.as_ref().is_none_or(|old| old.checkpoint_seq < reach)
        {
            report.truncated = Some(Truncation {
                log_ends_at: end,
                checkpoint_seq: reach,
                checkpoint_ts: c.ts.clone(),
                signed: c.signature.is_some(),
            });
        }
    }
    if unsigned_seen > 0 {
        report.notes.push(format!(
            "{unsigned_seen} checkpoint(s) are unsigned: they show truncation, but anyone who can write the database could have written them"
        ));
    }
    for (event_seq, seq, hash) in &in_chain {
        if !checkpoints.iter().any(|c| c.seq == *seq && c.hash == *hash) {
            report.problems.push(format!(
                "the checkpoint of seq {seq} recorded in the chain at seq {event_seq} is missing from the checkpoint table (removed or changed)"
            ));
        }
    }
    report.checkpoints = summary;
    report.calls_without_outcome = open_calls(conn, start.seq)?;
    if report.calls_without_outcome.count > 0 {
        report.notes.push(format!(
            "{} forwarded call(s) have no outcome row: they were cut off by a crash or kill, or are still running; this does not fail verification",
            report.calls_without_outcome.count
        ));
    }
    Ok(report)
}

fn judge_signature(signature: &Signature, what: &str, required: bool, report: &mut VerifyReport) {
    match signature {
        Signature::Valid { .. } => {}
        Signature::Invalid => report
            .problems
            .push(format!("{what}: the signature does not verify; it was changed")),
        Signature::OtherKey { key_id } => report
            .problems
            .push(format!("{what} is signed by key {key_id}, which is not a trusted key")),
        Signature::Unsigned if required => report.problems.push(format!(
            "{what} is unsigned, but a signed one was required (--public-key)"
        )),
        Signature::Unsigned => report.notes.push(format!(
            "{what} is unsigned: anyone who can write the database could have written it"
        )),
    }
}

/// `(seq, hash)` of a `checkpoint` event's `detail.checkpoint`.
fn recorded_checkpoint(detail: Option<&str>) -> Option<(i64, String)> {
    let v: serde_json::Value = serde_json::from_str(detail?).ok()?;
    let c = v.get("checkpoint")?;
    Some((c.get("seq")?.as_i64()?, c.get("hash")?.as_str()?.to_string()))
}

/// Decision rows of calls Steward forwarded (an `allow`; an `approve` whose approval released
/// it; an `ask` the user confirmed) with no outcome row. Doors that do not forward (the hook,
/// the decision API, the CLI) are left out.
fn open_calls(conn: &mut dyn Db, from_seq: i64) -> Result<OpenCalls, StoreError> {
    let approvals = conn.has_table("approvals")?;
    let released = if approvals {
        "OR (d.effect = 'approve' AND d.decision_id IN (SELECT consumed_by FROM approvals WHERE consumed_by IS NOT NULL))"
    } else {
        ""
    };
    let from = format!(
        "FROM audit_events d WHERE d.seq >= $1 AND d.kind = 'decision' AND d.method = 'tools/call' \
         AND d.decision_id IS NOT NULL AND coalesce(d.door, '') NOT IN ('hook', 'api', 'cli') \
         AND (d.effect = 'allow' {released} \
              OR (d.effect = 'ask' AND EXISTS (SELECT 1 FROM audit_events c WHERE c.kind = 'approval' \
                  AND c.decision_id = d.decision_id AND c.outcome = 'confirmed'))) \
         AND NOT EXISTS (SELECT 1 FROM audit_events o WHERE o.kind = 'outcome' AND o.decision_id = d.decision_id)"
    );
    let count = conn.query_int(&format!("SELECT count(*) {from}"), &vals![from_seq])?;
    let rows = conn.query(
        &format!(
            "SELECT d.seq, d.ts, d.decision_id, d.principal, d.server, d.tool {from} ORDER BY d.seq LIMIT {MAX_LISTED_OPEN_CALLS}"
        ),
        &vals![from_seq],
    )?;
    let mut calls = Vec::with_capacity(rows.len());
    for mut r in rows {
        calls.push(OpenCall {
            seq: r.int(0)?,
            ts: r.text(1)?,
            decision_id: r.opt_text(2)?,
            principal: r.opt_text(3)?,
            server: r.opt_text(4)?,
            tool: r.opt_text(5)?,
        });
    }
    Ok(OpenCalls {
        count: count as u64,
        calls,
    })
}
