//! Signed checkpoints of the chain head, and the anchors prune leaves behind.
//!
//! A checkpoint records (seq, hash, time) of the newest row, signed with an Ed25519 key kept
//! outside the database; `verify` then notices a log that ends before a checkpoint
//! (truncation). Each checkpoint is also appended to the chain as a `checkpoint` event, so
//! sinks ship it off the machine with everything else.
//!
//! An anchor records the first row kept by a prune: `verify` starts from it instead of from
//! the genesis hash.

use serde::Serialize;

use crate::db::{Db, DbError, Row, vals};
use crate::event::{AuditEvent, EventKind};
use crate::signing::{PublicKey, SigningKey};

/// A checkpoint of the chain head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    pub id: i64,
    /// The head row it vouches for.
    pub seq: i64,
    pub hash: String,
    /// That row's `ts`.
    pub head_ts: String,
    /// When the checkpoint was made.
    pub ts: String,
    /// The seq of the `checkpoint` event that recorded it in the chain.
    pub event_seq: i64,
    /// Ed25519 public key (hex) and signature (hex); `None` for an unsigned checkpoint.
    pub public_key: Option<String>,
    pub signature: Option<String>,
}

impl Checkpoint {
    /// The bytes the signature covers.
    pub fn message(&self) -> Vec<u8> {
        checkpoint_message(self.seq, &self.hash, &self.head_ts, &self.ts)
    }
}

fn checkpoint_message(seq: i64, hash: &str, head_ts: &str, ts: &str) -> Vec<u8> {
    format!("steward-audit-checkpoint/1\nseq={seq}\nhash={hash}\nhead_ts={head_ts}\nts={ts}\n").into_bytes()
}

/// Where the log starts after a prune.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anchor {
    pub id: i64,
    /// The first kept row.
    pub seq: i64,
    pub hash: String,
    /// Rows older than this (RFC 3339) were removed.
    pub pruned_before: String,
    /// How many rows the prune removed.
    pub removed: i64,
    pub ts: String,
    pub public_key: Option<String>,
    pub signature: Option<String>,
}

impl Anchor {
    pub fn message(&self) -> Vec<u8> {
        anchor_message(self.seq, &self.hash, &self.pruned_before, &self.ts)
    }
}

fn anchor_message(seq: i64, hash: &str, pruned_before: &str, ts: &str) -> Vec<u8> {
    format!("steward-audit-anchor/1\nseq={seq}\nhash={hash}\npruned_before={pruned_before}\nts={ts}\n").into_bytes()
}

/// How a signature stands against the keys a verifier trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Signature {
    /// Valid, by a trusted key (or, when no key is trusted, by the key it names).
    Valid {
        key_id: String,
    },
    /// Valid by the key it names, which is not one of the trusted keys.
    OtherKey {
        key_id: String,
    },
    /// Does not verify: the record or its signature was changed.
    Invalid,
    Unsigned,
}

impl Signature {
    /// Checks `signature` over `message` made by `public_key`, against `trusted` (any valid
    /// signature counts when `trusted` is empty).
    pub fn check(
        public_key: Option<&str>,
        signature: Option<&str>,
        message: &[u8],
        trusted: &[PublicKey],
    ) -> Signature {
        let (Some(pk), Some(sig)) = (public_key, signature) else {
            return Signature::Unsigned;
        };
        let Some(named) = PublicKey::from_hex(pk) else {
            return Signature::Invalid;
        };
        if !named.verifies(message, sig) {
            return Signature::Invalid;
        }
        if trusted.is_empty() || trusted.contains(&named) {
            Signature::Valid { key_id: named.id() }
        } else {
            Signature::OtherKey { key_id: named.id() }
        }
    }
}

pub(crate) const CHECKPOINT_COLUMNS: &str = "id, seq, hash, head_ts, ts, event_seq, public_key, signature";
pub(crate) const ANCHOR_COLUMNS: &str = "id, seq, hash, pruned_before, removed, ts, public_key, signature";

pub(crate) fn checkpoint_row(mut r: Row) -> Result<Checkpoint, DbError> {
    Ok(Checkpoint {
        id: r.int(0)?,
        seq: r.int(1)?,
        hash: r.text(2)?,
        head_ts: r.text(3)?,
        ts: r.text(4)?,
        event_seq: r.int(5)?,
        public_key: r.opt_text(6)?,
        signature: r.opt_text(7)?,
    })
}

pub(crate) fn anchor_row(mut r: Row) -> Result<Anchor, DbError> {
    Ok(Anchor {
        id: r.int(0)?,
        seq: r.int(1)?,
        hash: r.text(2)?,
        pruned_before: r.text(3)?,
        removed: r.int(4)?,
        ts: r.text(5)?,
        public_key: r.opt_text(6)?,
        signature: r.opt_text(7)?,
    })
}

