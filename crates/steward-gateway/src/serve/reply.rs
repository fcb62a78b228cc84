//! Turning an upstream's replies into the HTTP answer: JSON when the response comes first,
//! otherwise an SSE stream; the response itself is governed on the way (tools/list filtering,
//! outcome audit).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use steward_mcp::jsonrpc::{ErrorCode, error_response};
use steward_mcp::{IdKey, Kind, Message, sse};

use super::limits::Permit;
use super::state::AppState;
use crate::pipeline::CallContext;
use crate::upstream::Replies;

/// What the request being answered was, so its response can be governed.
pub enum Expect {
    ToolsList,
    ToolCall {
        decision_id: String,
        tool: String,
        _permit: Permit,
    },
    Other,
}

pub struct ReplyCtx {
    pub st: Arc<AppState>,
    pub ctx: CallContext,
    pub id: IdKey,
    pub expect: Expect,
    pub started: Instant,
}

impl ReplyCtx {
    /// Governs one message; returns the bytes to send and whether it was the final response.
    pub fn process(&mut self, bytes: Vec<u8>) -> (Vec<u8>, bool) {
        let Ok(msg) = Message::parse(&bytes) else {
            return (bytes, false);
        };
        if msg.kind != Kind::Response || msg.id_key().as_ref() != Some(&self.id) {
            return (bytes, false);
        }
        self.st
            .metrics
            .upstream_latency(&self.ctx.server, self.started.elapsed());
        let out = match &self.expect {
            Expect::ToolsList => self.st.pipeline.govern_tools_list(&self.ctx, &bytes).unwrap_or(bytes),
            Expect::ToolCall { decision_id, tool, .. } => {
                self.st
                    .pipeline
                    .govern_result(&self.ctx, decision_id, tool, bytes, self.started)
            }
            Expect::Other => bytes,
        };
        (out, true)
    }

    fn timeout_error(&self, after: Duration) -> Vec<u8> {
        error_response(
            Some(self.id.as_json()),
            ErrorCode::UpstreamUnavailable,
            &format!(
                "upstream server '{}' did not answer within {}s",
                self.ctx.server,
                after.as_secs()
            ),
            None,
        )
    }

    fn closed_error(&self) -> Vec<u8> {
        error_response(
            Some(self.id.as_json()),
            ErrorCode::UpstreamUnavailable,
            &format!(
                "upstream server '{}' closed the connection before answering",
                self.ctx.server
            ),
            None,
        )
    }
}

/// A JSON-RPC message as an HTTP 200 JSON answer.
pub fn json(bytes: Vec<u8>, extra: HeaderMap) -> Response {
    let mut resp = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], bytes).into_response();
    resp.headers_mut().extend(extra);
    resp
}

/// Answers a forwarded request from its replies.
pub async fn respond(
    mut reply: ReplyCtx,
    mut rx: Replies,
    accepts_sse: bool,
    timeout: Duration,
    extra: HeaderMap,
) -> Response {
    let deadline = tokio::time::Instant::now() + timeout;
    let first = match tokio::time::timeout_at(deadline, rx.recv()).await {
        Ok(Some(m)) => m,
        Ok(None) => return json(reply.closed_error(), extra),
        Err(_) => return json(reply.timeout_error(timeout), extra),
    };
    let (out, done) = reply.process(first);
    if done {
        return json(out, extra);
    }
    if !accepts_sse {
        // The client takes one JSON answer only: wait for the response, dropping the rest.
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => {
                    let (out, done) = reply.process(m);
                    if done {
                        return json(out, extra);
                    }
                }
                Ok(None) => return json(reply.closed_error(), extra),
                Err(_) => return json(reply.timeout_error(timeout), extra),
            }
        }
    }
    let state = (Some(out), reply, rx, false);
    let stream = futures_util::stream::unfold(state, move |(pending, mut reply, mut rx, finished)| async move {
        if let Some(first) = pending {
            return Some((
                Ok::<Bytes, Infallible>(Bytes::from(sse::encode_message(&first))),
                (None, reply, rx, false),
            ));
        }
        if finished {
            return None;
        }
        // Wake at least every 15 s to keep the stream alive through proxies.
        let wait = deadline.min(tokio::time::Instant::now() + Duration::from_secs(15));
        let (bytes, done) = match tokio::time::timeout_at(wait, rx.recv()).await {
            Ok(Some(m)) => {
                let (out, done) = reply.process(m);
                (Bytes::from(sse::encode_message(&out)), done)
            }
            Ok(None) => (Bytes::from(sse::encode_message(&reply.closed_error())), true),
            Err(_) if tokio::time::Instant::now() >= deadline => {
                (Bytes::from(sse::encode_message(&reply.timeout_error(timeout))), true)
            }
            Err(_) => (Bytes::from_static(sse::KEEPALIVE), false),
        };
        Some((Ok(bytes), (None, reply, rx, done)))
    });
    sse_response(Body::from_stream(stream), extra)
}

pub fn sse_response(body: Body, extra: HeaderMap) -> Response {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.extend(extra);
    resp
}
