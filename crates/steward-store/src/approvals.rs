//! Approvals and grants, in the `approvals` table of the audit database.
//!
//! Several processes share the file (a proxy holding a call, `steward approvals approve` in a
//! terminal), so every transition is a conditional change inside a `BEGIN IMMEDIATE`
//! transaction, and its audit event is appended to the hash chain in that same transaction:
//! a state change is never committed without its audit row, nor the other way round.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::approval::{
    APPROVER_ROLE, Actor, Approval, ApprovalError, ApprovalState, ApprovalVote, Approved, NewApproval,
};
use crate::event::{AuditEvent, EventKind};
use crate::writer::append_in;
use crate::{StoreError, schema};

/// The actor named on transitions Steward makes by itself (expiry, hold time-out).
pub const SYSTEM_ACTOR: &str = "steward";

const MAX_ID_LEN: usize = 64;
const MAX_NAME_LEN: usize = 256;
const MAX_REASON_LEN: usize = 2_000;
const MAX_ROLES: usize = 64;
/// `list` returns at most this many approvals.
pub const MAX_LIST: usize = 10_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS approvals (
    id               TEXT PRIMARY KEY,
    state            TEXT NOT NULL,
    principal        TEXT NOT NULL,
    server           TEXT NOT NULL,
    tool             TEXT NOT NULL,
    risk             TEXT NOT NULL,
    decision_id      TEXT NOT NULL,
    args             TEXT NOT NULL,
    args_digest      TEXT NOT NULL,
    policy_version   TEXT NOT NULL,
    reasons          TEXT NOT NULL,
    rule_ids         TEXT NOT NULL,
    flags            TEXT NOT NULL,
    required_roles   TEXT NOT NULL,
    required_count   INTEGER NOT NULL,
    mode             TEXT NOT NULL,
    door             TEXT,
    session          TEXT,
    client           TEXT,
    created_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL,
    grant_window_s   INTEGER NOT NULL,
    votes            TEXT NOT NULL,
    decided_at       TEXT,
    decided_by       TEXT,
    decision_reason  TEXT,
    grant_expires_at TEXT,
    consumed_at      TEXT,
    consumed_by      TEXT,
    finished_at      TEXT
);
CREATE INDEX IF NOT EXISTS approvals_call ON approvals(principal, server, tool, args_digest, state);
CREATE INDEX IF NOT EXISTS approvals_state ON approvals(state, created_at);
";

pub(crate) const COLUMNS: &str = "id, state, principal, server, tool, risk, decision_id, args, args_digest, policy_version, \
    reasons, rule_ids, flags, required_roles, required_count, mode, door, session, client, created_at, expires_at, \
    grant_window_s, votes, decided_at, decided_by, decision_reason, grant_expires_at, consumed_at, consumed_by, finished_at";

/// What a new call that needs approval can reuse.
#[derive(Debug, Clone)]
pub enum Reusable {
    /// An approved, unused approval of exactly this call: it may run once.
    Grant(Approval),
    /// A pending approval of exactly this call: no second request for the approvers.
    Pending(Approval),
    None,
}

