//! `POST /mcp`: the federated endpoint. Steward answers as an MCP server of its own whose tools
//! are every upstream tool the principal may use, named `server__tool` so that no server can
//! shadow another's tool. Upstreams are reached through connections the gateway initializes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use steward_mcp::jsonrpc::{ErrorCode, error_response, replace_id, result_response};
use steward_mcp::tools::{CallParams, refusal_result};
use steward_mcp::{Era, IdKey, Kind, Message};
use steward_policy::Principal;

use super::guard;
use super::mcp::{SESSION_HEADER, rpc_error};
use super::reply;
use super::state::{AppState, new_session_id};
use crate::pipeline::CallContext;
use crate::upstream::{Conn, Forward};

/// Separates server and tool in federated tool names.
pub const SEPARATOR: &str = "__";
const INIT_TIMEOUT: Duration = Duration::from_secs(30);
const LIST_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_PAGES: usize = 20;

/// A federated client session (legacy era), bound to its principal.
pub struct FedSession {
    principal_id: String,
    ctx: CallContext,
    /// Server-to-client requests relayed to the client: our id → (server, the server's raw id).
    relayed: Mutex<HashMap<String, (String, String)>>,
}

#[derive(Default)]
pub struct Federation {
    sessions: Mutex<HashMap<String, Arc<FedSession>>>,
    /// Upstream connections this endpoint has initialized, by server.
    ready: tokio::sync::Mutex<HashMap<String, Conn>>,
    next: AtomicU64,
}

pub async fn post(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let principal = match guard::authenticate(&st, &headers, "/mcp").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let msg = match Message::parse(&body) {
        Ok(m) => m,
        Err(e) => return rpc_error(StatusCode::BAD_REQUEST, None, e.code(), &e.to_string()),
    };
    let method = msg.method().unwrap_or_default().to_string();
    st.metrics
        .request("*", if method.is_empty() { "response" } else { &method });
    let id = msg.id.map(|i| i.get().to_string());
    let stateless = Era::of_params(msg.params) == Some(Era::Stateless);
    let fed = &st.federation;

    let session = match headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
        Some(sid) if !stateless => match fed.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(sid) {
            Some(s) if s.principal_id == principal.id => Some(s.clone()),
            _ => {
                return rpc_error(
                    StatusCode::NOT_FOUND,
                    id.as_deref(),
                    ErrorCode::InvalidRequest,
                    "session not found; initialize a new one",
                );
            }
        },
        _ => None,
    };
    let client = steward_mcp::era::client_info(msg.params);
    let ctx = match &session {
        Some(s) => s.ctx.clone(),
        None => CallContext {
            principal: principal.clone(),
            server: "*".into(),
            server_info: Default::default(),
            door: "gateway",
            session: if stateless { "stateless".into() } else { String::new() },
            client_name: client.as_ref().map(|c| c.0.clone()),
            client_version: client.as_ref().and_then(|c| c.1.clone()),
        },
    };

    match msg.kind {
        Kind::Response => {
            let Some(s) = &session else {
                return StatusCode::ACCEPTED.into_response();
            };
            let our_id = msg.id.map(|i| i.get().to_string()).unwrap_or_default();
            let target = s.relayed.lock().unwrap_or_else(|e| e.into_inner()).remove(&our_id);
            if let Some((server, original)) = target
                && let Ok(conn) = ready_conn(&st, &server).await
                && let Some(bytes) = replace_id(&body, &msg, &original)
            {
                let _ = conn.send(&bytes, &Forward::default()).await;
            }
            StatusCode::ACCEPTED.into_response()
        }
        Kind::Notification => StatusCode::ACCEPTED.into_response(),
        Kind::Request => {
            let id = id.unwrap_or_else(|| "null".into());
            let finish = |result: Value| {
                let mut result = result;
                if stateless {
                    result["resultType"] = json!("complete");
                }
                reply::json(result_response(&id, &result), HeaderMap::new())
            };
            match method.as_str() {
                "initialize" => {
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
                    let mut sctx = ctx.clone();
                    sctx.session = super::state::session_label(&sid);
                    fed.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(
                        sid.clone(),
                        Arc::new(FedSession {
                            principal_id: principal.id.clone(),
                            ctx: sctx,
                            relayed: Mutex::new(HashMap::new()),
                        }),
                    );
                    st.metrics.session_opened();
                    let mut extra = HeaderMap::new();
                    if let Ok(v) = HeaderValue::from_str(&sid) {
                        extra.insert(SESSION_HEADER, v);
                    }
                    let result = json!({
                        "protocolVersion": version,
                        "capabilities": { "tools": { "listChanged": false } },
                        "serverInfo": { "name": "steward-federation", "version": env!("CARGO_PKG_VERSION") },
                        "instructions": format!("Tools of every server behind this Steward gateway, named <server>{SEPARATOR}<tool>."),
                    });
                    reply::json(result_response(&id, &result), extra)
                }
                "server/discover" => finish(json!({
                    "supportedVersions": ["2026-07-28"],
                    "capabilities": { "tools": { "listChanged": false } },
                    "_meta": { "io.modelcontextprotocol/serverInfo": { "name": "steward-federation", "version": env!("CARGO_PKG_VERSION") } },
                })),
                "ping" => finish(json!({})),
                "tools/list" => {
                    let mut r = json!({ "tools": list_tools(&st, &ctx).await });
                    if stateless {
                        r["ttlMs"] = json!(0);
                        r["cacheScope"] = json!("private");
                    }
                    finish(r)
                }
                "resources/list" | "prompts/list" | "resources/templates/list" => {
                    let key = match method.as_str() {
                        "resources/list" => "resources",
                        "prompts/list" => "prompts",
                        _ => "resourceTemplates",
                    };
                    finish(json!({ key: [] }))
                }
                "tools/call" => call_tool(&st, &ctx, session.as_ref(), &msg, &id, stateless, &headers).await,
                _ => rpc_error(
                    StatusCode::OK,
                    Some(&id),
                    ErrorCode::MethodNotFound,
                    &format!("the federated endpoint does not serve {method}; use /mcp/<server>"),
                ),
            }
        }
    }
}

