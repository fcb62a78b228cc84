//! The deprecated HTTP+SSE transport (2024-11-05) for old clients: `GET /sse/{server}` opens the
//! stream and names the endpoint; `POST /messages/{server}?sessionId=...` carries client messages,
//! whose answers come back on the stream. Governance is the same as on `/mcp/{server}`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use steward_mcp::{Message, sse};
use tokio::sync::mpsc;

use super::admit::Admitted;
use super::exchange::{Answered, Exchange};
use super::guard;
use super::mcp::rpc_error;
use super::reply::sse_response;
use super::state::AppState;
use crate::pipeline::{ClientHeaders, Delivery, Door, Ingress};

/// Where each legacy-SSE session's stream is written.
#[derive(Default)]
pub struct SseStreams {
    map: std::sync::Mutex<HashMap<String, mpsc::Sender<Vec<u8>>>>,
}

pub async fn open(
    State(st): State<Arc<AppState>>,
    Extension(Admitted(principal)): Extension<Admitted>,
    Path(server): Path<String>,
) -> Response {
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
    let session = match super::mcp::open_session(&st, &server, &principal, None, server_info, Door::LegacySse) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let sid = session.id.clone();
    let conn = session.conn.clone();
    let (tx, rx) = mpsc::channel::<Vec<u8>>(256);
    st.legacy_sse
        .map
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(sid.clone(), tx.clone());
    // Server-initiated messages go to the stream too, through the relay.
    if let Some(mut push) = conn.server_messages() {
        let tx = tx.clone();
        let (relay, rs) = (st.relay.clone(), session.relay.clone());
        tokio::spawn(async move {
            while let Some(m) = push.recv().await {
                let out = match relay.from_upstream(&rs, m) {
                    Delivery::Client(b) | Delivery::Answer { bytes: b, .. } => b,
                    Delivery::Drop => continue,
                };
                if tx.send(out).await.is_err() {
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
    Extension(Admitted(principal)): Extension<Admitted>,
    Path(server): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
    st.metrics().request(&server, msg.method_kind());
    let client = match super::mcp::client_headers(&headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let headers_owned = (
        client.method.map(str::to_string),
        client.name.map(str::to_string),
        client.protocol_version.map(str::to_string),
    );
    let timeout = st
        .upstreams
        .config(&server)
        .map(|c| c.timeout)
        .unwrap_or(Duration::from_secs(300));
    let ex = Exchange {
        st: st.clone(),
        session: session.relay.clone(),
        principal,
        conn: session.conn.clone(),
        timeout,
    };
    // Answers go out on the session's stream; the POST is accepted at once.
    tokio::spawn(async move {
        let client = ClientHeaders {
            method: headers_owned.0.as_deref(),
            name: headers_owned.1.as_deref(),
            protocol_version: headers_owned.2.as_deref(),
        };
        let ingress = Ingress {
            headers: Some(client),
            ..Ingress::default()
        };
        match ex.run(&body, ingress, true).await {
            Answered::One(b) | Answered::Rejected(_, b) => {
                let _ = out.send(b).await;
            }
            Answered::Stream(mut rx) => {
                while let Some(m) = rx.recv().await {
                    if out.send(m).await.is_err() {
                        break;
                    }
                }
            }
            Answered::Accepted => {}
        }
    });
    StatusCode::ACCEPTED.into_response()
}
