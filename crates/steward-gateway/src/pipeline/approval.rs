//! The approval flow: what happens to a call the policy says needs a human's approval.
//!
//! A call whose exact arguments were approved before (and not yet used) runs once. Otherwise an
//! approval is recorded (or the pending one for the same call reused) and the door either holds
//! the request until an approver decides ([`super::Relay::release`]), or answers at once with the
//! approval id (queue mode, and doors that cannot hold). Approvers act out of band: the CLI, the
//! HTTP API, a webhook link — never the requesting client.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use steward_policy::{ApprovalMode, Decision, Policy, digest};
use steward_scan::redact;
use steward_store::{
    Actor, Approval, ApprovalError, ApprovalState, ApprovalStore, Approved, NewApproval, Reusable, StoreError,
    human_duration,
};

use super::call::CallContext;
use super::messages;
use super::verdict::{DenyKind, Outcome};
use crate::notify::Notifier;

/// How often a held call looks at its approval (approvals made in this process wake it at once).
const POLL: Duration = Duration::from_millis(250);
/// How often a held call with a progress token tells the client it is still waiting.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// A pending approval a call waits for.
#[derive(Debug, Clone)]
pub struct ApprovalTicket {
    pub id: String,
    /// Hold (the client waits) or queue (the client gets the id and retries after approval).
    pub mode: ApprovalMode,
    pub hold_timeout: Duration,
    /// How long a held call whose client sent no progress token waits before it is answered
    /// queue-style (`approvals.hold_without_progress`).
    pub hold_without_progress: Duration,
}

/// How a hold ended.
pub(crate) enum HoldEnd {
    /// Approved and taken: forward the call.
    Approved,
    /// Denied, expired, timed out or withdrawn: the model reads this.
    Ended(String),
    /// The door stopped waiting after this long; the approval is still pending.
    StillPending(Duration),
}

/// How an approval-needing call is approved: mode, time-outs and approvers, from the decision's
/// `approvers` and the policy's `approvals:` settings.
#[derive(Debug, Clone)]
pub(crate) struct Terms {
    pub mode: ApprovalMode,
    pub hold_timeout: Duration,
    pub hold_without_progress: Duration,
    pub grant_window: Duration,
    pub expiry: Duration,
    pub roles: Vec<String>,
    pub count: u32,
}

impl Terms {
    pub fn of(decision: &Decision, policy: &Policy) -> Terms {
        let s = policy.approval_settings();
        let a = decision.approvers.as_ref();
        // Approvers that name no roles get the policy's default ones (never empty): an approval
        // anyone authenticated could give would be no control.
        let roles = match a.map(|a| &a.roles) {
            Some(roles) if !roles.is_empty() => roles.clone(),
            _ => s.default_approver_roles.clone(),
        };
        Terms {
            mode: a.and_then(|a| a.mode).unwrap_or(s.mode),
            hold_timeout: a.and_then(|a| a.hold_timeout).unwrap_or(s.hold_timeout),
            hold_without_progress: s.hold_without_progress,
            grant_window: s.grant_window,
            expiry: s.expiry,
            roles,
            count: a.map(|a| a.count.max(1)).unwrap_or(1),
        }
    }
}

/// What the approval flow found for a new call, before its decision is recorded.
pub(crate) enum Plan {
    Grant(Approval),
    Pending(Approval),
    New(String),
}

impl Plan {
    pub fn id(&self) -> &str {
        match self {
            Plan::Grant(a) | Plan::Pending(a) => &a.id,
            Plan::New(id) => id,
        }
    }

    pub fn detail(&self) -> Value {
        match self {
            Plan::Grant(a) => {
                json!({ "id": a.id, "use": "grant", "approved_by": a.approvals.iter().map(|v| &v.by).collect::<Vec<_>>() })
            }
            Plan::Pending(a) => json!({ "id": a.id, "use": "pending" }),
            Plan::New(id) => json!({ "id": id, "use": "new" }),
        }
    }
}

/// Sends `notifications/progress` for a held request that carried a progress token.
pub struct Progress {
    token: Value,
    send: Box<dyn Fn(Vec<u8>) -> bool + Send + Sync>,
    count: u64,
}

