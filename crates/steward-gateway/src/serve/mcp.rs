//! `POST /mcp/{server}`: streamable HTTP, both protocol eras, through the decision pipeline.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use steward_mcp::era::{META_PROTOCOL_VERSION, request_meta};
use steward_mcp::jsonrpc::{ErrorCode, error_response};
use steward_mcp::tools::{CallParams, refusal_result};
use steward_mcp::{Era, Kind, Message};
use steward_policy::Principal;

use super::guard;
use super::hold::Held;
use super::reply::{self, Expect, ReplyCtx};
use super::state::{AppState, Session, new_session_id, session_label};
use crate::approval::Progress;
use crate::pipeline::CallContext;
use crate::upstream::{Conn, Forward};

pub const SESSION_HEADER: &str = "mcp-session-id";
const GOVERNED: [&str; 4] = ["tools/call", "tools/list", "resources/read", "prompts/get"];

/// A JSON-RPC error answer with an HTTP status.
pub fn rpc_error(status: StatusCode, id: Option<&str>, code: ErrorCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        error_response(id, code, message, None),
    )
        .into_response()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// How a request reaches its upstream: through a legacy session, or statelessly.
enum Route {
    Session(Arc<Session>),
    Stateless(Conn, Box<CallContext>),
}

pub async fn post(
    State(st): State<Arc<AppState>>,
    Path(server): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let resource = format!("/mcp/{server}");
    let principal = match guard::authenticate(&st, &headers, &resource).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let server_info = match guard::check_registry(&st, &server) {
        Ok(info) => info,
        Err(r) => return r,
    };
    let Some(cfg) = st.upstreams.config(&server) else {
        return rpc_error(
            StatusCode::NOT_FOUND,
            None,
            ErrorCode::InvalidRequest,
            &format!("no server named '{server}' on this gateway"),
        );
    };
    let timeout = cfg.timeout;
    let msg = match Message::parse(&body) {
        Ok(m) => m,
        Err(e) => return rpc_error(StatusCode::BAD_REQUEST, None, e.code(), &e.to_string()),
    };
    let method = msg.method().unwrap_or_default().to_string();
    st.metrics
        .request(&server, if method.is_empty() { "response" } else { &method });
    let id_json = msg.id.map(|i| i.get().to_string());
    let stateless = header_str(&headers, "mcp-protocol-version").is_some_and(|v| Era::of_version(v) == Era::Stateless)
        || Era::of_params(msg.params) == Some(Era::Stateless);
    if (stateless || headers.contains_key("mcp-method"))
        && let Err(problem) = validate_headers(&headers, &msg, stateless)
    {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            id_json.as_deref(),
            ErrorCode::HeaderMismatch,
            &format!("Header mismatch: {problem}"),
        );
    }
    let forward = Forward {
        protocol_version: header_str(&headers, "mcp-protocol-version").map(str::to_string),
        method: header_str(&headers, "mcp-method").map(str::to_string),
        name: header_str(&headers, "mcp-name").map(str::to_string),
    };

    let mut extra = HeaderMap::new();
    let route = match header_str(&headers, SESSION_HEADER) {
        Some(sid) if !stateless => match st.sessions.get(sid, &server, &principal) {
            Some(s) => {
                s.touch();
                Route::Session(s)
            }
            None => {
                return rpc_error(
                    StatusCode::NOT_FOUND,
                    id_json.as_deref(),
                    ErrorCode::InvalidRequest,
                    "session not found (expired, closed, or opened by someone else); initialize a new one",
                );
            }
        },
        _ if method == "initialize" => match open_session(&st, &server, &principal, &msg, server_info.clone()) {
            Ok(s) => {
                if let Ok(v) = HeaderValue::from_str(&s.id) {
                    extra.insert(SESSION_HEADER, v);
                }
                Route::Session(s)
            }
            Err(r) => return r,
        },
        _ if stateless => match st.upstreams.stateless_conn(&server) {
            Ok(conn) => {
                let (client_name, client_version) = steward_mcp::era::client_info(msg.params)
                    .map(|(n, v)| (Some(n), v))
                    .unwrap_or((None, None));
                let ctx = CallContext {
                    principal: principal.clone(),
                    server: server.clone(),
                    server_info: server_info.clone(),
                    door: "gateway",
                    session: "stateless".into(),
                    client_name,
                    client_version,
                };
                Route::Stateless(conn, Box::new(ctx))
            }
            Err(e) => {
                return rpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    id_json.as_deref(),
                    ErrorCode::UpstreamUnavailable,
                    &e.to_string(),
                );
            }
        },
        _ => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                id_json.as_deref(),
                ErrorCode::InvalidRequest,
                "missing Mcp-Session-Id header: send initialize first (or use protocol version 2026-07-28 with per-request _meta)",
            );
        }
    };
    let (conn, ctx) = match &route {
        Route::Session(s) => (s.conn.clone(), s.ctx()),
        Route::Stateless(c, ctx) => (c.clone(), (**ctx).clone()),
    };

    match msg.kind {
        Kind::Notification | Kind::Response => {
            if GOVERNED.contains(&method.as_str()) {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    None,
                    ErrorCode::InvalidRequest,
                    &format!("{method} must be a request with an id"),
                );
            }
            match conn.send(&body, &forward).await {
                Ok(()) => StatusCode::ACCEPTED.into_response(),
                Err(e) => rpc_error(
                    StatusCode::BAD_GATEWAY,
                    None,
                    ErrorCode::UpstreamUnavailable,
                    &e.to_string(),
                ),
            }
        }
        Kind::Request => {
            let Some(id) = msg.id_key() else {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    None,
                    ErrorCode::InvalidRequest,
                    "request without id",
                );
            };
            let accepts_sse = header_str(&headers, "accept").is_some_and(|a| a.contains("text/event-stream"));
            let expect = match method.as_str() {
                "tools/call" => match govern_call(&st, &ctx, &msg, id_json.as_deref().unwrap_or("null")).await {
                    Governed::Forward(expect) => expect,
                    Governed::Refuse(refusal) => return reply::json(refusal, extra),
                    // SSE clients get the answer stream at once: progress while held, then the result.
                    Governed::Hold(held) if accepts_sse => {
                        return (*held).sse(st.clone(), ctx, id, conn, body, forward, timeout, extra);
                    }
                    Governed::Hold(held) => match (*held)
                        .wait(&st, &ctx, id_json.as_deref().unwrap_or("null"), None)
                        .await
                    {
                        Ok(expect) => expect,
                        Err(refusal) => return reply::json(refusal, extra),
                    },
                },
                "tools/list" => Expect::ToolsList,
                _ => Expect::Other,
            };
            let rx = match conn.request(&body, &forward).await {
                Ok(rx) => rx,
                Err(e) => {
                    if let Route::Session(s) = &route
                        && !s.conn.alive()
                    {
                        st.sessions.remove(&s.id);
                    }
                    return rpc_error(
                        StatusCode::BAD_GATEWAY,
                        id_json.as_deref(),
                        ErrorCode::UpstreamUnavailable,
                        &e.to_string(),
                    );
                }
            };
            let reply = ReplyCtx {
                st: st.clone(),
                ctx,
                id,
                expect,
                started: Instant::now(),
            };
            reply::respond(reply, rx, accepts_sse, timeout, extra).await
        }
    }
}

