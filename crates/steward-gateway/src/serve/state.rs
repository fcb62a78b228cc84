//! Gateway state shared by every request: pipeline, upstreams, sessions, auth, limits, metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use steward_policy::Principal;

use super::limits::Limiter;
use super::metrics::Metrics;
use crate::auth::Authenticator;
use crate::config::GatewayConfig;
use crate::pipeline::{CallContext, Pipeline};
use crate::upstream::{Conn, Upstreams};

pub struct AppState {
    pub cfg: GatewayConfig,
    pub pipeline: Arc<Pipeline>,
    pub upstreams: Upstreams,
    pub sessions: Sessions,
    pub auth: Authenticator,
    pub limiter: Limiter,
    pub metrics: Metrics,
    pub federation: super::federation::Federation,
    pub registry: Option<steward_registry::Registry>,
    /// Turns true when the gateway starts shutting down: open streams end.
    pub stopping: tokio::sync::watch::Sender<bool>,
    pub legacy_sse: super::legacy_sse::SseStreams,
    /// Audit sinks, checkpoints and retention (`audit:`), for `/metrics` and `/readyz`.
    pub evidence: crate::evidence::Evidence,
}

impl AppState {
    pub fn new(
        cfg: GatewayConfig,
        pipeline: Arc<Pipeline>,
        auth: Authenticator,
        registry: Option<steward_registry::Registry>,
    ) -> AppState {
        AppState {
            registry,
            stopping: tokio::sync::watch::channel(false).0,
            upstreams: Upstreams::new(cfg.servers.clone()),
            sessions: Sessions::new(cfg.session_idle_timeout),
            limiter: Limiter::new(cfg.limits.clone()),
            metrics: Metrics::default(),
            federation: Default::default(),
            legacy_sse: Default::default(),
            evidence: Default::default(),
            cfg,
            pipeline,
            auth,
        }
    }

    /// Resolves when shutdown begins (at once if it already has).
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stopping.subscribe();
        async move {
            let _ = rx.wait_for(|stopping| *stopping).await;
        }
    }
}

/// A legacy (2025-11-25 and earlier) MCP session, bound to the principal that opened it.
pub struct Session {
    pub id: String,
    pub server: String,
    pub principal: Principal,
    pub conn: Conn,
    /// Whether `conn` belongs to this session alone (closed with it) or is shared.
    pub owns_conn: bool,
    pub ctx: Mutex<CallContext>,
    last_used: Mutex<Instant>,
    pub listening: Mutex<bool>,
}

impl Session {
    pub fn ctx(&self) -> CallContext {
        self.ctx.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.last_used.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
    }
}

pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
    idle: Duration,
}

impl Sessions {
    pub fn new(idle: Duration) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            idle,
        }
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle
    }

    /// Registers a session under `id`; `ctx.session` is the label audit rows carry.
    pub fn create(
        &self,
        id: String,
        server: &str,
        principal: Principal,
        conn: Conn,
        owns_conn: bool,
        ctx: CallContext,
    ) -> Arc<Session> {
        let session = Arc::new(Session {
            id,
            server: server.to_string(),
            principal,
            conn,
            owns_conn,
            ctx: Mutex::new(ctx),
            last_used: Mutex::new(Instant::now()),
            listening: Mutex::new(false),
        });
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session.id.clone(), session.clone());
        session
    }

    /// The session with this id, if it exists, is not idle past the timeout, serves this server
    /// and belongs to this principal.
    pub fn get(&self, id: &str, server: &str, principal: &Principal) -> Option<Arc<Session>> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let s = map.get(id)?;
        (s.server == server && s.principal.id == principal.id && s.idle_for() <= self.idle && s.conn.alive())
            .then(|| s.clone())
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(id)
    }

    /// Sessions idle past the timeout, or whose upstream died, are removed and returned.
    pub fn expire(&self) -> Vec<Arc<Session>> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let dead: Vec<String> = map
            .iter()
            .filter(|(_, s)| s.idle_for() > self.idle || !s.conn.alive())
            .map(|(k, _)| k.clone())
            .collect();
        dead.into_iter().filter_map(|k| map.remove(&k)).collect()
    }

    pub fn drain(&self) -> Vec<Arc<Session>> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, s)| s)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A new session id: 256 random bits from the OS-seeded CSPRNG, base64url.
pub fn new_session_id() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What audit rows and logs call a session: a digest of its id, never the id itself (holding the
/// id is half of what it takes to use the session).
pub fn session_label(id: &str) -> String {
    use sha2::Digest;
    format!("s-{}", hex::encode(&sha2::Sha256::digest(id.as_bytes())[..8]))
}
