//! A stdio child process as an upstream. Requests arrive with ids (and progress tokens) the relay
//! allocated, unique across every client, so a child shared by many clients routes each answer
//! to the request it belongs to by its id alone.

use std::collections::{BTreeMap, VecDeque};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steward_mcp::jsonrpc::{ErrorCode, error_response};
use steward_mcp::{IdKey, Kind, Line, LineReader, LineWriter, Message, Method};
use tokio::io::BufReader;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::{Replies, UpstreamError};

/// Variables every child gets from the gateway's environment; everything else must be declared.
const BASE_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
];
/// Largest message accepted from a child.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// Server-initiated messages kept while no client listens.
const MAX_BUFFERED: usize = 256;

struct Waiter {
    key: IdKey,
    progress_token: Option<String>,
    tx: mpsc::Sender<Vec<u8>>,
}

#[derive(Default)]
struct Routing {
    waiters: Vec<Waiter>,
    listener: Option<mpsc::Sender<Vec<u8>>>,
    buffered: VecDeque<Vec<u8>>,
}

pub struct StdioConn {
    server: String,
    writer: LineWriter,
    routing: Mutex<Routing>,
    /// Serves several clients: its own requests cannot be told apart by client.
    shared: bool,
    alive: Arc<AtomicBool>,
    child: tokio::sync::Mutex<Option<Child>>,
    /// Kept while the child runs; released on close (its cgroup and private temp dir go with it).
    sandbox: Mutex<Option<crate::sandbox::Sandboxed>>,
}

