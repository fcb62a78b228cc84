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
use steward_store::{AuditEvent, AuditLog, EventKind, PinStore, Store, StoreLocation};

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
    /// The store the parts above were opened from (`None`: it could not be opened).
    store: Option<Store>,
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
    /// The store everything above comes from (keys, evidence and readers are opened from it
    /// too); `None` when it could not be opened.
    pub store: Option<Store>,
}

impl RelayParts {
    /// Everything in the SQLite store at `db` (see [`RelayParts::open`]).
    pub fn sqlite(policy: Arc<Policy>, db: &Path, notifier: crate::notify::Notifier) -> RelayParts {
        RelayParts::open(&StoreLocation::Sqlite(db.to_path_buf()), None, policy, notifier)
    }

    /// THE constructor every door uses: opens the store at `location` (a SQLite file, or
    /// PostgreSQL shared by several gateways; rows this process writes name `instance`) and
    /// from it the audit log, pins and approvals. A part that cannot be opened is logged; the
    /// relay then refuses what needs it. Blocks while PostgreSQL is waited for (seconds).
    pub fn open(
        location: &StoreLocation,
        instance: Option<String>,
        policy: Arc<Policy>,
        notifier: crate::notify::Notifier,
    ) -> RelayParts {
        let mut parts = RelayParts {
            policy,
            audit: Err(String::new()),
            pins: None,
            approvals: None,
            limits: Default::default(),
            metrics: Arc::new(Metrics::default()),
            store: None,
        };
        let store = match Store::open(location) {
            Ok(s) => s.with_instance(instance),
            Err(e) => {
                tracing::error!("{e}; every governed call will be refused until this is fixed");
                parts.audit = Err(e.to_string());
                return parts;
            }
        };
        parts.audit = store.audit_log().map_err(|e| {
            tracing::error!("{e}; every governed call will be refused until this is fixed");
            e.to_string()
        });
        parts.pins = match store.pins() {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(error = %e, "tool pins unavailable; drift is not detected");
                None
            }
        };
        parts.approvals = match store.approvals() {
            Ok(a) => Some(Approvals::new(a, notifier)),
            Err(e) => {
                tracing::error!("approvals unavailable ({e}); calls that need approval will be refused");
                None
            }
        };
        parts.store = Some(store);
        parts
    }
}

impl Relay {
    pub fn new(parts: RelayParts) -> Relay {
        let relay = Relay {
            policy: RwLock::new(parts.policy),
            audit: parts.audit,
            catalog: Arc::new(Catalog::new(parts.pins)),
            runaway: Runaway::new(parts.store.as_ref().and_then(Store::counters)),
            limiter: Limiter::new(parts.limits),
            approvals: parts.approvals.map(|a| Arc::new(a.counted_in(parts.metrics.clone()))),
            metrics: parts.metrics,
            store: parts.store,
            next_id: AtomicU64::new(1),
            resources: Default::default(),
        };
        relay.hear_other_gateways();
        relay
    }

    /// With PostgreSQL, what other gateways change is heard as they commit (LISTEN/NOTIFY):
    /// approvals decided elsewhere wake the calls held here at once (the hold's own poll of the
    /// store stays as the fallback), and pins changed elsewhere are read again (the catalog's
    /// 2 s refresh stays as the fallback). Needs a Tokio runtime (without one, the fallbacks).
    fn hear_other_gateways(&self) {
        let Some(store) = &self.store else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(mut changes) = store.changes() else {
            return;
        };
        let approvals = self.approvals.as_ref().map(Arc::downgrade);
        let catalog = Arc::downgrade(&self.catalog);
        runtime.spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                let heard = changes.recv().await;
                // The relay is gone: stop listening.
                let Some(catalog) = catalog.upgrade() else { return };
                let wake = || {
                    if let Some(a) = approvals.as_ref().and_then(|a| a.upgrade()) {
                        a.wake();
                    }
                };
                match heard {
                    Ok(steward_store::Change::Pins(server)) => catalog.changed(&server),
                    Ok(_) | Err(RecvError::Lagged(_)) => wake(),
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    /// The store this relay's parts were opened from.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
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