/// What to do with a `tools/call`.
pub(super) enum Governed {
    Forward(Expect),
    /// The refusal to answer with.
    Refuse(Vec<u8>),
    /// Wait for a human's decision (see `hold`).
    Hold(Box<Held>),
}

/// Decides a `tools/call`.
pub(super) async fn govern_call(st: &Arc<AppState>, ctx: &CallContext, msg: &Message<'_>, id: &str) -> Governed {
    let era = Era::of_params(msg.params).unwrap_or(Era::Legacy);
    let params = match CallParams::parse(msg.params) {
        Ok(p) => p,
        Err(e) => return Governed::Refuse(error_response(Some(id), ErrorCode::InvalidParams, &e, None)),
    };
    let permit = match st.limiter.admit(&ctx.principal.id, &params.name) {
        Ok(p) => p,
        Err(limited) => {
            st.metrics.rate_limited();
            let decision_id = st.pipeline.limited(ctx, &params.name, &limited.reason);
            let text = format!(
                "Steward refused the call to {}/{}: {}. Retry after {} s, and slow down. Decision {decision_id}.",
                ctx.server,
                params.name,
                limited.reason,
                limited.retry_after.as_secs()
            );
            return Governed::Refuse(refusal_result(id, &text, &decision_id, era));
        }
    };
    let args = params.args();
    let annotations = st.pipeline.annotations(&ctx.server, &params.name);
    let verdict = st
        .pipeline
        .tool_call(ctx, &params.name, &args, annotations.as_ref())
        .await;
    st.metrics
        .decision(verdict.decision.effect.as_str(), verdict.decision.risk.as_str());
    if verdict.must_hold() {
        return Governed::Hold(Box::new(Held {
            verdict,
            tool: params.name,
            era,
            permit,
            progress_token: Progress::token(msg.params),
        }));
    }
    if verdict.forward {
        Governed::Forward(Expect::ToolCall {
            decision_id: verdict.decision_id,
            tool: params.name,
            _permit: permit,
        })
    } else {
        Governed::Refuse(refusal_result(id, &verdict.message, &verdict.decision_id, era))
    }
}

