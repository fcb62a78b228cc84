//! `POST /mcp`: the federated endpoint. Steward answers as an MCP server of its own whose tools
//! and prompts are every upstream's that the principal may use, named `server__name` so that no
//! server can shadow another's, and whose resources are every upstream's (read by URI, routed to
//! the server that lists it). Each upstream is reached through a connection the gateway
//! initializes; each request to it goes through the relay like `/mcp/{server}` does: decided,
//! held, limited and inspected the same way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use steward_mcp::jsonrpc::{ErrorCode, error_response, result_response};
use steward_mcp::{Kind, Message, Method};
use steward_policy::Principal;

use super::admit::Admitted;
use super::exchange::{Answered, Exchange, sse_of};
use super::guard;
use super::mcp::{SESSION_HEADER, accepts_sse, is_stateless, rpc_error};
use super::reply;
use super::state::{AppState, credential_of, new_session_id, session_label};
use crate::pipeline::{self, Door, Ingress};
use crate::upstream::{Conn, Forward};

/// Separates server and name in federated tool and prompt names.
pub const SEPARATOR: &str = "__";
const INIT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_PAGES: usize = 20;

/// A federated client session (legacy era), bound to its principal and credential.
pub struct FedSession {
    principal_id: String,
    credential: String,
    label: String,
    /// The relay's session for each upstream this client reached.
    subs: Mutex<HashMap<String, Arc<pipeline::Session>>>,
    last_used: Mutex<Instant>,
}

impl FedSession {
    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.last_used.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
    }
}

#[derive(Default)]
pub struct Federation {
    sessions: Mutex<HashMap<String, Arc<FedSession>>>,
    /// Upstream connections this endpoint has initialized, by server.
    ready: tokio::sync::Mutex<HashMap<String, Conn>>,
    /// Which server lists each resource URI (learnt from resource lists).
    owners: Mutex<HashMap<String, String>>,
    next: AtomicU64,
}

impl Federation {
    /// Ends federated sessions idle past `idle`; returns how many.
    pub fn expire(&self, idle: Duration) -> usize {
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let before = map.len();
        map.retain(|_, s| s.idle_for() <= idle);
        before - map.len()
    }

    /// Ends the federated session `sid` (its credential was refused); whether it existed.
    pub fn end(&self, sid: &str) -> bool {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(sid)
            .is_some()
    }

    fn count_for(&self, principal_id: &str) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|s| s.principal_id == principal_id)
            .count()
    }

    fn len(&self) -> usize {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Where one federated request is going.
struct Fed<'a> {
    st: &'a Arc<AppState>,
    principal: &'a Principal,
    session: Option<Arc<FedSession>>,
    stateless: bool,
    client: Option<(String, Option<String>)>,
}

impl Fed<'_> {
    /// The relay session for `server`: the federated session's own, or a new one per request.
    fn sub(&self, server: &str, info: pipeline::ServerInfo) -> Arc<pipeline::Session> {
        let make = |label: &str| {
            let s = pipeline::Session::new(server, Door::Federation, label).with_server_info(info.clone());
            if let Some((n, v)) = &self.client {
                s.note_client(n.clone(), v.clone());
            }
            Arc::new(s)
        };
        match &self.session {
            Some(fs) => fs
                .subs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(server.to_string())
                .or_insert_with(|| make(&fs.label))
                .clone(),
            None => make("stateless"),
        }
    }

    async fn exchange(&self, server: &str) -> Result<Exchange, String> {
        let info = guard::check_registry(self.st, server).map_err(|_| format!("server '{server}' is not servable"))?;
        let conn = ready_conn(self.st, server).await?;
        let timeout = self
            .st
            .upstreams
            .config(server)
            .map(|c| c.timeout)
            .unwrap_or(Duration::from_secs(300));
        Ok(Exchange {
            st: self.st.clone(),
            session: self.sub(server, info),
            principal: self.principal.clone(),
            conn,
            timeout,
        })
    }

    fn servers(&self) -> Vec<String> {
        self.st
            .upstreams
            .names()
            .filter(|s| guard::check_registry(self.st, s).is_ok())
            .cloned()
            .collect()
    }
}

