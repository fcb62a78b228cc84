//! Which connection serves which request: a child per legacy session by default, one shared
//! connection per server for stateless (2026-07-28) requests and `mode: shared` servers, with
//! restart and back-off when a shared child dies.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::demo::DemoConn;
use super::http::HttpConn;
use super::stdio::StdioConn;
use super::{Conn, UpstreamError};
use crate::config::{ServerConfig, Transport};

/// The longest a crashed shared child waits before it is started again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

struct Slot {
    conn: Conn,
    started: Instant,
}

#[derive(Default)]
struct Restarts {
    failures: u32,
    retry_at: Option<Instant>,
}

pub struct Upstreams {
    configs: BTreeMap<String, ServerConfig>,
    http: reqwest::Client,
    shared: Mutex<HashMap<(String, Purpose), Slot>>,
    restarts: Mutex<HashMap<(String, Purpose), Restarts>>,
}

/// What a shared connection is for. Kept apart because some servers fix a connection's protocol
/// era on its first request (a stateless child must never see `initialize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Legacy sessions of a `mode: shared` server.
    Sessions,
    /// Stateless (2026-07-28) requests.
    Stateless,
    /// The federated `/mcp` endpoint, initialized by the gateway itself.
    Federation,
}

impl Upstreams {
    pub fn new(configs: BTreeMap<String, ServerConfig>) -> Upstreams {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .unwrap_or_default();
        Upstreams {
            configs,
            http,
            shared: Mutex::new(HashMap::new()),
            restarts: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self, server: &str) -> Option<&ServerConfig> {
        self.configs.get(server)
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.configs.keys()
    }

    /// The connection for a new legacy session.
    pub fn session_conn(&self, server: &str) -> Result<Conn, UpstreamError> {
        let cfg = self
            .configs
            .get(server)
            .ok_or_else(|| UpstreamError::Gone(server.to_string()))?;
        if cfg.shared || matches!(cfg.transport, Transport::Demo) {
            return self.shared_conn(cfg, Purpose::Sessions);
        }
        self.open(cfg, false)
    }

    /// The connection stateless requests to `server` use.
    pub fn stateless_conn(&self, server: &str) -> Result<Conn, UpstreamError> {
        let cfg = self
            .configs
            .get(server)
            .ok_or_else(|| UpstreamError::Gone(server.to_string()))?;
        self.shared_conn(cfg, Purpose::Stateless)
    }

    /// The connection the federated endpoint uses for `server` (the caller initializes it).
    pub fn federation_conn(&self, server: &str) -> Result<Conn, UpstreamError> {
        let cfg = self
            .configs
            .get(server)
            .ok_or_else(|| UpstreamError::Gone(server.to_string()))?;
        self.shared_conn(cfg, Purpose::Federation)
    }

    fn shared_conn(&self, cfg: &ServerConfig, purpose: Purpose) -> Result<Conn, UpstreamError> {
        let key = (cfg.name.clone(), purpose);
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = shared.get(&key) {
            if slot.conn.alive() {
                return Ok(slot.conn.clone());
            }
            let lived = slot.started.elapsed();
            let mut restarts = self.restarts.lock().unwrap_or_else(|e| e.into_inner());
            let r = restarts.entry(key.clone()).or_default();
            if lived > Duration::from_secs(60) {
                r.failures = 0;
            }
            if r.retry_at.is_none() {
                r.failures += 1;
                let backoff = Duration::from_secs(1u64 << r.failures.min(5)).min(MAX_BACKOFF);
                r.retry_at = Some(Instant::now() + backoff);
                tracing::warn!(server = %cfg.name, ?backoff, "shared upstream died; restarting after back-off");
            }
            if let Some(at) = r.retry_at
                && Instant::now() < at
            {
                return Err(UpstreamError::Gone(format!(
                    "{} (restarting in {}s)",
                    cfg.name,
                    at.saturating_duration_since(Instant::now()).as_secs() + 1
                )));
            }
            r.retry_at = None;
        }
        let conn = self.open(cfg, true)?;
        shared.insert(
            key,
            Slot {
                conn: conn.clone(),
                started: Instant::now(),
            },
        );
        Ok(conn)
    }

    fn open(&self, cfg: &ServerConfig, shared: bool) -> Result<Conn, UpstreamError> {
        Ok(match &cfg.transport {
            Transport::Stdio { command, args, env } => Conn::Stdio(StdioConn::spawn(
                &cfg.name,
                command,
                args,
                env,
                cfg.sandbox.as_ref(),
                shared,
            )?),
            Transport::Http { url, headers } => {
                Conn::Http(Arc::new(HttpConn::new(&cfg.name, url, headers, self.http.clone())?))
            }
            Transport::Demo => Conn::Demo(Arc::new(DemoConn)),
        })
    }

    /// Stops every shared connection (graceful shutdown).
    pub async fn close_all(&self) {
        let conns: Vec<Conn> = self
            .shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, s)| s.conn)
            .collect();
        for c in conns {
            c.close().await;
        }
    }
}
