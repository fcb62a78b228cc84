//! `GET /mcp/{server}` (the legacy session's server-to-client stream) and `DELETE` (end it).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use steward_mcp::jsonrpc::ErrorCode;
use steward_mcp::sse;

use super::admit::Admitted;
use super::mcp::{SESSION_HEADER, rpc_error};
use super::reply::sse_response;
use super::state::AppState;
use crate::pipeline::Delivery;

pub async fn get(
    State(st): State<Arc<AppState>>,
    Extension(Admitted(principal)): Extension<Admitted>,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(sid) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            "GET needs an Mcp-Session-Id (2026-07-28 clients use subscriptions/listen)",
        )
            .into_response();
    };
    let Some(session) = st.sessions.get(sid, &server, &principal) else {
        return rpc_error(
            StatusCode::NOT_FOUND,
            None,
            ErrorCode::InvalidRequest,
            "session not found",
        );
    };
    {
        let mut listening = session.listening.lock().unwrap_or_else(|e| e.into_inner());
        if *listening {
            return (StatusCode::CONFLICT, "this session already has a GET stream open").into_response();
        }
        *listening = true;
    }
    let Some(rx) = session.conn.server_messages() else {
        *session.listening.lock().unwrap_or_else(|e| e.into_inner()) = false;
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            "this upstream sends no server-initiated messages",
        )
            .into_response();
    };
    struct Listening(Arc<super::state::Session>);
    impl Drop for Listening {
        fn drop(&mut self) {
            *self.0.listening.lock().unwrap_or_else(|e| e.into_inner()) = false;
        }
    }
    let guard = Listening(session);
    let stopped = Box::pin(st.stopped());
    let relay = st.relay.clone();
    let state = (rx, guard, stopped, relay);
    let stream = futures_util::stream::unfold(state, |(mut rx, guard, mut stopped, relay)| async move {
        loop {
            let next = tokio::select! {
                _ = &mut stopped => return None,
                next = tokio::time::timeout(Duration::from_secs(15), rx.recv()) => next,
            };
            match next {
                Ok(Some(m)) => {
                    guard.0.touch();
                    // Server-initiated messages go through the relay: ids remapped, params inspected.
                    let out = match relay.from_upstream(&guard.0.relay, m) {
                        Delivery::Client(b) | Delivery::Answer { bytes: b, .. } => b,
                        Delivery::Drop => continue,
                    };
                    return Some((
                        Ok::<Bytes, Infallible>(Bytes::from(sse::encode_message(&out))),
                        (rx, guard, stopped, relay),
                    ));
                }
                Ok(None) => return None,
                Err(_) => return Some((Ok(Bytes::from_static(sse::KEEPALIVE)), (rx, guard, stopped, relay))),
            }
        }
    });
    sse_response(Body::from_stream(stream), HeaderMap::new())
}

pub async fn delete(
    State(st): State<Arc<AppState>>,
    Extension(Admitted(principal)): Extension<Admitted>,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(sid) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return (StatusCode::METHOD_NOT_ALLOWED, "DELETE needs an Mcp-Session-Id").into_response();
    };
    if st.sessions.get(sid, &server, &principal).is_none() {
        return rpc_error(
            StatusCode::NOT_FOUND,
            None,
            ErrorCode::InvalidRequest,
            "session not found",
        );
    }
    if let Some(s) = st.sessions.remove(sid) {
        super::close_session(&st, &s).await;
    }
    StatusCode::OK.into_response()
}
