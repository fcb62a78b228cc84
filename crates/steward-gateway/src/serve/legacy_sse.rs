//! The deprecated HTTP+SSE transport (2024-11-05) for old clients: `GET /sse/{server}` opens the
//! stream and names the endpoint; `POST /messages/{server}?sessionId=...` carries client messages,
//! whose answers come back on the stream. Governance is the same as on `/mcp/{server}`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use steward_mcp::jsonrpc::{ErrorCode, error_response};
use steward_mcp::{Kind, Message, sse};
use tokio::sync::mpsc;

use super::guard;
use super::mcp::{Governed, govern_call, rpc_error};
use super::reply::{Expect, ReplyCtx, sse_response};
use super::state::{AppState, new_session_id, session_label};
use crate::pipeline::CallContext;
use crate::upstream::Forward;

/// Where each legacy-SSE session's stream is written.
#[derive(Default)]
pub struct SseStreams {
    map: std::sync::Mutex<HashMap<String, mpsc::Sender<Vec<u8>>>>,
}

pub async fn open(State(st): State<Arc<AppState>>, Path(server): Path<String>, headers: HeaderMap) -> Response {
    let principal = match guard::authenticate(&st, &headers, &format!("/mcp/{server}")).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let server_info = match guard::check_registry(&st, &server) {
        Ok(info) => info,
        Err(r) => return r,
    };
    if st.upstreams.config(&server).is_none() {
        return (
            StatusCode::NOT_FOUND,
            format!("no server named '{server}' on this gateway"),
        )
            .into_response();
    }
    let conn = match st.upstreams.session_conn(&server) {
        Ok(c) => c,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let owns = st
        .upstreams
        .config(&server)
        .is_some_and(|c| !c.shared && !matches!(c.transport, crate::config::Transport::Demo));
    let sid = new_session_id();
    let ctx = CallContext {
        principal: principal.clone(),
        server: server.clone(),
        server_info,
        door: "gateway",
        session: session_label(&sid),
        client_name: None,
        client_version: None,
    };
    let session = st
        .sessions
        .create(sid.clone(), &server, principal, conn.clone(), owns, ctx);
    st.metrics.session_opened();
    let (tx, rx) = mpsc::channel::<Vec<u8>>(256);
    st.legacy_sse
        .map
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(sid.clone(), tx.clone());
    // Server-initiated messages go to the stream too.
    if let Some(mut push) = conn.server_messages() {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(m) = push.recv().await {
                if tx.send(m).await.is_err() {
                    break;
                }
            }
        });
    }
    let endpoint = format!("event: endpoint\ndata: /messages/{server}?sessionId={sid}\n\n");
    struct Cleanup(Arc<AppState>, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            self.0
                .legacy_sse
                .map
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.1);
            if let Some(s) = self.0.sessions.remove(&self.1) {
                let st = self.0.clone();
                tokio::spawn(async move { super::close_session(&st, &s).await });
            }
        }
    }
    let cleanup = Cleanup(st.clone(), session.id.clone());
    let stopped = Box::pin(st.stopped());
    let stream = futures_util::stream::unfold(
        (Some(endpoint), rx, cleanup, stopped),
        |(first, mut rx, cleanup, mut stopped)| async move {
            if let Some(e) = first {
                return Some((Ok::<Bytes, Infallible>(Bytes::from(e)), (None, rx, cleanup, stopped)));
            }
            let next = tokio::select! {
                _ = &mut stopped => return None,
                next = tokio::time::timeout(Duration::from_secs(15), rx.recv()) => next,
            };
            let bytes = match next {
                Ok(Some(m)) => Bytes::from(sse::encode_message(&m)),
                Ok(None) => return None,
                Err(_) => Bytes::from_static(sse::KEEPALIVE),
            };
            Some((Ok(bytes), (None, rx, cleanup, stopped)))
        },
    );
    sse_response(Body::from_stream(stream), HeaderMap::new())
}