pub async fn post(
    State(st): State<Arc<AppState>>,
    Extension(Admitted(principal)): Extension<Admitted>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let msg = match Message::parse(&body) {
        Ok(m) => m,
        Err(e) => return rpc_error(StatusCode::BAD_REQUEST, None, e.code(), &e.to_string()),
    };
    let method = msg.method_kind();
    st.metrics().request("*", method);
    let stateless = is_stateless(&headers, &msg);
    let fed = &st.federation;
    let session = match headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
        Some(sid) if !stateless => {
            let found = fed.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(sid).cloned();
            match found {
                Some(s)
                    if s.principal_id == principal.id
                        && s.credential == credential_of(&principal)
                        && s.idle_for() <= st.sessions.idle_timeout() =>
                {
                    s.touch();
                    Some(s)
                }
                _ => {
                    return rpc_error(
                        StatusCode::NOT_FOUND,
                        msg.raw_id(),
                        ErrorCode::InvalidRequest,
                        "session not found (expired, closed, or opened with another credential); initialize a new one",
                    );
                }
            }
        }
        _ => None,
    };
    let f = Fed {
        st: &st,
        principal: &principal,
        session,
        stateless,
        client: steward_mcp::era::client_info(msg.params),
    };
    match msg.kind {
        Kind::Response => {
            // An answer to a server→client request: the upstream whose relay session relayed it.
            if let Some(s) = &f.session {
                let subs: Vec<(String, Arc<pipeline::Session>)> = s
                    .subs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                for (server, sub) in subs {
                    if let pipeline::Action::Forward(fw) =
                        st.relay.request(&sub, &principal, &body, Ingress::default()).await
                        && let Ok(conn) = ready_conn(&st, &server).await
                    {
                        let _ = conn.send(&fw.bytes, &fw.headers).await;
                        break;
                    }
                }
            }
            StatusCode::ACCEPTED.into_response()
        }
        Kind::Notification if method.is_governed() => rpc_error(
            StatusCode::BAD_REQUEST,
            None,
            ErrorCode::InvalidRequest,
            &pipeline::messages::needs_id(method.as_str()),
        ),
        Kind::Notification => StatusCode::ACCEPTED.into_response(),
        Kind::Request => request(&f, &msg, method, &headers).await,
    }
}

async fn request(f: &Fed<'_>, msg: &Message<'_>, method: Method, headers: &HeaderMap) -> Response {
    let id = msg.raw_id().unwrap_or("null").to_string();
    let finish = |mut result: Value| {
        if f.stateless {
            result["resultType"] = json!("complete");
        }
        reply::json(result_response(&id, &result), HeaderMap::new())
    };
    let capabilities = json!({ "tools": { "listChanged": false }, "prompts": { "listChanged": false }, "resources": { "listChanged": false } });
    match method {
        Method::Initialize => initialize(f, msg, &id, capabilities),
        Method::ServerDiscover => finish(json!({
            "supportedVersions": ["2026-07-28"],
            "capabilities": capabilities,
            "_meta": { "io.modelcontextprotocol/serverInfo": { "name": "steward-federation", "version": env!("CARGO_PKG_VERSION") } },
        })),
        Method::Ping => finish(json!({})),
        m if m.is_list() => {
            let Some(member) = m.list_member() else {
                return finish(json!({}));
            };
            let mut r = json!({ member: list(f, m).await });
            if f.stateless && m == Method::ToolsList {
                r["ttlMs"] = json!(0);
                r["cacheScope"] = json!("private");
            }
            finish(r)
        }
        Method::ToolsCall | Method::PromptsGet | Method::ResourcesRead => use_one(f, msg, method, &id, headers).await,
        _ => rpc_error(
            StatusCode::OK,
            Some(&id),
            ErrorCode::MethodNotFound,
            &format!(
                "the federated endpoint does not serve {}; use /mcp/<server>",
                msg.method().unwrap_or_default()
            ),
        ),
    }
}