/// Every checkpoint, oldest first. Empty on a database older than checkpoints.
pub(crate) fn list(db: &mut dyn Db) -> Result<Vec<Checkpoint>, DbError> {
    if !db.has_table("audit_checkpoints")? {
        return Ok(Vec::new());
    }
    let rows = db.query(
        &format!("SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq, id"),
        &[],
    )?;
    rows.into_iter().map(checkpoint_row).collect()
}

pub(crate) fn last(db: &mut dyn Db) -> Result<Option<Checkpoint>, DbError> {
    if !db.has_table("audit_checkpoints")? {
        return Ok(None);
    }
    db.query_opt(
        &format!("SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC, id DESC LIMIT 1"),
        &[],
    )?
    .map(checkpoint_row)
    .transpose()
}

/// The anchor verification starts from: the newest one.
pub(crate) fn anchor(db: &mut dyn Db) -> Result<Option<Anchor>, DbError> {
    if !db.has_table("audit_anchors")? {
        return Ok(None);
    }
    db.query_opt(
        &format!("SELECT {ANCHOR_COLUMNS} FROM audit_anchors ORDER BY seq DESC, id DESC LIMIT 1"),
        &[],
    )?
    .map(anchor_row)
    .transpose()
}

/// Signs the current head inside a write transaction (the head cannot move: SQLite's
/// IMMEDIATE, PostgreSQL's locked head row), records the checkpoint and its `checkpoint`
/// event. `None` when the log is empty.
pub(crate) fn append(
    db: &mut dyn Db,
    key: Option<&SigningKey>,
    by: &str,
    instance: Option<&str>,
) -> Result<Option<Checkpoint>, DbError> {
    // Lock the head first (PostgreSQL) so no gateway appends between reading it and signing it.
    let (locked_seq, _) = crate::chain::head_for_append(db)?;
    if locked_seq == 0 {
        return Ok(None);
    }
    let head = db.query_opt(
        "SELECT seq, hash, ts FROM audit_events WHERE seq = $1",
        &vals![locked_seq],
    )?;
    let Some(mut head) = head else {
        return Ok(None);
    };
    let (seq, hash, head_ts) = (head.int(0)?, head.text(1)?, head.text(2)?);
    let ts = crate::writer::now_rfc3339();
    let public_key = key.map(|k| k.public_key().to_hex());
    let signature = key.map(|k| k.sign(&checkpoint_message(seq, &hash, &head_ts, &ts)));
    let mut event = AuditEvent::new(EventKind::Checkpoint);
    event.ts = ts.clone();
    event.principal = Some(by.to_string());
    event.reason = Some(match key {
        Some(k) => format!(
            "signed checkpoint of the chain head at seq {seq} (key {})",
            k.public_key().id()
        ),
        None => format!("unsigned checkpoint of the chain head at seq {seq}"),
    });
    event.detail = Some(serde_json::json!({
        "checkpoint": {
            "seq": seq,
            "hash": hash,
            "head_ts": head_ts,
            "ts": ts,
            "public_key": public_key,
            "signature": signature,
        }
    }));
    let event_seq = crate::chain::append_in(db, vec![event], instance)?
        .first()
        .copied()
        .unwrap_or(seq + 1);
    let id = db
        .query_one(
            "INSERT INTO audit_checkpoints (seq, hash, head_ts, ts, event_seq, public_key, signature) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &vals![
                seq,
                hash.as_str(),
                head_ts.as_str(),
                ts.as_str(),
                event_seq,
                &public_key,
                &signature
            ],
        )?
        .int(0)?;
    Ok(Some(Checkpoint {
        id,
        seq,
        hash,
        head_ts,
        ts,
        event_seq,
        public_key,
        signature,
    }))
}

/// Records a prune anchor for row `seq` (whose hash is `hash`) inside `tx`.
pub(crate) fn write_anchor(
    db: &mut dyn Db,
    seq: i64,
    hash: &str,
    pruned_before: &str,
    removed: i64,
    key: Option<&SigningKey>,
) -> Result<Anchor, DbError> {
    let ts = crate::writer::now_rfc3339();
    let public_key = key.map(|k| k.public_key().to_hex());
    let signature = key.map(|k| k.sign(&anchor_message(seq, hash, pruned_before, &ts)));
    let id = db
        .query_one(
            "INSERT INTO audit_anchors (seq, hash, pruned_before, removed, ts, public_key, signature) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &vals![seq, hash, pruned_before, removed, ts.as_str(), &public_key, &signature],
        )?
        .int(0)?;
    Ok(Anchor {
        id,
        seq,
        hash: hash.to_string(),
        pruned_before: pruned_before.to_string(),
        removed,
        ts,
        public_key,
        signature,
    })
}
