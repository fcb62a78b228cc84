//! The relay: the one place where a message is governed, for every door.
//!
//! ```text
//! door ──► Relay::request(session, principal, bytes)  → Action   (request.rs)
//!            classify (steward_mcp::Method); ungoverned → Forward, byte for byte but the id
//!            governed use → limits, what is known of the tool (catalog.rs), Relay::decide
//!              (decide.rs: policy, defences, audit row committed, approvals) → Forward |
//!              Answer (refusal) | Hold | Ask
//!            governed list → Forward, answer filtered on the way back
//!      ◄── Relay::from_upstream(session, bytes)       → Delivery (response.rs)
//!            Steward's id → the client's id bytes restored; answers inspected (inspect.rs):
//!            lists filtered and scanned, results/contents/messages/errors redacted, outcome
//!            audited; anything that cannot be inspected is withheld
//! ```
//! Doors map an [`Action`] or a [`Delivery`] onto their transport and nothing else.

mod approval;
mod ask;
mod call;
mod catalog;
mod decide;
pub mod headers;
mod inspect;
mod link;
pub mod messages;
mod release;
mod request;
mod response;
mod session;
mod verdict;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::json;
use steward_policy::Policy;
use steward_store::{AuditEvent, AuditLog, EventKind, PinStore};

pub use approval::{
    ApprovalTicket, Approvals, Confirmation, PROGRESS_EVERY, Progress, STEWARD_REQUEST_PREFIX, elicitation_request,
};
pub use call::{CallContext, Door, ServerInfo};
pub use catalog::{Catalog, ToolState};
pub use headers::ClientHeaders;
pub use link::{ConnLink, UpstreamLink};
pub use release::Released;
pub use request::Ingress;
pub use response::Abandon;
pub use session::Session;
pub use verdict::{Action, Decided, Delivery, DenyKind, Forward, Held, Outcome, UpstreamHeaders, Use};

use crate::metrics::Metrics;
use crate::runaway::{Limiter, Runaway};

/// The shared relay: the policy in force, the audit log, what is known of each server's tools,
/// the runaway counters and limits, and the approval flow.
pub struct Relay {
    policy: RwLock<Arc<Policy>>,
    audit: Result<AuditLog, String>,
    catalog: Arc<Catalog>,
    runaway: Runaway,
    limiter: Limiter,
    approvals: Option<Arc<Approvals>>,
    metrics: Arc<Metrics>,
    /// Ids and progress tokens Steward gives what it forwards: unique for the process.
    next_id: AtomicU64,
    /// Which server listed each resource URI (before filtering), for routing by URI.
    resources: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// What a relay is built from.
pub struct RelayParts {
    pub policy: Arc<Policy>,
    /// The opened audit log, or why it could not be opened: then every governed call is refused
    /// (fail closed) with that reason.
    pub audit: Result<AuditLog, String>,
    pub pins: Option<PinStore>,
    pub approvals: Option<Approvals>,
    pub limits: crate::config::LimitsConfig,
    pub metrics: Arc<Metrics>,
}

impl RelayParts {
    /// Everything in the SQLite store at `db`: audit log, pins and approvals. A part that cannot
    /// be opened is logged; the relay then refuses what needs it.
    pub fn sqlite(policy: Arc<Policy>, db: &Path, notifier: crate::notify::Notifier) -> RelayParts {
        let audit = AuditLog::open_sqlite(db).map_err(|e| {
            tracing::error!("{e}; every governed call will be refused until this is fixed");
            e.to_string()
        });
        let pins = match PinStore::open_sqlite(db) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(error = %e, "tool pins unavailable; drift is not detected");
                None
            }
        };
        let approvals = match Approvals::open(db, notifier) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::error!("approvals unavailable ({e}); calls that need approval will be refused");
                None
            }
        };
        RelayParts {
            policy,
            audit,
            pins,
            approvals,
            limits: Default::default(),
            metrics: Arc::new(Metrics::default()),
        }
    }
}

impl Relay {
    pub fn new(parts: RelayParts) -> Relay {
        Relay {
            policy: RwLock::new(parts.policy),
            audit: parts.audit,
            catalog: Arc::new(Catalog::new(parts.pins)),
            runaway: Runaway::default(),
            limiter: Limiter::new(parts.limits),
            approvals: parts.approvals.map(|a| Arc::new(a.counted_in(parts.metrics.clone()))),
            metrics: parts.metrics,
            next_id: AtomicU64::new(1),
            resources: Default::default(),
        }
    }

    pub fn policy(&self) -> Arc<Policy> {
        self.policy.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts a new policy in force (a hot reload) and records it. Calls already being decided
    /// finish with the policy they started with.
    pub fn replace_policy(&self, new: Arc<Policy>) {
        let old = {
            let mut slot = self.policy.write().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *slot, new.clone())
        };
        tracing::info!(old_version = %old.version(), new_version = %new.version(), source = %new.source_name(), "policy reloaded");
        let mut event = AuditEvent::new(EventKind::System);
        event.reason = Some("policy reloaded".into());
        event.policy_version = Some(new.version().to_string());
        event.detail =
            Some(json!({ "old_version": old.version(), "new_version": new.version(), "source": new.source_name() }));
        self.append_nowait(event);
    }

    pub fn audit(&self) -> Option<&AuditLog> {
        self.audit.as_ref().ok()
    }

    pub fn approvals(&self) -> Option<&Arc<Approvals>> {
        self.approvals.as_ref()
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Waits for writes started without waiting (approval outcomes), then closes the audit log.
    pub async fn close(&self) {
        if let Some(a) = &self.approvals {
            a.flush().await;
        }
        if let Some(log) = self.audit() {
            log.close();
        }
    }

    /// The server whose resource list named `uri` (whether or not the caller may read it).
    pub fn resource_owner(&self, uri: &str) -> Option<String> {
        self.resources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uri)
            .cloned()
    }

    fn learn_resources(&self, server: &str, entries: &[serde_json::Value]) {
        let mut map = self.resources.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.clear();
        }
        for uri in entries
            .iter()
            .filter_map(|e| e.get("uri").and_then(serde_json::Value::as_str))
        {
            map.insert(uri.to_string(), server.to_string());
        }
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Records a message refused before any decision (malformed, oversized, no id).
    pub fn refused_message(&self, ctx: &CallContext, method: Option<&str>, reason: &str) {
        let mut event = AuditEvent::new(EventKind::System);
        event.principal = Some(ctx.principal.id.clone());
        event.session = Some(ctx.session.clone());
        event.door = Some(ctx.door.as_str().into());
        event.server = Some(ctx.server.clone());
        event.method = method.map(|m| steward_mcp::Method::parse(m).as_str().to_string());
        event.effect = Some("deny".into());
        event.reason = Some(reason.to_string());
        self.append_nowait(event);
    }

    fn event(
        &self,
        kind: EventKind,
        ctx: &CallContext,
        decision_id: &str,
        target: Option<&str>,
        method: &str,
    ) -> AuditEvent {
        let mut e = AuditEvent::new(kind);
        e.decision_id = Some(decision_id.to_string());
        e.principal = Some(ctx.principal.id.clone());
        e.client = ctx.client();
        e.session = Some(ctx.session.clone());
        e.door = Some(ctx.door.as_str().to_string());
        e.server = Some(ctx.server.clone());
        e.tool = target.map(str::to_string);
        e.method = Some(method.to_string());
        e
    }

    fn append_nowait(&self, event: AuditEvent) {
        if let Ok(log) = &self.audit
            && let Err(e) = log.append_nowait(event)
        {
            tracing::error!(error = %e, "cannot record audit event");
        }
    }
}
