//! Typed outcomes: what the relay tells a door to do with a message, and what a decision came to.
//! Doors map these onto their transport and nothing else; no door reads a message's text to
//! learn what happened.

use serde_json::Value;
use steward_mcp::{Era, IdKey, Method};
use steward_policy::Decision;

use super::approval::ApprovalTicket;
use super::call::CallContext;

/// What a door does with a message from its client.
pub enum Action {
    /// Send these bytes upstream. For a request, the answer comes back through
    /// [`super::Relay::from_upstream`] under `steward_id`.
    Forward(Forward),
    /// Answer the client with these bytes; nothing goes upstream.
    Answer(Vec<u8>),
    /// Keep the client waiting for a human's decision: [`super::Relay::release`] says what next.
    Hold(Box<Held>),
    /// Ask the user to confirm the call: [`super::Relay::ask`] says what next.
    Ask(Box<Held>),
    /// A protocol error. HTTP doors answer `status` with `bytes`; a stdio door writes `bytes`
    /// when the message was a request and drops it otherwise.
    Reject {
        status: u16,
        bytes: Vec<u8>,
        was_request: bool,
    },
    /// The client cancelled a request Steward is holding: stop waiting for it.
    Cancel(IdKey),
    /// Nothing to send (an answer to Steward's own question, a dropped message).
    Nothing,
}

/// A message to send upstream, with the headers an HTTP upstream gets (derived from the body,
/// never copied from the client).
#[derive(Debug, Clone)]
pub struct Forward {
    pub bytes: Vec<u8>,
    pub steward_id: Option<u64>,
    pub headers: UpstreamHeaders,
}

/// `Mcp-Method`, `Mcp-Name` and `MCP-Protocol-Version` for an HTTP upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamHeaders {
    pub method: Option<String>,
    /// Already encoded for a header (the 2026-07-28 base64 form where needed).
    pub name: Option<String>,
    pub protocol_version: Option<String>,
}

/// What a door does with a message from its upstream.
#[derive(Debug)]
pub enum Delivery {
    /// Send to the client (a notification, a server→client request, a progress update).
    Client(Vec<u8>),
    /// Send to the client: the answer to the request Steward forwarded as `steward_id`.
    Answer { bytes: Vec<u8>, steward_id: u64 },
    /// Nothing reaches the client (an answer to no pending request, Steward's own request).
    Drop,
}

/// How a decided use came out, typed.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Run it. `approval` names the grant it runs on, when a human approved it.
    Allowed { approval: Option<String> },
    /// Refused; `message` is what the model reads.
    Denied { kind: DenyKind, message: String },
    /// Needs a human's approval, which is pending.
    Pending { ticket: ApprovalTicket, message: String },
    /// Needs the user's confirmation (`effect: ask`) at a door that can ask.
    Ask,
}

/// Why a use was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyKind {
    /// The policy denied it.
    Policy,
    /// A defence refused it before the policy's verdict counted: canary, blocked or drifted
    /// tool, a tool the server does not list, breaker, budget.
    Defence,
    /// A rate or concurrency limit.
    Limit,
    /// Steward could not decide or record it (audit log, approval store, policy error): fail
    /// closed.
    FailClosed,
}

impl Outcome {
    /// The effect that is enforced, as audit rows and the decision API name it.
    pub fn enforced(&self) -> &'static str {
        match self {
            Outcome::Allowed { .. } => "allow",
            Outcome::Denied { .. } => "deny",
            Outcome::Pending { .. } => "approve",
            Outcome::Ask => "ask",
        }
    }
}

/// A decided use of a tool, resource or prompt.
#[derive(Debug, Clone)]
pub struct Decided {
    pub decision_id: String,
    pub decision: Decision,
    pub outcome: Outcome,
}

/// A governed use: the method, what it names and what it passes.
#[derive(Debug, Clone)]
pub struct Use {
    pub method: Method,
    /// Tool name, resource URI or prompt name.
    pub target: String,
    pub args: Value,
}

/// A request held for a human (or the user) before it may be forwarded.
pub struct Held {
    pub(crate) ctx: CallContext,
    pub(crate) call: Use,
    pub(crate) decided: Decided,
    pub(crate) key: IdKey,
    pub(crate) era: Era,
    /// The request as the client sent it; it is forwarded (under Steward's id) once released.
    pub(crate) bytes: Vec<u8>,
    pub(crate) headers: UpstreamHeaders,
    pub(crate) permit: Option<crate::runaway::Permit>,
    /// The request's progress token, for keeping the client informed while it waits.
    pub progress_token: Option<Value>,
}

impl Held {
    /// The approval the request waits for, when it waits for one.
    pub fn approval_id(&self) -> Option<&str> {
        match &self.decided.outcome {
            Outcome::Pending { ticket, .. } => Some(&ticket.id),
            _ => None,
        }
    }

    pub fn decision_id(&self) -> &str {
        &self.decided.decision_id
    }

    pub fn key(&self) -> &IdKey {
        &self.key
    }

    pub fn target(&self) -> String {
        self.ctx.target(&self.call.target)
    }
}