impl Progress {
    /// `token` is the request's `params._meta.progressToken`; `send` queues one JSON-RPC message
    /// for the client (the proxy's client writer, an SSE stream) and says whether it could.
    pub fn new(token: Value, send: impl Fn(Vec<u8>) -> bool + Send + Sync + 'static) -> Progress {
        Progress {
            token,
            send: Box::new(send),
            count: 0,
        }
    }

    /// The progress token of a request's params, if it has one (a string or a number).
    pub fn token(params: Option<&serde_json::value::RawValue>) -> Option<Value> {
        let meta = steward_mcp::era::request_meta(params)?;
        meta.get("progressToken")
            .filter(|t| t.is_string() || t.is_number())
            .cloned()
    }

    fn tick(&mut self, message: &str) -> bool {
        self.count += 1;
        let note = json!({
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": { "progressToken": self.token, "progress": self.count, "message": message },
        });
        (self.send)(note.to_string().into_bytes())
    }
}

/// Ids of the requests Steward itself sends to a client start with this.
pub const STEWARD_REQUEST_PREFIX: &str = "steward-";

/// The user's answer to Steward's `elicitation/create` for an `ask` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    Accepted,
    /// `decline` or `cancel`, or accepted without confirming.
    Declined(String),
    /// No usable answer: an error, a time-out, the client went away.
    Unanswered(String),
}

impl Confirmation {
    /// Reads a client's JSON-RPC response to an elicitation request: confirmed only when the
    /// action is `accept` and the `confirm` field is `true`.
    pub fn from_response(response: &Value) -> Confirmation {
        if let Some(e) = response.get("error") {
            let message = e.get("message").and_then(Value::as_str).unwrap_or("error");
            return Confirmation::Unanswered(format!(
                "the client answered with an error: {}",
                message.chars().take(200).collect::<String>()
            ));
        }
        let result = response.get("result").cloned().unwrap_or(Value::Null);
        match result.get("action").and_then(Value::as_str) {
            Some("accept") if result.get("content").and_then(|c| c.get("confirm")) == Some(&Value::Bool(true)) => {
                Confirmation::Accepted
            }
            Some("accept") => Confirmation::Declined("accept without confirming".into()),
            Some(a @ ("decline" | "cancel")) => Confirmation::Declined(a.to_string()),
            _ => Confirmation::Unanswered("the client's answer has no valid action".into()),
        }
    }

    /// The audit outcome: `confirmed`, `declined` or `unanswered`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Confirmation::Accepted => "confirmed",
            Confirmation::Declined(_) => "declined",
            Confirmation::Unanswered(_) => "unanswered",
        }
    }

    pub fn describe(&self, who: &str) -> String {
        match self {
            Confirmation::Accepted => format!("{who} confirmed the call"),
            Confirmation::Declined(how) => format!("{who} did not confirm the call ({how})"),
            Confirmation::Unanswered(why) => format!("{who} was asked to confirm the call and did not answer ({why})"),
        }
    }
}

/// Steward's `elicitation/create` request asking the user to confirm an `ask` call.
pub fn elicitation_request(id: &str, target: &str, args: &Value, d: &Decision) -> Vec<u8> {
    let shown = redact::redact_args(args).to_string();
    let shown = if shown.chars().count() > 500 {
        format!("{}…", shown.chars().take(500).collect::<String>())
    } else {
        shown
    };
    let message = format!(
        "Steward asks you to confirm a tool call: {target} with {shown}. Why: {}. Risk {}.",
        redact::redact_text(&d.reason()),
        d.risk
    );
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": message,
            "requestedSchema": {
                "type": "object",
                "properties": { "confirm": { "type": "boolean", "title": "Run this call?", "default": false } },
                "required": ["confirm"],
            },
        },
    })
    .to_string()
    .into_bytes()
}