fn initialize(f: &Fed<'_>, msg: &Message<'_>, id: &str, capabilities: Value) -> Response {
    let limits = &f.st.cfg.limits;
    let fed = &f.st.federation;
    if fed.count_for(&f.principal.id) >= limits.sessions_per_principal || fed.len() >= limits.max_sessions {
        return rpc_error(
            StatusCode::TOO_MANY_REQUESTS,
            Some(id),
            ErrorCode::InvalidRequest,
            "too many open federated sessions (limits.sessions_per_principal, limits.max_sessions); close one or wait for it to expire",
        );
    }
    let asked = msg
        .params
        .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
        .and_then(|p| p.get("protocolVersion").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    let version = if ("2024-11-05".."2026-07-28").contains(&asked.as_str()) {
        asked
    } else {
        "2025-11-25".to_string()
    };
    let sid = new_session_id();
    fed.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(
        sid.clone(),
        Arc::new(FedSession {
            principal_id: f.principal.id.clone(),
            credential: credential_of(f.principal),
            label: session_label(&sid),
            subs: Mutex::new(HashMap::new()),
            last_used: Mutex::new(Instant::now()),
        }),
    );
    f.st.metrics().session_opened();
    let mut extra = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&sid) {
        extra.insert(SESSION_HEADER, v);
    }
    let result = json!({
        "protocolVersion": version,
        "capabilities": capabilities,
        "serverInfo": { "name": "steward-federation", "version": env!("CARGO_PKG_VERSION") },
        "instructions": format!("Tools and prompts of every server behind this Steward gateway, named <server>{SEPARATOR}<name>; resources keep their URIs."),
    });
    reply::json(result_response(id, &result), extra)
}

/// Every server's entries of one list, through the relay (filtered for the principal), with
/// tool and prompt names prefixed by their server.
async fn list(f: &Fed<'_>, method: Method) -> Vec<Value> {
    let lists = lists(f, method).await;
    let mut merged = Vec::new();
    let mut owners = Vec::new();
    for (server, entries) in lists {
        for mut e in entries {
            match method {
                Method::ToolsList | Method::PromptsList => {
                    let Some(name) = e.get("name").and_then(Value::as_str).map(str::to_string) else {
                        continue;
                    };
                    e["name"] = json!(format!("{server}{SEPARATOR}{name}"));
                }
                _ => {
                    if let Some(uri) = e.get("uri").and_then(Value::as_str) {
                        owners.push((uri.to_string(), server.clone()));
                    }
                }
            }
            merged.push(e);
        }
    }
    if !owners.is_empty() {
        let mut map = f.st.federation.owners.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.clear();
        }
        map.extend(owners);
    }
    merged
}

