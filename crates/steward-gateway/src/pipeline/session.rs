//! One client session as the relay sees it: the context its messages are decided in, and the id
//! space it owns. Every request Steward forwards carries an id Steward allocated; the client's
//! own id bytes are kept here and restored on the answer. Server→client requests are relayed
//! under ids of Steward's too, and progress tokens are swapped the same way, so no two id spaces
//! ever collide, whoever shares a connection.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use steward_mcp::{IdKey, Method};
use steward_policy::Principal;

use super::ask::Asks;
use super::call::{CallContext, Door, ServerInfo};
use crate::runaway::Permit;

/// What a forwarded request's answer is governed as.
pub(crate) enum Expect {
    /// Not governed: the id is restored and errors are inspected.
    Plain,
    /// A list whose entries are filtered for the principal.
    List { method: Method, ctx: Box<CallContext> },
    /// A decided use: its answer is inspected and its outcome audited.
    Use {
        method: Method,
        target: String,
        decision_id: String,
        ctx: Box<CallContext>,
        era: steward_mcp::Era,
        _permit: Option<Permit>,
    },
    /// Steward's own request (a tools/list it fetches): the answer goes to the relay, not the client.
    Internal(tokio::sync::oneshot::Sender<Vec<u8>>),
}

/// A request forwarded upstream and not yet answered.
pub(crate) struct Pending {
    /// The client's id exactly as it wrote it (JSON text); `None` for Steward's own requests.
    pub client_id: Option<Box<str>>,
    pub key: Option<IdKey>,
    /// Steward's progress token, when the request carried one.
    pub token: Option<u64>,
    pub expect: Expect,
    pub started: Instant,
}

/// Where a client id is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Waiting for a human (or the user) before it goes upstream.
    Held,
    /// Forwarded under this Steward id.
    Forwarded(u64),
}

#[derive(Default)]
pub(crate) struct Table {
    pub pending: HashMap<u64, Pending>,
    by_client: HashMap<IdKey, Slot>,
    /// Server→client requests relayed to the client: Steward's id → the server's id (JSON text).
    pub server_requests: HashMap<u64, Box<str>>,
    /// Steward's progress token → the client's token (JSON text).
    pub tokens: HashMap<u64, Box<str>>,
}

impl Table {
    pub fn in_use(&self, key: &IdKey) -> bool {
        self.by_client.contains_key(key)
    }

    pub fn hold(&mut self, key: IdKey) {
        self.by_client.insert(key, Slot::Held);
    }

    pub fn release(&mut self, key: &IdKey) {
        if self.by_client.get(key) == Some(&Slot::Held) {
            self.by_client.remove(key);
        }
    }

    pub fn is_held(&self, key: &IdKey) -> bool {
        self.by_client.get(key) == Some(&Slot::Held)
    }

    pub fn forwarded(&self, key: &IdKey) -> Option<u64> {
        match self.by_client.get(key) {
            Some(Slot::Forwarded(id)) => Some(*id),
            _ => None,
        }
    }

    pub fn insert(&mut self, steward_id: u64, pending: Pending, token: Option<(u64, Box<str>)>) {
        if let Some(key) = &pending.key {
            self.by_client.insert(key.clone(), Slot::Forwarded(steward_id));
        }
        if let Some((t, client)) = token {
            self.tokens.insert(t, client);
        }
        self.pending.insert(steward_id, pending);
    }

    pub fn take(&mut self, steward_id: u64) -> Option<Pending> {
        let p = self.pending.remove(&steward_id)?;
        if let Some(key) = &p.key
            && self.by_client.get(key) == Some(&Slot::Forwarded(steward_id))
        {
            self.by_client.remove(key);
        }
        if let Some(t) = p.token {
            self.tokens.remove(&t);
        }
        Some(p)
    }
}

/// A client session: one stdio client, one legacy HTTP session, one federated session, or one
/// stateless request.
pub struct Session {
    base: Mutex<CallContext>,
    pub(crate) table: Mutex<Table>,
    /// Steward's own questions to the client (`effect: ask`), and whether it can be asked.
    pub(crate) asks: Asks,
}

impl Session {
    /// A session of `door` on `server`; `label` is what audit rows call it (never a secret).
    pub fn new(server: impl Into<String>, door: Door, label: impl Into<String>) -> Session {
        Session {
            base: Mutex::new(CallContext::new(Principal::default(), server, door, label)),
            table: Mutex::new(Table::default()),
            asks: Asks::new(),
        }
    }

    pub fn with_server_info(self, info: ServerInfo) -> Session {
        self.base.lock().unwrap_or_else(|e| e.into_inner()).server_info = info;
        self
    }

    /// The context a message from `principal` is decided in: every request carries its own
    /// credential, so the principal comes with the message, not with the session.
    pub fn ctx_for(&self, principal: &Principal) -> CallContext {
        let base = self.base.lock().unwrap_or_else(|e| e.into_inner());
        CallContext {
            principal: principal.clone(),
            server: base.server.clone(),
            server_info: base.server_info.clone(),
            door: base.door,
            session: base.session.clone(),
            client_name: base.client_name.clone(),
            client_version: base.client_version.clone(),
        }
    }

    pub fn server(&self) -> String {
        self.base.lock().unwrap_or_else(|e| e.into_inner()).server.clone()
    }

    pub fn door(&self) -> Door {
        self.base.lock().unwrap_or_else(|e| e.into_inner()).door
    }

    /// Remembers who the client says it is (`initialize`, or a 2026-07-28 request's `_meta`).
    pub fn note_client(&self, name: String, version: Option<String>) {
        let mut base = self.base.lock().unwrap_or_else(|e| e.into_inner());
        base.client_name = Some(name);
        base.client_version = version;
    }

    /// Whether the client can show Steward's confirmation form (it said so at `initialize`).
    pub fn can_elicit(&self) -> bool {
        self.asks.can_elicit()
    }

    /// How many requests wait for an upstream answer.
    pub fn in_flight(&self) -> usize {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).pending.len()
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}
