//! Gateway state shared by every request: pipeline, upstreams, sessions, auth, limits, metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use steward_policy::Principal;

use crate::auth::Authenticator;
use crate::config::GatewayConfig;
use crate::metrics::Metrics;
use crate::pipeline::Relay;
use crate::upstream::{Conn, Upstreams};

pub struct AppState {
    pub cfg: GatewayConfig,
    pub relay: Arc<Relay>,
    pub upstreams: Upstreams,
    pub sessions: Sessions,
    pub auth: Authenticator,
    pub federation: super::federation::Federation,
    pub registry: Option<steward_registry::Registry>,
    /// Turns true when the gateway starts shutting down: open streams end.
    pub stopping: tokio::sync::watch::Sender<bool>,
    pub legacy_sse: super::legacy_sse::SseStreams,
    /// Audit sinks, checkpoints and retention (`audit:`), for `/metrics` and `/readyz`.
    pub evidence: crate::evidence::Evidence,
    /// `/ui`, unless `console.enabled: false`.
    pub console: Option<Arc<crate::console::Console>>,
}

impl AppState {
    pub fn new(
        cfg: GatewayConfig,
        relay: Arc<Relay>,
        auth: Authenticator,
        registry: Option<steward_registry::Registry>,
    ) -> AppState {
        AppState {
            registry,
            stopping: tokio::sync::watch::channel(false).0,
            upstreams: Upstreams::new(cfg.servers.clone()),
            sessions: Sessions::new(cfg.session_idle_timeout),
            federation: Default::default(),
            legacy_sse: Default::default(),
            evidence: Default::default(),
            console: crate::console::Console::new(&cfg),
            cfg,
            relay,
            auth,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        self.relay.metrics()
    }

    /// Resolves when shutdown begins (at once if it already has).
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stopping.subscribe();
        async move {
            let _ = rx.wait_for(|stopping| *stopping).await;
        }
    }
}

/// A legacy (2025-11-25 and earlier) MCP session, bound to the principal and the credential
/// that opened it: a request with another credential cannot use it.
pub struct Session {
    pub id: String,
    pub server: String,
    pub principal_id: String,
    pub credential: String,
    pub conn: Conn,
    /// Whether `conn` belongs to this session alone (closed with it) or is shared.
    pub owns_conn: bool,
    /// Whether the session started a server process of its own.
    pub child: bool,
    /// The relay's view of the session: its id space and context.
    pub relay: Arc<crate::pipeline::Session>,
    last_used: Mutex<Instant>,
    pub listening: Mutex<bool>,
}

impl Session {
    pub fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.last_used.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
    }
}

/// A session's upstream connection and what the session owns of it.
pub struct SessionConn {
    pub conn: Conn,
    /// The connection is the session's alone (closed with it).
    pub owns_conn: bool,
    /// The session started a server process of its own.
    pub child: bool,
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

    /// Registers a session under `id`, bound to `principal` and its credential.
    pub fn create(
        &self,
        id: String,
        server: &str,
        principal: &Principal,
        conn: SessionConn,
        relay: crate::pipeline::Session,
    ) -> Arc<Session> {
        let SessionConn { conn, owns_conn, child } = conn;
        let session = Arc::new(Session {
            id,
            server: server.to_string(),
            principal_id: principal.id.clone(),
            credential: credential_of(principal),
            conn,
            owns_conn,
            child,
            relay: Arc::new(relay),
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
    /// and was opened with this principal's credential.
    pub fn get(&self, id: &str, server: &str, principal: &Principal) -> Option<Arc<Session>> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let s = map.get(id)?;
        (s.server == server
            && s.principal_id == principal.id
            && s.credential == credential_of(principal)
            && s.idle_for() <= self.idle
            && s.conn.alive())
        .then(|| s.clone())
    }

    /// How many sessions own a child process, in all and for `principal_id`.
    pub fn children(&self, principal_id: &str) -> (usize, usize) {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let owning = map.values().filter(|s| s.child);
        let all: Vec<_> = owning.collect();
        let mine = all.iter().filter(|s| s.principal_id == principal_id).count();
        (all.len(), mine)
    }

    /// How many sessions `principal` has open.
    pub fn count_for(&self, principal_id: &str) -> usize {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|s| s.principal_id == principal_id)
            .count()
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

/// Which credential a principal authenticated with: an API key's id, a token's issuer and
/// subject, or how an unauthenticated caller was let in. Sessions are bound to it.
pub fn credential_of(p: &Principal) -> String {
    let attr = |k: &str| p.attributes.get(k).and_then(|v| v.as_str()).unwrap_or("");
    match p.auth.as_str() {
        "api-key" => format!("key:{}", attr("key_id")),
        "jwt" => format!("jwt:{}|{}", attr("iss"), attr("sub")),
        other => format!("{other}:{}", p.id),
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