/// Each server's entries of one list, fetched through the relay.
async fn lists(f: &Fed<'_>, method: Method) -> Vec<(String, Vec<Value>)> {
    let member = method.list_member().unwrap_or("tools");
    let servers = f.servers();
    futures_util::future::join_all(servers.iter().map(|server| async move {
        let mut out = Vec::new();
        let ex = match f.exchange(server).await {
            Ok(ex) => ex,
            Err(e) => {
                tracing::warn!(%server, error = %e, "federation: server left out of the list");
                return (server.clone(), out);
            }
        };
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let n = f.st.federation.next.fetch_add(1, Ordering::Relaxed);
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let line =
                json!({ "jsonrpc": "2.0", "id": format!("fed-{n}"), "method": method.as_str(), "params": params });
            let bytes = line.to_string().into_bytes();
            let answer = match ex.run(&bytes, Ingress::default(), false).await {
                Answered::One(b) => b,
                _ => break,
            };
            let Ok(v) = steward_mcp::json::parse_deep(&answer) else {
                break;
            };
            if let Some(e) = v.get("error") {
                // A server that does not offer this list (no prompts, say) is left out quietly.
                tracing::debug!(%server, %method, error = %e, "federation: list unavailable");
                break;
            }
            out.extend(
                v.pointer(&format!("/result/{member}"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            cursor = v
                .pointer("/result/nextCursor")
                .and_then(Value::as_str)
                .map(str::to_string);
            if cursor.is_none() {
                break;
            }
        }
        (server.clone(), out)
    }))
    .await
}

/// A federated use: the server found from the name (or the resource URI), the request sent to
/// it through the relay.
async fn use_one(f: &Fed<'_>, msg: &Message<'_>, method: Method, id: &str, headers: &HeaderMap) -> Response {
    let mut params: Value = match msg.params.map(|p| steward_mcp::json::parse_strict(p.get().as_bytes())) {
        Some(Ok(v)) if v.is_object() => v,
        Some(Err(e)) => {
            return reply::json(
                error_response(
                    Some(id),
                    ErrorCode::InvalidParams,
                    &format!("invalid {method} params: {e}"),
                    None,
                ),
                HeaderMap::new(),
            );
        }
        _ => {
            return reply::json(
                error_response(
                    Some(id),
                    ErrorCode::InvalidParams,
                    &format!("{method} needs params"),
                    None,
                ),
                HeaderMap::new(),
            );
        }
    };
    let server = match method {
        Method::ResourcesRead => {
            let uri = params
                .get("uri")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            match owner(f, &uri).await {
                Some(s) => s,
                None => {
                    return reply::json(
                        error_response(
                            Some(id),
                            ErrorCode::InvalidParams,
                            &format!("no server behind this gateway lists the resource '{uri}'"),
                            None,
                        ),
                        HeaderMap::new(),
                    );
                }
            }
        }
        _ => {
            let name = params
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            match name
                .split_once(SEPARATOR)
                .filter(|(s, _)| f.st.upstreams.config(s).is_some())
            {
                Some((s, n)) => {
                    params["name"] = json!(n);
                    s.to_string()
                }
                None => {
                    return reply::json(
                        error_response(
                            Some(id),
                            ErrorCode::InvalidParams,
                            &format!(
                                "unknown name '{name}': federated tools and prompts are named <server>{SEPARATOR}<name>"
                            ),
                            None,
                        ),
                        HeaderMap::new(),
                    );
                }
            }
        }
    };
    if let Some(meta) = params.get_mut("_meta").and_then(Value::as_object_mut) {
        // The gateway speaks the legacy era to upstreams.
        meta.retain(|k, _| !k.starts_with("io.modelcontextprotocol/"));
    }
    let line = json!({ "jsonrpc": "2.0", "id": Value::Null, "method": method.as_str(), "params": params }).to_string();
    // The client's own id, exactly as it wrote it.
    let line = line.replacen("\"id\":null", &format!("\"id\":{id}"), 1);
    let ex = match f.exchange(&server).await {
        Ok(ex) => ex,
        Err(e) => {
            return reply::json(
                error_response(
                    Some(id),
                    ErrorCode::UpstreamUnavailable,
                    &format!("upstream server '{server}': {e}"),
                    None,
                ),
                HeaderMap::new(),
            );
        }
    };
    let answered = ex.run(line.as_bytes(), Ingress::default(), accepts_sse(headers)).await;
    if !f.stateless {
        return answered.into_response(HeaderMap::new());
    }
    // A 2026-07-28 client: the legacy upstream's result gets `resultType`.
    match answered {
        Answered::One(b) => reply::json(with_result_type(&b).unwrap_or(b), HeaderMap::new()),
        Answered::Stream(mut rx) => {
            let (tx, out) = tokio::sync::mpsc::channel(32);
            tokio::spawn(async move {
                while let Some(m) = rx.recv().await {
                    if tx.send(with_result_type(&m).unwrap_or(m)).await.is_err() {
                        break;
                    }
                }
            });
            sse_of(out, HeaderMap::new())
        }
        other => other.into_response(HeaderMap::new()),
    }
}

/// The server that lists a resource URI: known from earlier lists, else learnt by listing now.
async fn owner(f: &Fed<'_>, uri: &str) -> Option<String> {
    let known = |f: &Fed<'_>| {
        let listed =
            f.st.federation
                .owners
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(uri)
                .cloned();
        // Also what the servers listed before the caller's view was filtered: a resource the
        // caller may not read is still routed, so that the policy refuses it by name.
        listed.or_else(|| f.st.relay.resource_owner(uri))
    };
    if let Some(s) = known(f) {
        return Some(s);
    }
    list(f, Method::ResourcesList).await;
    if let Some(s) = known(f) {
        return Some(s);
    }
    // A resource from a template: the server with a template whose literal prefix it starts with.
    for (server, templates) in lists(f, Method::ResourcesTemplatesList).await {
        let matches = templates.iter().any(|t| {
            t.get("uriTemplate")
                .and_then(Value::as_str)
                .map(|tpl| tpl.split('{').next().unwrap_or(tpl))
                .is_some_and(|prefix| !prefix.is_empty() && uri.starts_with(prefix))
        });
        if matches {
            return Some(server);
        }
    }
    None
}

/// An upstream connection the gateway has initialized for federation.
pub(super) async fn ready_conn(st: &AppState, server: &str) -> Result<Conn, String> {
    let conn = st.upstreams.federation_conn(server).map_err(|e| e.to_string())?;
    let mut ready = st.federation.ready.lock().await;
    if ready.get(server).is_some_and(|c| c.same(&conn) && c.alive()) {
        return Ok(conn);
    }
    let id = format!("\"steward-fed-{}\"", st.federation.next.fetch_add(1, Ordering::Relaxed));
    let init = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"steward-federation","version":"{}"}}}}}}"#,
        env!("CARGO_PKG_VERSION")
    );
    let mut rx = conn
        .request(
            init.as_bytes(),
            &Forward {
                method: Some("initialize".into()),
                ..Forward::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + INIT_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) => {
                if let Ok(msg) = Message::parse(&m)
                    && msg.kind == Kind::Response
                {
                    if msg.error.is_some() {
                        return Err("the upstream refused initialize".to_string());
                    }
                    break;
                }
            }
            Ok(None) => return Err("upstream closed during initialize".into()),
            Err(_) => return Err("upstream did not answer initialize".into()),
        }
    }
    let _ = conn
        .send(
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            &Forward {
                method: Some("notifications/initialized".into()),
                ..Forward::default()
            },
        )
        .await;
    ready.insert(server.to_string(), conn.clone());
    Ok(conn)
}