pub async fn message(
    State(st): State<Arc<AppState>>,
    Path(server): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let principal = match guard::authenticate(&st, &headers, &format!("/mcp/{server}")).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(sid) = q.get("sessionId") else {
        return (StatusCode::BAD_REQUEST, "missing sessionId").into_response();
    };
    let Some(session) = st.sessions.get(sid, &server, &principal) else {
        return (StatusCode::NOT_FOUND, "session not found").into_response();
    };
    let Some(out) = st
        .legacy_sse
        .map
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(sid)
        .cloned()
    else {
        return (StatusCode::NOT_FOUND, "session has no open stream").into_response();
    };
    session.touch();
    let msg = match Message::parse(&body) {
        Ok(m) => m,
        Err(e) => return rpc_error(StatusCode::BAD_REQUEST, None, e.code(), &e.to_string()),
    };
    let method = msg.method().unwrap_or_default().to_string();
    st.metrics
        .request(&server, if method.is_empty() { "response" } else { &method });
    if method == "initialize"
        && let Some((name, version)) = steward_mcp::era::client_info(msg.params)
    {
        let mut ctx = session.ctx.lock().unwrap_or_else(|e| e.into_inner());
        ctx.client_name = Some(name);
        ctx.client_version = version;
    }
    let ctx = session.ctx();
    let forward = Forward::default();
    if msg.kind != Kind::Request {
        if matches!(
            method.as_str(),
            "tools/call" | "tools/list" | "resources/read" | "prompts/get"
        ) {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                ErrorCode::InvalidRequest,
                &format!("{method} must be a request with an id"),
            );
        }
        return match session.conn.send(&body, &forward).await {
            Ok(()) => StatusCode::ACCEPTED.into_response(),
            Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        };
    }
    let Some(id) = msg.id_key() else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let id_json = id.as_json().to_string();
    let expect = match method.as_str() {
        "tools/call" => match govern_call(&st, &ctx, &msg, &id_json).await {
            Governed::Forward(e) => e,
            Governed::Refuse(refusal) => {
                let _ = out.send(refusal).await;
                return StatusCode::ACCEPTED.into_response();
            }
            Governed::Hold(held) => {
                // Answers go out on the session's stream: progress included.
                let progress = held.progress_token.clone().map(|t| {
                    let out = out.clone();
                    crate::approval::Progress::new(t, move |line| out.try_send(line).is_ok())
                });
                match (*held).wait(&st, &ctx, &id_json, progress).await {
                    Ok(e) => e,
                    Err(refusal) => {
                        let _ = out.send(refusal).await;
                        return StatusCode::ACCEPTED.into_response();
                    }
                }
            }
        },
        "tools/list" => Expect::ToolsList,
        _ => Expect::Other,
    };
    let mut rx = match session.conn.request(&body, &forward).await {
        Ok(rx) => rx,
        Err(e) => {
            let _ = out
                .send(error_response(
                    Some(&id_json),
                    ErrorCode::UpstreamUnavailable,
                    &e.to_string(),
                    None,
                ))
                .await;
            return StatusCode::ACCEPTED.into_response();
        }
    };
    let timeout = st
        .upstreams
        .config(&server)
        .map(|c| c.timeout)
        .unwrap_or(Duration::from_secs(300));
    let mut reply = ReplyCtx {
        st: st.clone(),
        ctx,
        id,
        expect,
        started: Instant::now(),
    };
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => {
                    let (bytes, done) = reply.process(m);
                    if out.send(bytes).await.is_err() || done {
                        break;
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    let _ = out
                        .send(error_response(
                            Some(&id_json),
                            ErrorCode::UpstreamUnavailable,
                            "upstream did not answer in time",
                            None,
                        ))
                        .await;
                    break;
                }
            }
        }
    });
    StatusCode::ACCEPTED.into_response()
}