/// The approvals table. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct ApprovalStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl ApprovalStore {
    /// Opens (creating if needed) the SQLite file at `path`, with its audit and approvals tables.
    pub fn open_sqlite(path: &Path) -> Result<ApprovalStore, StoreError> {
        let display = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: display.clone(),
            source,
        })?;
        schema::prepare(&conn, &display)?;
        conn.execute_batch(SCHEMA)
            .map_err(|source| StoreError::Open { path: display, source })?;
        Ok(ApprovalStore {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing database for the CLI: a missing file is an error, not a new database.
    pub fn open_existing(path: &Path) -> Result<ApprovalStore, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        ApprovalStore::open_sqlite(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A fresh approval id: `apr-` and 12 hex digits (48 random bits).
    pub fn new_id() -> String {
        let bytes: [u8; 6] = rand::random();
        format!("apr-{}", hex::encode(bytes))
    }

    pub fn get(&self, id: &str) -> Result<Option<Approval>, ApprovalError> {
        check_id(id)?;
        let conn = self.lock();
        Ok(load(&conn, id)?)
    }

    /// Approvals, newest first, optionally only those in `state`.
    pub fn list(&self, state: Option<ApprovalState>, limit: usize) -> Result<Vec<Approval>, ApprovalError> {
        let conn = self.lock();
        let limit = limit.min(MAX_LIST) as i64;
        let mut out = Vec::new();
        match state {
            Some(s) => {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {COLUMNS} FROM approvals WHERE state = ?1 ORDER BY created_at DESC, id LIMIT ?2"
                ))?;
                for a in stmt.query_map(params![s.as_str(), limit], from_row)? {
                    out.push(a?);
                }
            }
            None => {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {COLUMNS} FROM approvals ORDER BY created_at DESC, id LIMIT ?1"
                ))?;
                for a in stmt.query_map(params![limit], from_row)? {
                    out.push(a?);
                }
            }
        }
        Ok(out)
    }

    /// An approved-and-unused or a pending approval of exactly this call, if there is one.
    pub fn reusable(
        &self,
        principal: &str,
        server: &str,
        tool: &str,
        args_digest: &str,
        policy_version: &str,
    ) -> Result<Reusable, ApprovalError> {
        let conn = self.lock();
        let now = now();
        let find = |state: &str, time_column: &str| -> rusqlite::Result<Option<Approval>> {
            conn.query_row(
                &format!(
                    "SELECT {COLUMNS} FROM approvals WHERE principal = ?1 AND server = ?2 AND tool = ?3 AND args_digest = ?4 \
                     AND policy_version = ?5 AND state = ?6 AND consumed_at IS NULL AND {time_column} > ?7 \
                     ORDER BY created_at LIMIT 1"
                ),
                params![principal, server, tool, args_digest, policy_version, state, now],
                from_row,
            )
            .optional()
        };
        if let Some(a) = find("approved", "grant_expires_at")? {
            return Ok(Reusable::Grant(a));
        }
        if let Some(a) = find("pending", "expires_at")? {
            return Ok(Reusable::Pending(a));
        }
        Ok(Reusable::None)
    }

    /// Records a new pending approval and its `pending` audit event.
    pub fn create(&self, new: &NewApproval) -> Result<Approval, ApprovalError> {
        check_id(&new.id)?;
        check_name(&new.principal, "principal")?;
        if new.required_roles.len() > MAX_ROLES {
            return Err(ApprovalError::InvalidInput(format!(
                "at most {MAX_ROLES} approver roles"
            )));
        }
        // Approver rules cannot be empty: an approval that names no role needs the approver role.
        let required_roles = if new.required_roles.is_empty() {
            vec![APPROVER_ROLE.to_string()]
        } else {
            new.required_roles.clone()
        };
        let created = Utc::now();
        let expires = created + chrono::Duration::from_std(new.expiry).unwrap_or(chrono::Duration::days(1));
        let json = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            &format!("INSERT INTO approvals ({COLUMNS}) VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, '[]', NULL, NULL, NULL, NULL, NULL, NULL, NULL)"),
            params![
                new.id,
                new.principal,
                new.server,
                new.tool,
                new.risk,
                new.decision_id,
                new.args.to_string(),
                new.args_digest,
                new.policy_version,
                json(&new.reasons),
                json(&new.rule_ids),
                json(&new.flags),
                json(&required_roles),
                new.required_count.max(1),
                new.mode,
                new.door,
                new.session,
                new.client,
                stamp(created),
                stamp(expires),
                new.grant_window.as_secs().max(1) as i64,
            ],
        )?;
        let a = load(&tx, &new.id)?.ok_or_else(|| ApprovalError::NotFound(new.id.clone()))?;
        let mut e = event(&a, &a.principal, "pending");
        e.flags = a.flags.clone();
        e.rule_ids = a.rule_ids.clone();
        e.reason = Some(format!(
            "{} asked to run {}; waiting for {} approver(s){} until {} ({} mode)",
            a.principal,
            a.target(),
            a.required_count,
            roles_text(&a.required_roles),
            a.expires_at,
            a.mode
        ));
        e.args = Some(a.args.clone());
        commit(tx, vec![e])?;
        Ok(a)
    }

    /// Records `actor`'s approval. Refuses the requester, an approver without a required role,
    /// a second approval by the same person, and an approval that is not pending or has expired.
    pub fn approve(&self, id: &str, actor: &Actor, reason: Option<&str>) -> Result<Approved, ApprovalError> {
        check_id(id)?;
        check_actor(actor)?;
        let reason = reason.map(check_reason).transpose()?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let a = self.pending_for(&tx, id, "approved")?;
        let a = match a {
            Ok(a) => a,
            Err(refusal) => {
                // An expiry found on the way is recorded before the refusal is returned.
                tx.commit()?;
                return Err(refusal);
            }
        };
        if same_person(&actor.name, &a.principal) {
            return Err(ApprovalError::SelfApproval {
                id: a.id,
                approver: actor.name.clone(),
            });
        }
        check_role(&a, actor, "approve")?;
        if a.approvals.iter().any(|v| same_person(&v.by, &actor.name)) {
            let missing = a.required_count.saturating_sub(a.approvals.len() as u32);
            return Err(ApprovalError::AlreadyApproved {
                id: a.id.clone(),
                approver: actor.name.clone(),
                progress: a.progress(),
                missing,
            });
        }
        let now = Utc::now();
        let mut votes = a.approvals.clone();
        votes.push(ApprovalVote {
            by: actor.name.clone(),
            at: stamp(now),
            reason: reason.clone(),
        });
        let complete = votes.len() as u32 >= a.required_count;
        let votes_json = serde_json::to_string(&votes).unwrap_or_else(|_| "[]".into());
        let changed = if complete {
            let grant_until = now + chrono::Duration::seconds(a.grant_window_seconds as i64);
            let by = votes.iter().map(|v| v.by.as_str()).collect::<Vec<_>>().join(", ");
            tx.execute(
                "UPDATE approvals SET state = 'approved', votes = ?2, decided_at = ?3, decided_by = ?4, decision_reason = ?5, \
                 grant_expires_at = ?6 WHERE id = ?1 AND state = 'pending'",
                params![a.id, votes_json, stamp(now), by, reason, stamp(grant_until)],
            )?
        } else {
            tx.execute(
                "UPDATE approvals SET votes = ?2 WHERE id = ?1 AND state = 'pending'",
                params![a.id, votes_json],
            )?
        };
        if changed != 1 {
            return Err(ApprovalError::InvalidInput(format!(
                "approval {id} changed while it was being approved; try again"
            )));
        }
        let after = load(&tx, id)?.ok_or_else(|| ApprovalError::NotFound(id.to_string()))?;
        let mut e = event(
            &after,
            &actor.name,
            if complete { "approved" } else { "approval_recorded" },
        );
        e.approvers = votes.iter().map(|v| v.by.clone()).collect();
        e.reason = Some(format!(
            "{} approved ({}){}{}",
            actor.name,
            after.progress(),
            if complete {
                String::new()
            } else {
                format!(
                    "; waiting for {} more approver(s)",
                    after.required_count as usize - votes.len()
                )
            },
            reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
        ));
        commit(tx, vec![e])?;
        Ok(Approved {
            approval: after,
            complete,
        })
    }

    /// Denies a pending approval. The requester withdrawing their own call cancels it instead.
    pub fn deny(&self, id: &str, actor: &Actor, reason: &str) -> Result<Approval, ApprovalError> {
        check_id(id)?;
        check_actor(actor)?;
        let reason = check_reason(reason)?;
        if reason.trim().is_empty() {
            return Err(ApprovalError::InvalidInput(
                "a denial needs a reason (--reason TEXT)".into(),
            ));
        }
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let a = match self.pending_for(&tx, id, "denied")? {
            Ok(a) => a,
            Err(refusal) => {
                tx.commit()?;
                return Err(refusal);
            }
        };
        let own = same_person(&actor.name, &a.principal);
        if !own {
            check_role(&a, actor, "deny")?;
        }
        let state = if own {
            ApprovalState::Cancelled
        } else {
            ApprovalState::Denied
        };
        let after = finish_pending(&tx, &a, state, &actor.name, &reason)?;
        let mut e = event(&after, &actor.name, state.as_str());
        e.reason = Some(format!(
            "{} {} the call: {reason}",
            actor.name,
            if own { "withdrew" } else { "denied" }
        ));
        commit(tx, vec![e])?;
        Ok(after)
    }

    /// A held call waited `waited` without a decision: the approval is denied (a time-out is a
    /// denial). `None` when the approval was no longer pending (someone decided meanwhile).
    pub fn time_out(&self, id: &str, waited: Duration) -> Result<Option<Approval>, ApprovalError> {
        check_id(id)?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(a) = load(&tx, id)?.filter(|a| a.state == ApprovalState::Pending) else {
            return Ok(None);
        };
        let reason = format!(
            "no decision within the hold time-out of {}; a time-out counts as a denial",
            human(waited)
        );
        let after = finish_pending(&tx, &a, ApprovalState::Denied, SYSTEM_ACTOR, &reason)?;
        let mut e = event(&after, SYSTEM_ACTOR, "timed_out");
        e.reason = Some(reason);
        commit(tx, vec![e])?;
        Ok(Some(after))
    }

    /// Marks as expired every pending approval past its expiry and every unused grant past its
    /// window. Returns what changed.
    pub fn expire_due(&self) -> Result<Vec<Approval>, ApprovalError> {
        let mut conn = self.lock();
        let now = now();
        let due: Vec<String> = {
            let mut stmt = conn.prepare(
                "SELECT id FROM approvals WHERE (state = 'pending' AND expires_at <= ?1) \
                 OR (state = 'approved' AND consumed_at IS NULL AND grant_expires_at <= ?1) LIMIT 1000",
            )?;
            stmt.query_map(params![now], |r| r.get(0))?.collect::<Result<_, _>>()?
        };
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut changed = Vec::new();
        let mut events = Vec::new();
        for id in due {
            if let Some(a) = expire_if_due(&tx, &id)? {
                events.push(expiry_event(&a));
                changed.push(a);
            }
        }
        commit(tx, events)?;
        Ok(changed)
    }

    /// Releases an approved, unused approval to `decision_id`: the approved call runs once.
    /// `None` when it is not (or no longer) approved and unused, or its grant window has passed.
    pub fn consume(&self, id: &str, decision_id: &str) -> Result<Option<Approval>, ApprovalError> {
        check_id(id)?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now();
        let n = tx.execute(
            "UPDATE approvals SET consumed_at = ?2, consumed_by = ?3 \
             WHERE id = ?1 AND state = 'approved' AND consumed_at IS NULL AND grant_expires_at > ?2",
            params![id, now, decision_id],
        )?;
        let a = if n == 1 { load(&tx, id)? } else { None };
        tx.commit()?;
        Ok(a)
    }

    /// Records how a released call ended: `executed` (it ran) or `failed` (it errored, or the
    /// upstream never answered).
    pub fn finish(&self, id: &str, ok: bool, outcome: &str) -> Result<Option<Approval>, ApprovalError> {
        check_id(id)?;
        let state = if ok {
            ApprovalState::Executed
        } else {
            ApprovalState::Failed
        };
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now();
        let n = tx.execute(
            "UPDATE approvals SET state = ?2, finished_at = ?3 WHERE id = ?1 AND state = 'approved' AND consumed_at IS NOT NULL",
            params![id, state.as_str(), now],
        )?;
        if n != 1 {
            return Ok(None);
        }
        let a = load(&tx, id)?.ok_or_else(|| ApprovalError::NotFound(id.to_string()))?;
        let mut e = event(&a, &a.principal, state.as_str());
        e.outcome = Some(state.as_str().to_string());
        e.approvers = a.approvals.iter().map(|v| v.by.clone()).collect();
        e.reason = Some(format!(
            "the approved call {} ({outcome})",
            if ok { "ran" } else { "failed" }
        ));
        e.detail = Some(
            serde_json::json!({ "approval_state": state.as_str(), "call_outcome": outcome, "released_by_decision": a.consumed_by }),
        );
        commit(tx, vec![e])?;
        Ok(Some(a))
    }

    /// Appends a free-standing approval event (webhook delivery failures, say).
    pub fn record(&self, mut event: AuditEvent) -> Result<(), ApprovalError> {
        event.kind = EventKind::Approval;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        commit(tx, vec![event])
    }

    /// Loads a pending approval for a decision by a person. `Ok(Err(..))` is a refusal; an
    /// approval found expired is marked so in `tx` (the caller commits).
    fn pending_for(
        &self,
        tx: &Transaction<'_>,
        id: &str,
        action: &'static str,
    ) -> Result<Result<Approval, ApprovalError>, ApprovalError> {
        let Some(a) = load(tx, id)? else {
            return Ok(Err(ApprovalError::NotFound(id.to_string())));
        };
        if let Some(expired) = expire_if_due(tx, id)? {
            append_in(tx, vec![expiry_event(&expired)])?;
            return Ok(Err(ApprovalError::Expired {
                id: a.id,
                at: if a.state == ApprovalState::Pending {
                    a.expires_at
                } else {
                    a.grant_expires_at.unwrap_or(a.expires_at)
                },
            }));
        }
        match a.state {
            ApprovalState::Pending => Ok(Ok(a)),
            ApprovalState::Expired => Ok(Err(ApprovalError::Expired {
                id: a.id,
                at: a.decided_at.unwrap_or(a.expires_at),
            })),
            state => Ok(Err(ApprovalError::NotPending {
                id: a.id,
                state,
                by: a.decided_by,
                action,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn commit(tx: Transaction<'_>, events: Vec<AuditEvent>) -> Result<(), ApprovalError> {
    if !events.is_empty() {
        append_in(&tx, events)?;
    }
    tx.commit()?;
    Ok(())
}

/// Moves a pending approval to a final state, conditionally.
fn finish_pending(
    tx: &Transaction<'_>,
    a: &Approval,
    state: ApprovalState,
    by: &str,
    reason: &str,
) -> Result<Approval, ApprovalError> {
    let n = tx.execute(
        "UPDATE approvals SET state = ?2, decided_at = ?3, decided_by = ?4, decision_reason = ?5 WHERE id = ?1 AND state = 'pending'",
        params![a.id, state.as_str(), now(), by, reason],
    )?;
    if n != 1 {
        return Err(ApprovalError::InvalidInput(format!(
            "approval {} changed meanwhile; look again",
            a.id
        )));
    }
    load(tx, &a.id)?.ok_or_else(|| ApprovalError::NotFound(a.id.clone()))
}

/// Expires `id` if it is pending past its expiry, or an unused grant past its window.
fn expire_if_due(tx: &Transaction<'_>, id: &str) -> Result<Option<Approval>, ApprovalError> {
    let now = now();
    let n = tx.execute(
        "UPDATE approvals SET state = 'expired', decided_at = ?2, decided_by = ?3, \
         decision_reason = CASE WHEN state = 'pending' THEN 'nobody decided before it expired' ELSE 'the approved call did not come within the grant window' END \
         WHERE id = ?1 AND ((state = 'pending' AND expires_at <= ?2) OR (state = 'approved' AND consumed_at IS NULL AND grant_expires_at <= ?2))",
        params![id, now, SYSTEM_ACTOR],
    )?;
    if n == 1 { Ok(load(tx, id)?) } else { Ok(None) }
}

fn expiry_event(a: &Approval) -> AuditEvent {
    let mut e = event(a, SYSTEM_ACTOR, "expired");
    e.reason = a.decision_reason.clone();
    e
}

/// An approval transition as an audit event: `principal` is who acted, the requester is in `detail`.
fn event(a: &Approval, actor: &str, outcome: &str) -> AuditEvent {
    let mut e = AuditEvent::new(EventKind::Approval);
    e.decision_id = Some(a.decision_id.clone());
    e.principal = Some(actor.to_string());
    e.client = a.client.clone();
    e.session = a.session.clone();
    e.door = a.door.clone();
    e.server = Some(a.server.clone());
    e.tool = Some(a.tool.clone());
    e.method = Some("tools/call".into());
    e.args_digest = Some(a.args_digest.clone());
    e.risk = Some(a.risk.clone());
    e.policy_version = Some(a.policy_version.clone());
    e.approval_id = Some(a.id.clone());
    e.outcome = Some(outcome.to_string());
    e.detail = Some(serde_json::json!({
        "approval_state": a.state.as_str(),
        "requester": a.principal,
        "actor": actor,
        "approvals": a.progress(),
        "required_roles": a.required_roles,
        "mode": a.mode,
        "expires_at": a.expires_at,
    }));
    e
}

fn load(conn: &Connection, id: &str) -> rusqlite::Result<Option<Approval>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"),
        params![id],
        from_row,
    )
    .optional()
}

pub(crate) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Approval> {
    let list = |i: usize| -> rusqlite::Result<Vec<String>> {
        Ok(serde_json::from_str(&r.get::<_, String>(i)?).unwrap_or_default())
    };
    let state: String = r.get(1)?;
    Ok(Approval {
        id: r.get(0)?,
        // An unknown state (a newer Steward wrote it) reads as expired: never as approvable.
        state: state.parse().unwrap_or(ApprovalState::Expired),
        principal: r.get(2)?,
        server: r.get(3)?,
        tool: r.get(4)?,
        risk: r.get(5)?,
        decision_id: r.get(6)?,
        args: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or(serde_json::Value::Null),
        args_digest: r.get(8)?,
        policy_version: r.get(9)?,
        reasons: list(10)?,
        rule_ids: list(11)?,
        flags: list(12)?,
        required_roles: list(13)?,
        required_count: r.get::<_, i64>(14)?.clamp(1, u32::MAX as i64) as u32,
        mode: r.get(15)?,
        door: r.get(16)?,
        session: r.get(17)?,
        client: r.get(18)?,
        created_at: r.get(19)?,
        expires_at: r.get(20)?,
        grant_window_seconds: r.get::<_, i64>(21)?.max(0) as u64,
        approvals: serde_json::from_str(&r.get::<_, String>(22)?).unwrap_or_default(),
        decided_at: r.get(23)?,
        decided_by: r.get(24)?,
        decision_reason: r.get(25)?,
        grant_expires_at: r.get(26)?,
        consumed_at: r.get(27)?,
        consumed_by: r.get(28)?,
        finished_at: r.get(29)?,
    })
}

/// Whether `actor` may approve `a` now, by the same checks [`ApprovalStore::approve`] makes
/// (state, requester, roles, a second approval by the same person), without changing anything:
/// for screens that offer an approve button only to those who may press it.
pub fn may_approve(a: &Approval, actor: &Actor) -> Result<(), ApprovalError> {
    check_actor(actor)?;
    may_decide(a, "approved")?;
    if same_person(&actor.name, &a.principal) {
        return Err(ApprovalError::SelfApproval {
            id: a.id.clone(),
            approver: actor.name.clone(),
        });
    }
    check_role(a, actor, "approve")?;
    if a.approvals.iter().any(|v| same_person(&v.by, &actor.name)) {
        return Err(ApprovalError::AlreadyApproved {
            id: a.id.clone(),
            approver: actor.name.clone(),
            progress: a.progress(),
            missing: a.required_count.saturating_sub(a.approvals.len() as u32),
        });
    }
    Ok(())
}

/// Whether `actor` may deny `a` now (the requester may withdraw their own call), by the checks
/// [`ApprovalStore::deny`] makes.
pub fn may_deny(a: &Approval, actor: &Actor) -> Result<(), ApprovalError> {
    check_actor(actor)?;
    may_decide(a, "denied")?;
    if same_person(&actor.name, &a.principal) {
        return Ok(());
    }
    check_role(a, actor, "deny")
}

/// A pending approval not past its expiry (by the clock; the store marks it on the next write).
fn may_decide(a: &Approval, action: &'static str) -> Result<(), ApprovalError> {
    match a.state {
        ApprovalState::Pending if a.expires_at.as_str() <= now().as_str() => Err(ApprovalError::Expired {
            id: a.id.clone(),
            at: a.expires_at.clone(),
        }),
        ApprovalState::Pending => Ok(()),
        ApprovalState::Expired => Err(ApprovalError::Expired {
            id: a.id.clone(),
            at: a.decided_at.clone().unwrap_or_else(|| a.expires_at.clone()),
        }),
        state => Err(ApprovalError::NotPending {
            id: a.id.clone(),
            state,
            by: a.decided_by.clone(),
            action,
        }),
    }
}

/// The approver must hold one of the approval's roles; a principal without roles never may.
fn check_role(a: &Approval, actor: &Actor, action: &'static str) -> Result<(), ApprovalError> {
    if actor.may_decide(a) {
        return Ok(());
    }
    Err(ApprovalError::MissingRole {
        id: a.id.clone(),
        approver: actor.name.clone(),
        action,
        required: a.approver_roles(),
        has: actor.roles.clone(),
    })
}

/// Principal ids are compared exactly, except for case: `Bob` may not approve `bob`'s call.
fn same_person(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

fn check_id(id: &str) -> Result<(), ApprovalError> {
    if id.is_empty() || id.len() > MAX_ID_LEN || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApprovalError::InvalidInput(format!(
            "'{}' is not an approval id (they look like apr-0123456789ab)",
            id.chars().take(MAX_ID_LEN).collect::<String>()
        )));
    }
    Ok(())
}

fn check_name(name: &str, what: &str) -> Result<(), ApprovalError> {
    if name.trim().is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(ApprovalError::InvalidInput(format!(
            "{what} must be 1 to {MAX_NAME_LEN} printable characters"
        )));
    }
    Ok(())
}

fn check_actor(actor: &Actor) -> Result<(), ApprovalError> {
    check_name(&actor.name, "the approver's name")?;
    if actor.name.eq_ignore_ascii_case(SYSTEM_ACTOR) {
        return Err(ApprovalError::InvalidInput(format!(
            "'{SYSTEM_ACTOR}' is reserved for Steward's own transitions"
        )));
    }
    if actor.roles.len() > MAX_ROLES {
        return Err(ApprovalError::InvalidInput(format!("at most {MAX_ROLES} roles")));
    }
    Ok(())
}

fn check_reason(reason: &str) -> Result<String, ApprovalError> {
    if reason.len() > MAX_REASON_LEN {
        return Err(ApprovalError::InvalidInput(format!(
            "the reason is longer than {MAX_REASON_LEN} bytes"
        )));
    }
    Ok(reason.chars().map(|c| if c.is_control() { ' ' } else { c }).collect())
}

fn roles_text(roles: &[String]) -> String {
    if roles.is_empty() {
        format!(" with role {APPROVER_ROLE}")
    } else {
        format!(" with role {}", roles.join(" or "))
    }
}

/// `90s`, `10m`, `2h`: how long, for messages.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn now() -> String {
    stamp(Utc::now())
}