/// Adds `resultType: "complete"` to a legacy upstream's result for a 2026-07-28 client.
fn with_result_type(line: &[u8]) -> Option<Vec<u8>> {
    let mut v: Value = steward_mcp::json::parse_deep(line).ok()?;
    let result = v.get_mut("result")?.as_object_mut()?;
    result.entry("resultType").or_insert(json!("complete"));
    serde_json::to_vec(&v).ok()
}

/// Ends a federated session (DELETE /mcp).
pub async fn delete(
    State(st): State<Arc<AppState>>,
    Extension(Admitted(principal)): Extension<Admitted>,
    headers: HeaderMap,
) -> Response {
    let Some(sid) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return (StatusCode::METHOD_NOT_ALLOWED, "DELETE needs an Mcp-Session-Id").into_response();
    };
    let mut sessions = st.federation.sessions.lock().unwrap_or_else(|e| e.into_inner());
    match sessions.get(sid) {
        Some(s) if s.principal_id == principal.id && s.credential == credential_of(&principal) => {
            sessions.remove(sid);
            st.metrics().session_closed();
            StatusCode::OK.into_response()
        }
        _ => rpc_error(
            StatusCode::NOT_FOUND,
            None,
            ErrorCode::InvalidRequest,
            "session not found",
        ),
    }
}