/// An upstream connection the gateway has initialized for federation.
async fn ready_conn(st: &AppState, server: &str) -> Result<Conn, String> {
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
                        return Err(format!("upstream refused initialize: {}", String::from_utf8_lossy(&m)));
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

/// Sends one request the gateway itself makes and waits for its response.
async fn ask(st: &AppState, server: &str, method: &str, params: Value, timeout: Duration) -> Result<Value, String> {
    let conn = ready_conn(st, server).await?;
    let id = format!("\"steward-fed-{}\"", st.federation.next.fetch_add(1, Ordering::Relaxed));
    let line = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#);
    let mut rx = conn
        .request(
            line.as_bytes(),
            &Forward {
                method: Some(method.into()),
                ..Forward::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) => {
                let v: Value = serde_json::from_slice(&m).map_err(|e| e.to_string())?;
                if v.get("id").is_some() && v.get("method").is_none() {
                    if let Some(e) = v.get("error") {
                        return Err(e.to_string());
                    }
                    return Ok(v.get("result").cloned().unwrap_or(Value::Null));
                }
            }
            Ok(None) => return Err("upstream closed the connection".into()),
            Err(_) => return Err(format!("no answer to {method} within {}s", timeout.as_secs())),
        }
    }
}

async fn list_tools(st: &Arc<AppState>, ctx: &CallContext) -> Vec<Value> {
    let servers: Vec<String> = st
        .upstreams
        .names()
        .filter(|s| guard::check_registry(st, s).is_ok())
        .cloned()
        .collect();
    let lists = futures_util::future::join_all(servers.iter().map(|server| async move {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            match ask(st, server, "tools/list", params, LIST_TIMEOUT).await {
                Ok(r) => {
                    tools.extend(r.get("tools").and_then(Value::as_array).cloned().unwrap_or_default());
                    cursor = r.get("nextCursor").and_then(Value::as_str).map(str::to_string);
                    if cursor.is_none() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(%server, error = %e, "federation: cannot list tools; leaving this server out");
                    break;
                }
            }
        }
        (server.clone(), tools)
    }))
    .await;
    let mut out = Vec::new();
    for (server, tools) in lists {
        let mut sctx = ctx.clone();
        sctx.server = server.clone();
        let mut tools = tools;
        st.pipeline.govern_tools(&sctx, &mut tools);
        for mut tool in tools {
            let Some(name) = tool.get("name").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            tool["name"] = json!(format!("{server}{SEPARATOR}{name}"));
            out.push(tool);
        }
    }
    out
}

