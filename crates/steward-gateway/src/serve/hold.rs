//! A `tools/call` held for human approval on the HTTP gateway.
//!
//! Clients that accept `text/event-stream` get an SSE response at once: progress notifications
//! while the call waits (when the request carried a progress token), then the upstream's real
//! replies once approved, or an error result naming the approval when it is denied, expires or
//! times out. Clients that take JSON only wait for one JSON answer. A client that goes away
//! leaves the approval pending (approved later, it is a grant for one identical retry).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;
use steward_mcp::jsonrpc::{ErrorCode, error_response};
use steward_mcp::tools::refusal_result;
use steward_mcp::{Era, IdKey, sse};
use tokio::sync::mpsc;

use super::limits::Permit;
use super::reply::{self, Expect, ReplyCtx};
use super::state::AppState;
use crate::approval::Progress;
use crate::pipeline::{CallContext, Verdict};
use crate::upstream::{Conn, Forward};

/// SSE comments keep the stream alive through proxies while nothing else is said.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(15);

/// A call whose verdict [`Verdict::must_hold`]: what is needed to finish it once decided.
pub struct Held {
    pub verdict: Verdict,
    pub tool: String,
    pub era: Era,
    pub permit: Permit,
    /// `params._meta.progressToken` of the request, if any.
    pub progress_token: Option<Value>,
}

impl Held {
    /// Waits for the decision in this request (JSON-only clients, the legacy SSE transport):
    /// `Ok` to forward the call as usual, `Err` with the refusal to answer instead.
    pub async fn wait(
        self,
        st: &AppState,
        ctx: &CallContext,
        id: &str,
        progress: Option<Progress>,
    ) -> Result<Expect, Vec<u8>> {
        let verdict = st.pipeline.hold(ctx, &self.tool, self.verdict, progress).await;
        if verdict.forward {
            Ok(Expect::ToolCall {
                decision_id: verdict.decision_id,
                tool: self.tool,
                _permit: self.permit,
            })
        } else {
            Err(refusal_result(id, &verdict.message, &verdict.decision_id, self.era))
        }
    }

    /// Answers with an SSE stream at once; holds, then forwards `body` to `conn` when approved.
    #[allow(clippy::too_many_arguments)]
    pub fn sse(
        self,
        st: Arc<AppState>,
        ctx: CallContext,
        id: IdKey,
        conn: Conn,
        body: Bytes,
        forward: Forward,
        timeout: Duration,
        extra: HeaderMap,
    ) -> Response {
        let (tx, rx) = mpsc::channel::<Vec<u8>>(32);
        tokio::spawn(run(self, st, ctx, id, conn, body, forward, timeout, tx));
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            match tokio::time::timeout(KEEPALIVE_EVERY, rx.recv()).await {
                Ok(Some(m)) => Some((Ok::<Bytes, Infallible>(Bytes::from(sse::encode_message(&m))), rx)),
                Ok(None) => None,
                Err(_) => Some((Ok(Bytes::from_static(sse::KEEPALIVE)), rx)),
            }
        });
        reply::sse_response(Body::from_stream(stream), extra)
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    held: Held,
    st: Arc<AppState>,
    ctx: CallContext,
    id: IdKey,
    conn: Conn,
    body: Bytes,
    forward: Forward,
    timeout: Duration,
    tx: mpsc::Sender<Vec<u8>>,
) {
    let progress = held.progress_token.clone().map(|t| {
        let tx = tx.clone();
        Progress::new(t, move |line| tx.try_send(line).is_ok())
    });
    let verdict = tokio::select! {
        v = st.pipeline.hold(&ctx, &held.tool, held.verdict, progress) => v,
        // The client went away: stop waiting; the approval stays pending.
        _ = tx.closed() => return,
    };
    if !verdict.forward {
        let _ = tx
            .send(refusal_result(
                id.as_json(),
                &verdict.message,
                &verdict.decision_id,
                held.era,
            ))
            .await;
        return;
    }
    let started = Instant::now();
    let mut replies = match conn.request(&body, &forward).await {
        Ok(r) => r,
        Err(e) => {
            st.pipeline
                .outcome(&ctx, &verdict.decision_id, &held.tool, "upstream_unavailable", started);
            let _ = tx
                .send(error_response(
                    Some(id.as_json()),
                    ErrorCode::UpstreamUnavailable,
                    &e.to_string(),
                    None,
                ))
                .await;
            return;
        }
    };
    let server = ctx.server.clone();
    let mut reply = ReplyCtx {
        st,
        ctx,
        id,
        expect: Expect::ToolCall {
            decision_id: verdict.decision_id,
            tool: held.tool,
            _permit: held.permit,
        },
        started,
    };
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let message = match tokio::time::timeout_at(deadline, replies.recv()).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                let text = format!("upstream server '{server}' closed the connection before answering");
                let _ = tx
                    .send(error_response(
                        Some(reply.id.as_json()),
                        ErrorCode::UpstreamUnavailable,
                        &text,
                        None,
                    ))
                    .await;
                return;
            }
            Err(_) => {
                let text = format!(
                    "upstream server '{server}' did not answer within {}s",
                    timeout.as_secs()
                );
                let _ = tx
                    .send(error_response(
                        Some(reply.id.as_json()),
                        ErrorCode::UpstreamUnavailable,
                        &text,
                        None,
                    ))
                    .await;
                return;
            }
        };
        let (out, done) = reply.process(message);
        if tx.send(out).await.is_err() || done {
            return;
        }
    }
}
