use serde::Serialize;
use sha2::{Digest, Sha256};

/// What an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The policy decided a call.
    Decision,
    /// A forwarded call finished (result, error, or the upstream died).
    Outcome,
    /// Something about the gateway itself: start, stop, policy reload.
    System,
    /// An approval changed state (pending, approved, denied, expired, cancelled, executed, failed).
    Approval,
    /// A checkpoint of the chain head (signed when a key is configured).
    Checkpoint,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Decision => "decision",
            EventKind::Outcome => "outcome",
            EventKind::System => "system",
            EventKind::Approval => "approval",
            EventKind::Checkpoint => "checkpoint",
        }
    }
}

/// An event as a door hands it to the audit log. Arguments must already be redacted.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub kind: EventKind,
    /// RFC 3339 UTC time the event happened; filled in by the log when empty.
    pub ts: String,
    pub decision_id: Option<String>,
    pub principal: Option<String>,
    pub client: Option<String>,
    pub session: Option<String>,
    pub door: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub method: Option<String>,
    pub operation: Option<String>,
    /// Redacted arguments.
    pub args: Option<serde_json::Value>,
    pub args_digest: Option<String>,
    pub effect: Option<String>,
    pub risk: Option<String>,
    pub flags: Vec<String>,
    pub reason: Option<String>,
    pub rule_ids: Vec<String>,
    pub policy_version: Option<String>,
    pub approval_id: Option<String>,
    pub approvers: Vec<String>,
    pub outcome: Option<String>,
    pub duration_ms: Option<f64>,
    pub detail: Option<serde_json::Value>,
    /// The gateway instance that wrote the row; filled in by the store that appends it when
    /// empty (PostgreSQL stores name one, SQLite stores leave it out).
    pub instance: Option<String>,
}

impl AuditEvent {
    pub fn new(kind: EventKind) -> AuditEvent {
        AuditEvent {
            kind,
            ts: String::new(),
            decision_id: None,
            principal: None,
            client: None,
            session: None,
            door: None,
            server: None,
            tool: None,
            method: None,
            operation: None,
            args: None,
            args_digest: None,
            effect: None,
            risk: None,
            flags: Vec::new(),
            reason: None,
            rule_ids: Vec::new(),
            policy_version: None,
            approval_id: None,
            approvers: Vec::new(),
            outcome: None,
            duration_ms: None,
            detail: None,
            instance: None,
        }
    }
}

/// A row of the audit log exactly as stored. The hash covers every column but itself (see
/// [`AuditRow::compute_hash`] for the two versions of what it covers).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRow {
    pub seq: i64,
    pub ts: String,
    pub kind: String,
    pub decision_id: Option<String>,
    pub principal: Option<String>,
    pub client: Option<String>,
    pub session: Option<String>,
    pub door: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub method: Option<String>,
    pub operation: Option<String>,
    pub args: Option<String>,
    pub args_digest: Option<String>,
    pub effect: Option<String>,
    pub risk: Option<String>,
    pub flags: Option<String>,
    pub reason: Option<String>,
    pub rule_ids: Option<String>,
    pub policy_version: Option<String>,
    pub approval_id: Option<String>,
    pub approvers: Option<String>,
    pub outcome: Option<String>,
    pub duration_ms: Option<f64>,
    pub detail: Option<String>,
    pub prev_hash: String,
    pub hash: String,
    /// The gateway instance that wrote it; `None` on rows written before instances were
    /// recorded, and on single-gateway SQLite stores.
    pub instance: Option<String>,
}

pub(crate) const COLUMNS: &str = "seq, ts, kind, decision_id, principal, client, session, door, server, tool, method, \
    operation, args, args_digest, effect, risk, flags, reason, rule_ids, policy_version, approval_id, approvers, \
    outcome, duration_ms, detail, prev_hash, hash, instance";

fn json_list(items: &[String]) -> Option<String> {
    (!items.is_empty()).then(|| serde_json::to_string(items).unwrap_or_default())
}

impl AuditRow {
    /// The row `e` becomes at `seq` after a row whose hash is `prev_hash` (hash filled in).
    pub fn from_event(e: AuditEvent, seq: i64, prev_hash: String) -> AuditRow {
        let mut row = AuditRow::prepare(e);
        row.seal(seq, prev_hash);
        row
    }