impl StdioConn {
    pub fn spawn(
        server: &str,
        command: &str,
        args: &[String],
        env: &BTreeMap<String, String>,
        sandbox: Option<&crate::sandbox::SandboxSpec>,
        shared: bool,
    ) -> Result<Arc<StdioConn>, UpstreamError> {
        let mut cmd = Command::new(command);
        cmd.args(args).env_clear();
        for var in BASE_ENV {
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
        cmd.envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let sandboxed = crate::sandbox::apply(&mut cmd, sandbox).map_err(|e| UpstreamError::Start {
            server: server.to_string(),
            message: e.to_string(),
        })?;
        sandboxed.log(server);
        let mut child = cmd.spawn().map_err(|e| UpstreamError::Start {
            server: server.to_string(),
            message: format!("`{command}`: {}", sandboxed.spawn_error(&e)),
        })?;
        let stdin = child.stdin.take().ok_or_else(|| UpstreamError::Start {
            server: server.into(),
            message: "no stdin".into(),
        })?;
        let stdout = child.stdout.take().ok_or_else(|| UpstreamError::Start {
            server: server.into(),
            message: "no stdout".into(),
        })?;
        let (writer, _task) = LineWriter::spawn(stdin);
        let conn = Arc::new(StdioConn {
            server: server.to_string(),
            writer,
            routing: Mutex::new(Routing::default()),
            shared,
            alive: Arc::new(AtomicBool::new(true)),
            child: tokio::sync::Mutex::new(Some(child)),
            sandbox: Mutex::new(Some(sandboxed)),
        });
        let reader = conn.clone();
        tokio::spawn(async move {
            reader
                .read_loop(LineReader::new(BufReader::new(stdout), MAX_MESSAGE))
                .await;
        });
        Ok(conn)
    }

    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    pub fn request(&self, line: &[u8]) -> Result<Replies, UpstreamError> {
        if !self.alive() {
            return Err(UpstreamError::Gone(self.server.clone()));
        }
        let msg = Message::parse(line).map_err(|e| UpstreamError::Failed {
            server: self.server.clone(),
            message: e.to_string(),
        })?;
        let key = msg.id_key().ok_or_else(|| UpstreamError::Failed {
            server: self.server.clone(),
            message: "request without id".into(),
        })?;
        let progress_token = steward_mcp::rewrite::request_progress_token(&msg).map(|t| t.get().to_string());
        let (tx, rx) = mpsc::channel(64);
        self.lock().waiters.push(Waiter {
            key,
            progress_token,
            tx,
        });
        if !self.writer.send(line.to_vec()) {
            return Err(UpstreamError::Gone(self.server.clone()));
        }
        Ok(rx)
    }

    pub fn send(&self, line: &[u8]) -> Result<(), UpstreamError> {
        if !self.alive() || !self.writer.send(line.to_vec()) {
            return Err(UpstreamError::Gone(self.server.clone()));
        }
        Ok(())
    }

    /// Takes over the stream of server-initiated messages; what was buffered comes first. A shared
    /// child has none to offer: its messages cannot be told apart by client.
    pub fn server_messages(&self) -> Option<mpsc::Receiver<Vec<u8>>> {
        if self.shared {
            return None;
        }
        let (tx, rx) = mpsc::channel(MAX_BUFFERED);
        let mut r = self.lock();
        for m in r.buffered.drain(..) {
            let _ = tx.try_send(m);
        }
        r.listener = Some(tx);
        Some(rx)
    }

    pub async fn close(&self) {
        self.writer.close();
        let mut guard = self.child.lock().await;
        if let Some(child) = guard.as_mut() {
            crate::proxy::stop_child(child, Duration::from_secs(2)).await;
        }
        *guard = None;
        drop(self.sandbox.lock().unwrap_or_else(|e| e.into_inner()).take());
        self.alive.store(false, Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Routing> {
        self.routing.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn read_loop(self: Arc<Self>, mut input: LineReader<BufReader<tokio::process::ChildStdout>>) {
        loop {
            let bytes = match input.next().await {
                Ok(Some(Line::Message(b))) => b,
                Ok(Some(Line::TooLong { bytes })) => {
                    tracing::error!(server = %self.server, bytes, "upstream message exceeds the size limit; dropped");
                    continue;
                }
                Ok(None) | Err(_) => break,
            };
            let Ok(msg) = Message::parse(&bytes) else {
                tracing::warn!(server = %self.server, "upstream wrote a line that is not JSON-RPC; dropped");
                continue;
            };
            self.route(&msg, &bytes).await;
        }
        self.alive.store(false, Ordering::Release);
        tracing::warn!(server = %self.server, "upstream closed its output");
        let waiters = std::mem::take(&mut self.lock().waiters);
        for w in waiters {
            let message = format!("upstream server '{}' exited before answering", self.server);
            let _ =
                w.tx.send(error_response(
                    Some(w.key.as_json()),
                    ErrorCode::UpstreamUnavailable,
                    &message,
                    None,
                ))
                .await;
        }
        let mut r = self.lock();
        r.listener = None;
    }

    async fn route(&self, msg: &Message<'_>, bytes: &[u8]) {
        if msg.kind == Kind::Response {
            let Some(key) = msg.id_key() else { return };
            let waiter = {
                let mut r = self.lock();
                r.waiters.iter().position(|w| w.key == key).map(|i| r.waiters.remove(i))
            };
            match waiter {
                Some(w) => {
                    let _ = w.tx.send(bytes.to_vec()).await;
                }
                None => {
                    tracing::debug!(server = %self.server, id = key.as_json(), "response to no pending request; dropped")
                }
            }
            return;
        }
        // A server-initiated message: to the request it relates to, else the listener. On a shared
        // child only a progress token ties a message to a client; anything else could belong to
        // any of them, so it goes nowhere (and a request is refused).
        let token = progress_token(msg);
        let target = {
            let r = self.lock();
            let related = token
                .as_ref()
                .and_then(|t| r.waiters.iter().find(|w| w.progress_token.as_ref() == Some(t)))
                .or_else(|| {
                    if token.is_none() && !self.shared {
                        r.waiters.last()
                    } else {
                        None
                    }
                });
            related.map(|w| w.tx.clone())
        };
        if let Some(tx) = target {
            let _ = tx.send(bytes.to_vec()).await;
            return;
        }
        if self.shared {
            if msg.kind == Kind::Request {
                let message = "this server is shared by several clients (mode: shared), so Steward cannot relay its requests to a client";
                let id = msg.id.map(|i| i.get().to_string());
                self.writer
                    .send(error_response(id.as_deref(), ErrorCode::MethodNotFound, message, None));
            }
            tracing::debug!(server = %self.server, method = msg.method().unwrap_or_default(), "server-initiated message on a shared child dropped");
            return;
        }
        let mut r = self.lock();
        let delivered = match &r.listener {
            Some(l) => l.try_send(bytes.to_vec()).is_ok(),
            None => false,
        };
        if !delivered {
            if r.buffered.len() >= MAX_BUFFERED {
                r.buffered.pop_front();
            }
            r.buffered.push_back(bytes.to_vec());
        }
    }
}

/// The progress token a `notifications/progress` names (JSON text).
fn progress_token(msg: &Message<'_>) -> Option<String> {
    (msg.method_kind() == Method::NotificationsProgress)
        .then(|| steward_mcp::rewrite::notification_progress_token(msg))
        .flatten()
        .map(|t| t.get().to_string())
}