async fn call_tool(
    st: &Arc<AppState>,
    ctx: &CallContext,
    session: Option<&Arc<FedSession>>,
    msg: &Message<'_>,
    id: &str,
    stateless: bool,
    headers: &HeaderMap,
) -> Response {
    let era = if stateless { Era::Stateless } else { Era::Legacy };
    let params = match CallParams::parse(msg.params) {
        Ok(p) => p,
        Err(e) => {
            return reply::json(
                error_response(Some(id), ErrorCode::InvalidParams, &e, None),
                HeaderMap::new(),
            );
        }
    };
    let Some((server, tool)) = params
        .name
        .split_once(SEPARATOR)
        .filter(|(s, _)| st.upstreams.config(s).is_some())
    else {
        return reply::json(
            error_response(
                Some(id),
                ErrorCode::InvalidParams,
                &format!(
                    "unknown tool '{}': federated tools are named <server>{SEPARATOR}<tool>",
                    params.name
                ),
                None,
            ),
            HeaderMap::new(),
        );
    };
    let mut sctx = ctx.clone();
    sctx.server = server.to_string();
    match guard::check_registry(st, server) {
        Ok(info) => sctx.server_info = info,
        Err(r) => return r,
    }
    let permit = match st.limiter.admit(&ctx.principal.id, &params.name) {
        Ok(p) => p,
        Err(limited) => {
            st.metrics.rate_limited();
            let decision_id = st.pipeline.limited(&sctx, tool, &limited.reason);
            let text = format!(
                "Steward refused the call to {server}/{tool}: {}. Retry after {} s. Decision {decision_id}.",
                limited.reason,
                limited.retry_after.as_secs()
            );
            return reply::json(refusal_result(id, &text, &decision_id, era), HeaderMap::new());
        }
    };
    let args = params.args();
    let annotations = st.pipeline.annotations(server, tool);
    let verdict = st.pipeline.tool_call(&sctx, tool, &args, annotations.as_ref()).await;
    st.metrics
        .decision(verdict.decision.effect.as_str(), verdict.decision.risk.as_str());
    if !verdict.forward {
        return reply::json(
            refusal_result(id, &verdict.message, &verdict.decision_id, era),
            HeaderMap::new(),
        );
    }
    let conn = match ready_conn(st, server).await {
        Ok(c) => c,
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
    // The upstream sees its own tool name; everything else in the request is the client's.
    let mut request: Value = match serde_json::from_slice(msg.params.map(|p| p.get().as_bytes()).unwrap_or(b"{}")) {
        Ok(v) => v,
        Err(e) => {
            return reply::json(
                error_response(Some(id), ErrorCode::InvalidParams, &e.to_string(), None),
                HeaderMap::new(),
            );
        }
    };
    request["name"] = json!(tool);
    if let Some(meta) = request.get_mut("_meta").and_then(Value::as_object_mut) {
        // The gateway speaks the legacy era to upstreams.
        meta.retain(|k, _| !k.starts_with("io.modelcontextprotocol/"));
    }
    let line = json!({ "jsonrpc": "2.0", "id": serde_json::from_str::<Value>(id).unwrap_or(Value::Null), "method": "tools/call", "params": request }).to_string();
    let rx = match conn
        .request(
            line.as_bytes(),
            &Forward {
                method: Some("tools/call".into()),
                name: Some(tool.to_string()),
                ..Forward::default()
            },
        )
        .await
    {
        Ok(rx) => rx,
        Err(e) => {
            return reply::json(
                error_response(Some(id), ErrorCode::UpstreamUnavailable, &e.to_string(), None),
                HeaderMap::new(),
            );
        }
    };
    // Server-to-client requests during the call get ids of ours, so that upstreams' ids never collide.
    let relay_session = session.cloned();
    let server_name = server.to_string();
    let next = &st.federation.next;
    let mut rx = rx;
    let (tx, out_rx) = tokio::sync::mpsc::channel(64);
    let prefix = format!("fed-{}-", next.fetch_add(1, Ordering::Relaxed));
    tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(m) = rx.recv().await {
            let mut out = m.clone();
            if let Ok(msg) = Message::parse(&m) {
                if msg.kind == Kind::Request
                    && let (Some(s), Some(orig)) = (&relay_session, msg.id)
                {
                    n += 1;
                    let ours = format!("\"{prefix}{n}\"");
                    s.relayed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(ours.clone(), (server_name.clone(), orig.get().to_string()));
                    out = replace_id(&m, &msg, &ours).unwrap_or(out);
                } else if msg.kind == Kind::Response && stateless {
                    out = with_result_type(&m).unwrap_or(out);
                }
            }
            if tx.send(out).await.is_err() {
                break;
            }
        }
    });
    let accepts_sse = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    let timeout = st
        .upstreams
        .config(server)
        .map(|c| c.timeout)
        .unwrap_or(Duration::from_secs(300));
    let reply = reply::ReplyCtx {
        st: st.clone(),
        ctx: sctx,
        id: IdKey::from_raw(
            &serde_json::value::RawValue::from_string(id.to_string())
                .unwrap_or_else(|_| serde_json::value::RawValue::from_string("null".into()).expect("null is JSON")),
        ),
        expect: reply::Expect::ToolCall {
            decision_id: verdict.decision_id,
            tool: tool.to_string(),
            _permit: permit,
        },
        started: Instant::now(),
    };
    reply::respond(reply, out_rx, accepts_sse, timeout, HeaderMap::new()).await
}

/// Adds `resultType: "complete"` to a legacy upstream's result for a 2026-07-28 client.
fn with_result_type(line: &[u8]) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(line).ok()?;
    let result = v.get_mut("result")?.as_object_mut()?;
    result.entry("resultType").or_insert(json!("complete"));
    serde_json::to_vec(&v).ok()
}

/// Ends a federated session (DELETE /mcp).
pub async fn delete(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let principal: Principal = match guard::authenticate(&st, &headers, "/mcp").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(sid) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return (StatusCode::METHOD_NOT_ALLOWED, "DELETE needs an Mcp-Session-Id").into_response();
    };
    let mut sessions = st.federation.sessions.lock().unwrap_or_else(|e| e.into_inner());
    match sessions.get(sid) {
        Some(s) if s.principal_id == principal.id => {
            sessions.remove(sid);
            st.metrics.session_closed();
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