    /// Everything of the row but its place in the chain: the encoding the caller can do before
    /// handing the row to the writer (which then only seals it).
    pub(crate) fn prepare(e: AuditEvent) -> AuditRow {
        AuditRow {
            seq: 0,
            ts: e.ts,
            kind: e.kind.as_str().to_string(),
            decision_id: e.decision_id,
            principal: e.principal,
            client: e.client,
            session: e.session,
            door: e.door,
            server: e.server,
            tool: e.tool,
            method: e.method,
            operation: e.operation,
            args: e.args.map(|a| a.to_string()),
            args_digest: e.args_digest,
            effect: e.effect,
            risk: e.risk,
            flags: json_list(&e.flags),
            reason: e.reason,
            rule_ids: json_list(&e.rule_ids),
            policy_version: e.policy_version,
            approval_id: e.approval_id,
            approvers: json_list(&e.approvers),
            outcome: e.outcome,
            duration_ms: e.duration_ms,
            detail: e.detail.map(|d| d.to_string()),
            prev_hash: String::new(),
            hash: String::new(),
            instance: e.instance,
        }
    }

    /// Places a prepared row at `seq` after a row whose hash is `prev_hash`, and hashes it.
    pub(crate) fn seal(&mut self, seq: i64, prev_hash: String) {
        self.seq = seq;
        self.prev_hash = prev_hash;
        self.hash = self.compute_hash();
    }

    /// SHA-256 over the previous hash and every column of this row, in a fixed order: the
    /// compact JSON array of the columns, streamed into the hasher without building it.
    ///
    /// Two versions, told apart by the array's length so neither can pass for the other: a row
    /// without an instance hashes the 25 columns it always had (version 1, so every row written
    /// before instances existed still verifies); a row naming its instance appends it as a 26th
    /// element (version 2).
    pub fn compute_hash(&self) -> String {
        let mut h = HashWriter(Sha256::new());
        h.0.update(self.prev_hash.as_bytes());
        h.0.update(b"\n");
        h.0.update(b"[");
        let mut first = true;
        let mut put = |v: &dyn erased::Json, h: &mut HashWriter| {
            if !first {
                h.0.update(b",");
            }
            first = false;
            v.write(h);
        };
        put(&self.seq, &mut h);
        put(&self.ts, &mut h);
        put(&self.kind, &mut h);
        for col in [
            &self.decision_id,
            &self.principal,
            &self.client,
            &self.session,
            &self.door,
            &self.server,
            &self.tool,
            &self.method,
            &self.operation,
            &self.args,
            &self.args_digest,
            &self.effect,
            &self.risk,
            &self.flags,
            &self.reason,
            &self.rule_ids,
            &self.policy_version,
            &self.approval_id,
            &self.approvers,
            &self.outcome,
        ] {
            put(col, &mut h);
        }
        put(&self.duration_ms, &mut h);
        put(&self.detail, &mut h);
        if let Some(instance) = &self.instance {
            put(instance, &mut h);
        }
        h.0.update(b"]");
        hex::encode(h.0.finalize())
    }

    /// A row selected with [`COLUMNS`].
    pub(crate) fn from_row(mut r: crate::db::Row) -> Result<AuditRow, crate::db::DbError> {
        Ok(AuditRow {
            seq: r.int(0)?,
            ts: r.text(1)?,
            kind: r.text(2)?,
            decision_id: r.opt_text(3)?,
            principal: r.opt_text(4)?,
            client: r.opt_text(5)?,
            session: r.opt_text(6)?,
            door: r.opt_text(7)?,
            server: r.opt_text(8)?,
            tool: r.opt_text(9)?,
            method: r.opt_text(10)?,
            operation: r.opt_text(11)?,
            args: r.opt_text(12)?,
            args_digest: r.opt_text(13)?,
            effect: r.opt_text(14)?,
            risk: r.opt_text(15)?,
            flags: r.opt_text(16)?,
            reason: r.opt_text(17)?,
            rule_ids: r.opt_text(18)?,
            policy_version: r.opt_text(19)?,
            approval_id: r.opt_text(20)?,
            approvers: r.opt_text(21)?,
            outcome: r.opt_text(22)?,
            duration_ms: r.opt_real(23)?,
            detail: r.opt_text(24)?,
            prev_hash: r.text(25)?,
            hash: r.text(26)?,
            instance: r.opt_text(27)?,
        })
    }