fn open_session(
    st: &Arc<AppState>,
    server: &str,
    principal: &Principal,
    msg: &Message<'_>,
    server_info: crate::pipeline::ServerInfo,
) -> Result<Arc<Session>, Response> {
    let conn = st.upstreams.session_conn(server).map_err(|e| {
        rpc_error(
            StatusCode::BAD_GATEWAY,
            msg.id.map(|i| i.get()),
            ErrorCode::UpstreamUnavailable,
            &e.to_string(),
        )
    })?;
    let owns_conn = st
        .upstreams
        .config(server)
        .is_some_and(|c| !c.shared && !matches!(c.transport, crate::config::Transport::Demo));
    let (client_name, client_version) = steward_mcp::era::client_info(msg.params)
        .map(|(n, v)| (Some(n), v))
        .unwrap_or((None, None));
    let id = new_session_id();
    let ctx = CallContext {
        principal: principal.clone(),
        server: server.to_string(),
        server_info,
        door: "gateway",
        session: session_label(&id),
        client_name,
        client_version,
    };
    st.metrics.session_opened();
    tracing::info!(server, principal = %principal.id, "session opened");
    Ok(st.sessions.create(id, server, principal.clone(), conn, owns_conn, ctx))
}

/// 2026-07-28 requires `Mcp-Method`, `Mcp-Name` and `MCP-Protocol-Version` to match the body.
fn validate_headers(headers: &HeaderMap, msg: &Message<'_>, required: bool) -> Result<(), String> {
    let method = msg.method().unwrap_or_default();
    match header_str(headers, "mcp-method") {
        Some(h) if h != method => {
            return Err(format!(
                "Mcp-Method header value '{h}' does not match body value '{method}'"
            ));
        }
        None if required && msg.kind == Kind::Request => return Err("the Mcp-Method header is missing".into()),
        _ => {}
    }
    if matches!(method, "tools/call" | "resources/read" | "prompts/get") {
        let params: serde_json::Value = msg
            .params
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or_default();
        let body_name = params
            .get("name")
            .or_else(|| params.get("uri"))
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        match header_str(headers, "mcp-name").map(decode_header_value) {
            Some(Ok(h)) if h != body_name => {
                return Err(format!(
                    "Mcp-Name header value '{h}' does not match body value '{body_name}'"
                ));
            }
            Some(Err(e)) => return Err(e),
            None if required => return Err("the Mcp-Name header is missing".into()),
            _ => {}
        }
    }
    if required {
        let body_version = request_meta(msg.params).and_then(|m| {
            m.get(META_PROTOCOL_VERSION)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        });
        match (header_str(headers, "mcp-protocol-version"), body_version) {
            (Some(h), Some(b)) if h != b => {
                return Err(format!(
                    "MCP-Protocol-Version header value '{h}' does not match body value '{b}'"
                ));
            }
            (None, _) => return Err("the MCP-Protocol-Version header is missing".into()),
            _ => {}
        }
    }
    Ok(())
}

/// Decodes `=?base64?...?=` header values (2026-07-28 value encoding).
fn decode_header_value(v: &str) -> Result<String, String> {
    match v.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| "a base64-encoded header value is malformed".to_string()),
        None => Ok(v.to_string()),
    }
}
