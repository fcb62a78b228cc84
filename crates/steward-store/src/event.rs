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
        }
    }
}

/// A row of the audit log exactly as stored. The hash covers every column but itself.
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
}

pub(crate) const COLUMNS: &str = "seq, ts, kind, decision_id, principal, client, session, door, server, tool, method, \
    operation, args, args_digest, effect, risk, flags, reason, rule_ids, policy_version, approval_id, approvers, \
    outcome, duration_ms, detail, prev_hash, hash";

fn json_list(items: &[String]) -> Option<String> {
    (!items.is_empty()).then(|| serde_json::to_string(items).unwrap_or_default())
}

impl AuditRow {
    /// The row `e` becomes at `seq` after a row whose hash is `prev_hash` (hash filled in).
    pub fn from_event(e: AuditEvent, seq: i64, prev_hash: String) -> AuditRow {
        let mut row = AuditRow {
            seq,
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
            prev_hash,
            hash: String::new(),
        };
        row.hash = row.compute_hash();
        row
    }

    /// SHA-256 over the previous hash and every column of this row, in a fixed order: the
    /// compact JSON array of the columns, streamed into the hasher without building it.
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
        h.0.update(b"]");
        hex::encode(h.0.finalize())
    }

    pub(crate) fn from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
        Ok(AuditRow {
            seq: r.get(0)?,
            ts: r.get(1)?,
            kind: r.get(2)?,
            decision_id: r.get(3)?,
            principal: r.get(4)?,
            client: r.get(5)?,
            session: r.get(6)?,
            door: r.get(7)?,
            server: r.get(8)?,
            tool: r.get(9)?,
            method: r.get(10)?,
            operation: r.get(11)?,
            args: r.get(12)?,
            args_digest: r.get(13)?,
            effect: r.get(14)?,
            risk: r.get(15)?,
            flags: r.get(16)?,
            reason: r.get(17)?,
            rule_ids: r.get(18)?,
            policy_version: r.get(19)?,
            approval_id: r.get(20)?,
            approvers: r.get(21)?,
            outcome: r.get(22)?,
            duration_ms: r.get(23)?,
            detail: r.get(24)?,
            prev_hash: r.get(25)?,
            hash: r.get(26)?,
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
}