/// The approval flow's state: the approvals table, webhooks, and held calls' wake-ups.
pub struct Approvals {
    store: ApprovalStore,
    notifier: Notifier,
    changed: tokio::sync::Notify,
    /// Released approved calls still running: decision id → approval id.
    running: Mutex<HashMap<String, String>>,
    /// Store writes started without waiting (how released calls ended), for [`Approvals::flush`].
    writes: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Counts the transitions this process makes (`steward_approvals_total`).
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

impl Approvals {
    /// Opens the approvals table in the audit database at `path`.
    pub fn open(path: &Path, notifier: Notifier) -> Result<Approvals, StoreError> {
        Ok(Approvals::new(ApprovalStore::open_sqlite(path)?, notifier))
    }

    pub fn new(store: ApprovalStore, notifier: Notifier) -> Approvals {
        Approvals {
            store,
            notifier,
            changed: tokio::sync::Notify::new(),
            running: Mutex::new(HashMap::new()),
            writes: Mutex::new(Vec::new()),
            metrics: None,
        }
    }

    /// Counts transitions in `metrics` from now on.
    pub fn counted_in(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Approvals {
        self.metrics = Some(metrics);
        self
    }

    fn count(&self, state: &str) {
        if let Some(m) = &self.metrics {
            m.approval(state);
        }
    }

    /// Waits (up to 10 s) for the store writes started without waiting: call before exiting.
    pub async fn flush(&self) {
        let writes: Vec<_> = std::mem::take(&mut *self.writes.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = tokio::time::timeout(Duration::from_secs(10), futures_util::future::join_all(writes)).await;
    }

    pub fn store(&self) -> &ApprovalStore {
        &self.store
    }

    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// Records an approval (the HTTP API) and wakes calls held in this process.
    pub async fn approve(&self, id: &str, actor: Actor, reason: Option<String>) -> Result<Approved, ApprovalError> {
        let (store, id) = (self.store.clone(), id.to_string());
        let r = blocking(move || store.approve(&id, &actor, reason.as_deref())).await;
        self.changed.notify_waiters();
        if let Ok(done) = &r
            && done.complete
        {
            self.count("approved");
        }
        r
    }

    /// Records a denial (the HTTP API) and wakes calls held in this process.
    pub async fn deny(&self, id: &str, actor: Actor, reason: String) -> Result<Approval, ApprovalError> {
        let (store, id) = (self.store.clone(), id.to_string());
        let r = blocking(move || store.deny(&id, &actor, &reason)).await;
        self.changed.notify_waiters();
        if let Ok(a) = &r {
            self.count(a.state.as_str());
        }
        r
    }

    pub async fn get(&self, id: &str) -> Result<Option<Approval>, ApprovalError> {
        let (store, id) = (self.store.clone(), id.to_string());
        blocking(move || store.get(&id)).await
    }

    /// Approvals newest first, after marking what has expired.
    pub async fn list(&self, state: Option<ApprovalState>, limit: usize) -> Result<Vec<Approval>, ApprovalError> {
        let store = self.store.clone();
        let (expired, listed) = blocking(move || {
            let expired = store.expire_due()?;
            Ok((expired.len(), store.list(state, limit)?))
        })
        .await?;
        for _ in 0..expired {
            self.count("expired");
        }
        Ok(listed)
    }

    /// Looks for a grant or a pending approval of exactly this call.
    pub(crate) async fn plan(
        &self,
        ctx: &CallContext,
        tool: &str,
        args_digest: &str,
        policy_version: &str,
    ) -> Result<Plan, String> {
        let store = self.store.clone();
        let (p, s, t, d, v) = (
            ctx.principal.id.clone(),
            ctx.server.clone(),
            tool.to_string(),
            args_digest.to_string(),
            policy_version.to_string(),
        );
        match blocking(move || store.reusable(&p, &s, &t, &d, &v)).await {
            Ok(Reusable::Grant(a)) => Ok(Plan::Grant(a)),
            Ok(Reusable::Pending(a)) => Ok(Plan::Pending(a)),
            Ok(Reusable::None) => Ok(Plan::New(ApprovalStore::new_id())),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Carries out a plan once the decision is recorded: uses a grant (when the door enforces;
    /// the decision API only reports it), or records (or reuses) the pending approval and says
    /// how to get it approved.
    pub(crate) async fn settle(
        &self,
        plan: Plan,
        ctx: &CallContext,
        call: &super::verdict::Use,
        decided: (&str, &Decision),
        terms: Terms,
    ) -> Outcome {
        let (decision_id, decision) = decided;
        let (tool, args) = (call.target.as_str(), &call.args);
        let target = ctx.target(tool);
        let plan = match plan {
            Plan::Grant(a) if !ctx.door.enforces() => return Outcome::Allowed { approval: Some(a.id) },
            Plan::Grant(a) => match self.consume(&a.id, decision_id).await {
                Ok(Some(a)) => {
                    tracing::info!(approval = %a.id, %target, "approved call released (grant)");
                    return Outcome::Allowed { approval: Some(a.id) };
                }
                // Used or expired a moment ago: this call needs its own approval.
                Ok(None) => Plan::New(ApprovalStore::new_id()),
                Err(e) => return unavailable(&target, decision_id, &e.to_string()),
            },
            other => other,
        };
        let approval = match plan {
            Plan::Pending(a) | Plan::Grant(a) => a,
            Plan::New(id) => {
                let new = NewApproval {
                    id,
                    decision_id: decision_id.to_string(),
                    principal: ctx.principal.id.clone(),
                    server: ctx.server.clone(),
                    tool: tool.to_string(),
                    args: redact::redact_args(args),
                    args_digest: digest::args_digest(args),
                    policy_version: decision.policy_version.clone(),
                    risk: decision.risk.as_str().to_string(),
                    reasons: decision.reasons.iter().map(|r| redact::redact_text(r)).collect(),
                    rule_ids: decision.rule_ids.clone(),
                    flags: decision.flags.clone(),
                    required_roles: terms.roles.clone(),
                    required_count: terms.count,
                    mode: terms.mode.as_str().to_string(),
                    expiry: terms.expiry,
                    grant_window: terms.grant_window,
                    door: Some(ctx.door.as_str().to_string()),
                    session: Some(ctx.session.clone()),
                    client: ctx.client_name.clone(),
                };
                let store = self.store.clone();
                match blocking(move || store.create(&new)).await {
                    Ok(a) => {
                        self.count("pending");
                        tracing::info!(approval = %a.id, %target, risk = %a.risk, mode = %a.mode, "approval requested");
                        self.notifier.pending(&a, &self.store);
                        a
                    }
                    Err(e) => return unavailable(&target, decision_id, &e.to_string()),
                }
            }
        };
        // A door that cannot keep its client waiting answers queue-style.
        let mode = if approval.mode == "queue" || !ctx.door.can_hold() {
            ApprovalMode::Queue
        } else {
            ApprovalMode::Hold
        };
        let message = messages::pending(
            &target,
            &approval,
            decision,
            decision_id,
            &self.notifier.link(&approval.id),
        );
        Outcome::Pending {
            ticket: ApprovalTicket {
                id: approval.id,
                mode,
                hold_timeout: terms.hold_timeout,
                hold_without_progress: terms.hold_without_progress,
            },
            message,
        }
    }

    /// Waits for a pending approval's outcome, up to the hold time-out (a time-out denies) or
    /// `give_up_after` (the approval stays pending). Dropping the future (the client went away)
    /// leaves the approval pending: approved later, it is a grant for one identical retry.
    pub(crate) async fn hold(
        &self,
        target: &str,
        ticket: &ApprovalTicket,
        decision_id: &str,
        mut progress: Option<Progress>,
        give_up_after: Option<Duration>,
    ) -> HoldEnd {
        let started = Instant::now();
        let deadline = started + ticket.hold_timeout;
        let give_up = give_up_after.map(|d| started + d);
        let mut next_progress = started;
        loop {
            let wake = self.changed.notified();
            let now = Instant::now();
            match self.get(&ticket.id).await {
                Ok(Some(a)) => match a.state {
                    ApprovalState::Pending => {}
                    ApprovalState::Approved if !a.consumed() => match self.consume(&a.id, decision_id).await {
                        Ok(Some(a)) => {
                            tracing::info!(approval = %a.id, %target, by = ?a.decided_by, "held call approved; forwarding");
                            return HoldEnd::Approved;
                        }
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::warn!(approval = %ticket.id, error = %e, "cannot release an approved call; retrying")
                        }
                    },
                    _ => return HoldEnd::Ended(messages::held_ended(target, &a, decision_id)),
                },
                Ok(None) => return HoldEnd::Ended(messages::approval_gone(target, &ticket.id, decision_id)),
                Err(e) => tracing::warn!(approval = %ticket.id, error = %e, "cannot read an approval; retrying"),
            }
            if now >= deadline {
                let store = self.store.clone();
                let (id, waited) = (ticket.id.clone(), ticket.hold_timeout);
                match blocking(move || store.time_out(&id, waited)).await {
                    Ok(Some(a)) => {
                        self.count("timed_out");
                        tracing::info!(approval = %a.id, %target, "approval timed out; denied");
                        return HoldEnd::Ended(messages::held_ended(target, &a, decision_id));
                    }
                    // Decided meanwhile: look again.
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::error!(approval = %ticket.id, error = %e, "cannot record an approval time-out");
                        return HoldEnd::Ended(messages::hold_timed_out(
                            target,
                            &ticket.id,
                            ticket.hold_timeout,
                            decision_id,
                        ));
                    }
                }
            }
            if let Some(at) = give_up
                && now >= at
            {
                return HoldEnd::StillPending(now - started);
            }
            if let Some(p) = progress.as_mut()
                && now >= next_progress
            {
                let left = deadline.saturating_duration_since(now);
                p.tick(&format!(
                    "Waiting for a human to approve {target} (approval {}); {} left",
                    ticket.id,
                    human_duration(Duration::from_secs(left.as_secs()))
                ));
                next_progress = now + PROGRESS_EVERY;
            }
            let mut pause = POLL.min(deadline.saturating_duration_since(Instant::now()));
            if let Some(at) = give_up {
                pause = pause.min(at.saturating_duration_since(Instant::now()));
            }
            tokio::select! {
                _ = wake => {}
                _ = tokio::time::sleep(pause.max(Duration::from_millis(10))) => {}
            }
        }
    }

    /// The approval a released call runs on, if `decision_id` is one; forgets it.
    pub(crate) fn take_running(&self, decision_id: &str) -> Option<String> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(decision_id)
    }

    /// Records how a released call ended (`executed` or `failed`). Never blocks the caller.
    pub(crate) fn finished(&self, approval_id: String, outcome: &str) {
        let ok = outcome == "ok";
        self.count(if ok { "executed" } else { "failed" });
        let (store, outcome) = (self.store.clone(), outcome.to_string());
        let work = move || {
            if let Err(e) = store.finish(&approval_id, ok, &outcome) {
                tracing::error!(approval = %approval_id, error = %e, "cannot record how an approved call ended");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let handle = rt.spawn_blocking(work);
                let mut writes = self.writes.lock().unwrap_or_else(|e| e.into_inner());
                writes.retain(|h| !h.is_finished());
                writes.push(handle);
            }
            Err(_) => work(),
        }
    }

    async fn consume(&self, id: &str, decision_id: &str) -> Result<Option<Approval>, ApprovalError> {
        let (store, id, d) = (self.store.clone(), id.to_string(), decision_id.to_string());
        let r = blocking(move || store.consume(&id, &d)).await;
        if let Ok(Some(a)) = &r {
            self.running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(decision_id.to_string(), a.id.clone());
        }
        r
    }
}

/// Runs store work off the async threads (SQLite may wait on another process's lock).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApprovalError> + Send + 'static,
) -> Result<T, ApprovalError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(r) => r,
        Err(e) => Err(ApprovalError::InvalidInput(format!("approval store task failed: {e}"))),
    }
}

fn unavailable(target: &str, decision_id: &str, error: &str) -> Outcome {
    tracing::error!(%error, %target, "approval store unavailable; refusing the call");
    Outcome::Denied {
        kind: DenyKind::FailClosed,
        message: messages::approvals_unavailable(target, error, decision_id),
    }
}
