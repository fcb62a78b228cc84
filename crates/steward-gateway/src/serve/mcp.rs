//! `POST /mcp/{server}`: streamable HTTP, both protocol eras. Routing (which session, which
//! upstream connection) happens here; every message is governed by the relay.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use steward_mcp::jsonrpc::{ErrorCode, error_response};
use steward_mcp::{Era, Message, Method};
use steward_policy::Principal;

use super::admit::Admitted;
use super::exchange::Exchange;
use super::guard;
use super::state::{AppState, Session, new_session_id, session_label};
use crate::pipeline::{self, ClientHeaders, Door, Ingress, ServerInfo};

pub const SESSION_HEADER: &str = "mcp-session-id";

/// A JSON-RPC error answer with an HTTP status.
pub fn rpc_error(status: StatusCode, id: Option<&str>, code: ErrorCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        error_response(id, code, message, None),
    )
        .into_response()
}

/// A header as text; `Err` (a 400) when it is present but not visible ASCII.
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, Response> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| {
            rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                ErrorCode::InvalidRequest,
                &format!("the {name} header is not visible ASCII"),
            )
        }),
    }
}

/// The routing headers the client sent, for the relay to check against the body.
pub fn client_headers(headers: &HeaderMap) -> Result<ClientHeaders<'_>, Response> {
    Ok(ClientHeaders {
        method: header_str(headers, "mcp-method")?,
        name: header_str(headers, "mcp-name")?,
        protocol_version: header_str(headers, "mcp-protocol-version")?,
    })
}

/// Whether a request belongs to the 2026-07-28 era.
pub fn is_stateless(headers: &HeaderMap, msg: &Message<'_>) -> bool {
    headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| Era::of_version(v) == Era::Stateless)
        || Era::of_params(msg.params) == Some(Era::Stateless)
}

pub fn accepts_sse(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"))
}

pub async fn post(
    State(st): State<Arc<AppState>>,
    Extension(Admitted(principal)): Extension<Admitted>,
    Path(server): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
    let method = msg.method_kind();
    st.metrics().request(&server, method);
    let stateless = is_stateless(&headers, &msg);
    let client = match client_headers(&headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let session_id = match header_str(&headers, SESSION_HEADER) {
        Ok(s) => s,
        Err(r) => return r,
    };

    let mut extra = HeaderMap::new();
    let (relay_session, conn) = match session_id {
        Some(sid) if !stateless => match st.sessions.get(sid, &server, &principal) {
            Some(s) => {
                s.touch();
                (s.relay.clone(), s.conn.clone())
            }
            None => {
                return rpc_error(
                    StatusCode::NOT_FOUND,
                    msg.raw_id(),
                    ErrorCode::InvalidRequest,
                    "session not found (expired, closed, or opened with another credential); initialize a new one",
                );
            }
        },
        _ if method == Method::Initialize && !stateless => {
            match open_session(&st, &server, &principal, msg.raw_id(), server_info, Door::Gateway) {
                Ok(s) => {
                    if let Ok(v) = HeaderValue::from_str(&s.id) {
                        extra.insert(SESSION_HEADER, v);
                    }
                    (s.relay.clone(), s.conn.clone())
                }
                Err(r) => return r,
            }
        }
        _ if stateless => match st.upstreams.stateless_conn(&server) {
            Ok(conn) => {
                let s =
                    pipeline::Session::new(server.clone(), Door::Gateway, "stateless").with_server_info(server_info);
                (Arc::new(s), conn)
            }
            Err(e) => {
                return rpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    msg.raw_id(),
                    ErrorCode::UpstreamUnavailable,
                    &e.to_string(),
                );
            }
        },
        _ => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                msg.raw_id(),
                ErrorCode::InvalidRequest,
                "missing Mcp-Session-Id header: send initialize first (or use protocol version 2026-07-28 with per-request _meta)",
            );
        }
    };
    let ex = Exchange {
        st: st.clone(),
        session: relay_session,
        principal,
        conn,
        timeout,
    };
    let ingress = Ingress {
        headers: Some(client),
        stateless,
        ..Ingress::default()
    };
    ex.run(&body, ingress, accepts_sse(&headers)).await.into_response(extra)
}

/// Opens a legacy session for `principal`, within the session and child caps.
pub fn open_session(
    st: &Arc<AppState>,
    server: &str,
    principal: &Principal,
    reply_id: Option<&str>,
    server_info: ServerInfo,
    door: Door,
) -> Result<Arc<Session>, Response> {
    let limits = &st.cfg.limits;
    let owns_conn = st
        .upstreams
        .config(server)
        .is_some_and(|c| !c.shared && !matches!(c.transport, crate::config::Transport::Demo));
    let child = owns_conn
        && st
            .upstreams
            .config(server)
            .is_some_and(|c| matches!(c.transport, crate::config::Transport::Stdio { .. }));
    let refuse = |why: String| {
        tracing::warn!(server, principal = %principal.id, %why, "session refused");
        rpc_error(StatusCode::TOO_MANY_REQUESTS, reply_id, ErrorCode::InvalidRequest, &why)
    };
    if st.sessions.count_for(&principal.id) >= limits.sessions_per_principal {
        return Err(refuse(format!(
            "{} already has {} open sessions (limits.sessions_per_principal); close one (DELETE) or wait for it to expire",
            principal.id, limits.sessions_per_principal
        )));
    }
    if st.sessions.len() >= limits.max_sessions {
        return Err(refuse(format!(
            "the gateway has {} open sessions (limits.max_sessions); try again later",
            limits.max_sessions
        )));
    }
    let (children, mine) = st.sessions.children(&principal.id);
    if child && mine >= limits.children_per_principal {
        return Err(refuse(format!(
            "{} already has {} server processes running for its sessions (limits.children_per_principal); close a session (DELETE) or wait for one to expire",
            principal.id, limits.children_per_principal
        )));
    }
    if child && children >= limits.max_children {
        return Err(refuse(format!(
            "the gateway runs {} server processes for sessions (limits.max_children); try again later",
            limits.max_children
        )));
    }
    let conn = st.upstreams.session_conn(server).map_err(|e| {
        rpc_error(
            StatusCode::BAD_GATEWAY,
            reply_id,
            ErrorCode::UpstreamUnavailable,
            &e.to_string(),
        )
    })?;
    let id = new_session_id();
    let relay = pipeline::Session::new(server, door, session_label(&id)).with_server_info(server_info);
    st.metrics().session_opened();
    tracing::info!(server, principal = %principal.id, "session opened");
    let conn = super::state::SessionConn { conn, owns_conn, child };
    Ok(st.sessions.create(id, server, principal, conn, relay))
}