    /// The row as a JSON object for `audit query --json`: JSON-valued columns are embedded as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let parse = |s: &Option<String>| -> serde_json::Value {
            s.as_deref()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or(serde_json::Value::Null)
        };
        let list = |s: &Option<String>| -> serde_json::Value {
            match parse(s) {
                serde_json::Value::Null => serde_json::Value::Array(Vec::new()),
                v => v,
            }
        };
        serde_json::json!({
            "seq": self.seq,
            "ts": self.ts,
            "kind": self.kind,
            "decision_id": self.decision_id,
            "principal": self.principal,
            "client": self.client,
            "session": self.session,
            "door": self.door,
            "server": self.server,
            "tool": self.tool,
            "method": self.method,
            "operation": self.operation,
            "args": parse(&self.args),
            "args_digest": self.args_digest,
            "effect": self.effect,
            "risk": self.risk,
            "flags": list(&self.flags),
            "reason": self.reason,
            "rule_ids": list(&self.rule_ids),
            "policy_version": self.policy_version,
            "approval_id": self.approval_id,
            "approvers": list(&self.approvers),
            "outcome": self.outcome,
            "duration_ms": self.duration_ms,
            "detail": parse(&self.detail),
            "instance": self.instance,
            "hash": self.hash,
        })
    }
}

/// An `io::Write` that feeds a SHA-256.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

mod erased {
    /// A value serde_json writes: lets one loop stream columns of different types.
    pub(super) trait Json {
        fn write(&self, out: &mut super::HashWriter);
    }

    impl<T: serde::Serialize> Json for T {
        fn write(&self, out: &mut super::HashWriter) {
            // Writing plain strings, numbers and null into a hasher cannot fail.
            let _ = serde_json::to_writer(out, self);
        }
    }
}

#[cfg(test)]
mod hash_tests {
    use super::*;

    /// The streamed hash is byte for byte the hash of the `json!` array chains were written with.
    #[test]
    fn streamed_hash_matches_the_array_form() {
        let mut e = AuditEvent::new(EventKind::Decision);
        e.ts = "2026-11-21T12:00:00.000Z".into();
        e.principal = Some("alice \"quoted\" ü".into());
        e.args = Some(serde_json::json!({"b": 1, "a": [1.5, null]}));
        e.flags = vec!["destructive-fs".into()];
        e.duration_ms = Some(12.345);
        let row = AuditRow::from_event(e, 7, "ab".repeat(32));
        let material = serde_json::json!([
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
        ]);
        let mut h = Sha256::new();
        h.update(row.prev_hash.as_bytes());
        h.update(b"\n");
        h.update(material.to_string().as_bytes());
        assert_eq!(row.compute_hash(), hex::encode(h.finalize()));
    }

    /// Today's hash of a fixed row, pinned (computed independently: SHA-256 of the genesis hash,
    /// a newline and the row's 25 columns as compact JSON): a change to what the hash covers
    /// would stop every existing chain from verifying.
    #[test]
    fn version_1_hash_is_pinned() {
        let mut e = AuditEvent::new(EventKind::Decision);
        e.ts = "2026-11-21T12:00:00.000Z".into();
        e.principal = Some("alice".into());
        e.args = Some(serde_json::json!({"command": "ls"}));
        let row = AuditRow::from_event(e, 1, crate::schema::GENESIS.to_string());
        assert_eq!(
            row.compute_hash(),
            "52a945aa95718e6aecf65f34bcc54d0be3610040814eba3e873255023bb0e572"
        );
    }

    /// A row naming its instance hashes the instance too (version 2), and only such rows do.
    #[test]
    fn version_2_covers_the_instance() {
        let mut e = AuditEvent::new(EventKind::Outcome);
        e.ts = "2026-11-21T12:00:00.000Z".into();
        let v1 = AuditRow::from_event(e.clone(), 3, "ab".repeat(32));
        e.instance = Some("gw-a".into());
        let v2 = AuditRow::from_event(e.clone(), 3, "ab".repeat(32));
        assert_ne!(v1.hash, v2.hash);
        let mut forged = v2.clone();
        forged.instance = Some("gw-b".into());
        assert_ne!(forged.compute_hash(), v2.hash);
        forged.instance = None;
        assert_ne!(forged.compute_hash(), v2.hash);
        // Version 2 is version 1's array with the instance appended.
        let material = format!(
            "{}\n[3,\"{}\",\"outcome\",{}null,null,\"gw-a\"]",
            "ab".repeat(32),
            v2.ts,
            "null,".repeat(20)
        );
        assert_eq!(v2.hash, hex::encode(Sha256::digest(material.as_bytes())));
    }
}
