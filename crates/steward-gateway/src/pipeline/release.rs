//! What happens to a held request: a human approves or denies it (hold mode), or the user
//! confirms it (`effect: ask`). Either way the door gets an [`Action`] back.

use std::time::Duration;

use serde_json::json;
use steward_mcp::Message;
use steward_mcp::jsonrpc::{ErrorCode, error_response};
use steward_store::EventKind;

use super::Relay;
use super::approval::{Confirmation, HoldEnd, Progress};
use super::messages;
use super::request::refusal;
use super::session::{Expect, Session};
use super::verdict::{Action, Held, Outcome};

/// Whether a released request was forwarded (for doors that count it).
pub type Released = Action;

impl Relay {
    /// Waits for the human decision on a held request. Progress notifications go out through
    /// `progress` every ~10 s; without it (the client sent no progress token, and would time out
    /// first) the relay stops waiting after the policy's `approvals.hold_without_progress` and
    /// answers queue-style: the approval stays pending.
    pub async fn release(&self, s: &Session, held: Held, progress: Option<Progress>) -> Action {
        let target = held.target();
        let (Some(approvals), Outcome::Pending { ticket, .. }) = (&self.approvals, &held.decided.outcome) else {
            s.lock().release(&held.key);
            return self.held_refusal(&held, "Steward could not hold the call: approvals are unavailable");
        };
        let give_up_after: Option<Duration> = progress.is_none().then_some(ticket.hold_without_progress);
        let end = approvals
            .hold(&target, ticket, &held.decided.decision_id, progress, give_up_after)
            .await;
        s.lock().release(&held.key);
        match end {
            HoldEnd::Approved => self.forward_held(s, held),
            HoldEnd::Ended(message) => self.held_refusal(&held, &message),
            HoldEnd::StillPending(waited) => {
                let message = messages::still_pending(&target, &ticket.id, waited, &held.decided.decision_id);
                self.held_refusal(&held, &message)
            }
        }
    }

    /// Asks the user to confirm an `ask` call through the client's elicitation (`send` writes
    /// one message to the client), records the answer, and forwards the call if confirmed.
    pub async fn ask(&self, s: &Session, held: Held, send: &(dyn Fn(Vec<u8>) -> bool + Send + Sync)) -> Action {
        let target = held.target();
        let timeout = self.policy().approval_settings().hold_timeout;
        let answer = s
            .asks
            .ask(send, &target, &held.call.args, &held.decided.decision, timeout)
            .await;
        let mut event = self.event(
            EventKind::Approval,
            &held.ctx,
            &held.decided.decision_id,
            Some(&held.call.target),
            held.call.method.as_str(),
        );
        event.risk = Some(held.decided.decision.risk.as_str().to_string());
        event.policy_version = Some(held.decided.decision.policy_version.clone());
        event.outcome = Some(answer.outcome().to_string());
        event.reason = Some(answer.describe(&held.ctx.principal.id));
        event.detail = Some(json!({ "via": "elicitation", "answer": answer.outcome() }));
        let committed = match &self.audit {
            Ok(log) => log.append(event).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        };
        s.lock().release(&held.key);
        match (committed, answer) {
            (Ok(_), Confirmation::Accepted) => self.forward_held(s, held),
            (Err(e), _) => {
                let message = messages::audit_unavailable(&target, &e, &held.decided.decision_id);
                self.held_refusal(&held, &message)
            }
            (Ok(_), answer) => {
                let message = messages::not_confirmed(&target, &answer.describe("the user"), &held.decided.decision_id);
                self.held_refusal(&held, &message)
            }
        }
    }

    fn forward_held(&self, s: &Session, held: Held) -> Action {
        let Ok(msg) = Message::parse(&held.bytes) else {
            return Action::Answer(error_response(
                None,
                ErrorCode::InternalError,
                "held request unreadable",
                None,
            ));
        };
        let expect = Expect::Use {
            method: held.call.method,
            target: held.call.target.clone(),
            decision_id: held.decided.decision_id.clone(),
            ctx: Box::new(held.ctx.clone()),
            era: held.era,
            _permit: held.permit,
        };
        self.forward(s, &msg, &held.bytes, held.key.clone(), expect, held.headers.clone())
    }

    fn held_refusal(&self, held: &Held, message: &str) -> Action {
        let client_id = Message::parse(&held.bytes)
            .ok()
            .and_then(|m| m.raw_id().map(str::to_string))
            .unwrap_or_else(|| "null".into());
        Action::Answer(refusal(
            held.call.method,
            &client_id,
            message,
            &held.decided.decision_id,
            held.era,
        ))
    }
}
