//! The client loop: client stdin → policy → upstream stdin.

use std::sync::Arc;

use steward_mcp::jsonrpc::{ErrorCode, error_response};
use steward_mcp::tools::{CallParams, refusal_result};
use steward_mcp::{Era, Kind, Line, LineReader, LineWriter, Message};
use tokio::io::AsyncBufRead;

use super::Session;
use super::pending::Waiting;
use crate::approval::Progress;
use crate::pipeline::{CallContext, Verdict};
use steward_mcp::IdKey;

/// Methods that must never reach the upstream without a decision.
const GOVERNED: [&str; 4] = ["tools/call", "tools/list", "resources/read", "prompts/get"];

pub(crate) async fn run<R: AsyncBufRead + Unpin>(
    session: Arc<Session>,
    mut input: LineReader<R>,
    upstream: LineWriter,
) {
    let _held = AbortHeld(session.clone());
    loop {
        let line = match input.next().await {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "cannot read from the client; shutting down");
                return;
            }
        };
        let bytes = match line {
            Line::Message(bytes) => bytes,
            Line::TooLong { bytes } => {
                tracing::warn!(bytes, "client message exceeds the size limit; refused");
                session.pipeline.refused_message(
                    &session.ctx(),
                    None,
                    &format!("message of {bytes} bytes exceeds the limit"),
                );
                session.client_out.send(error_response(
                    None,
                    ErrorCode::InvalidRequest,
                    &format!("message of {bytes} bytes exceeds Steward's limit; it was not forwarded"),
                    None,
                ));
                continue;
            }
        };
        handle(&session, &bytes, &upstream).await;
    }
}

/// Held calls end with the client: their approvals stay pending (and become grants if approved).
struct AbortHeld(Arc<Session>);

impl Drop for AbortHeld {
    fn drop(&mut self) {
        for (_, task) in self.0.held.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            task.abort();
        }
    }
}

async fn handle(session: &Arc<Session>, bytes: &[u8], upstream: &LineWriter) {
    let msg = match Message::parse(bytes) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "malformed message from the client; refused");
            session
                .client_out
                .send(error_response(None, e.code(), &e.to_string(), None));
            return;
        }
    };
    match msg.kind {
        Kind::Request => request(session, &msg, bytes, upstream).await,
        Kind::Notification => {
            let method = msg.method().unwrap_or_default();
            if GOVERNED.contains(&method) {
                // A governed method without an id cannot be answered, so it cannot be governed.
                tracing::warn!(method, "governed method sent as a notification (no id); dropped");
                session.pipeline.refused_message(
                    &session.ctx(),
                    Some(method),
                    "governed method sent without an id; dropped",
                );
                return;
            }
            if method == "notifications/cancelled" && cancel_held(session, &msg) {
                // The upstream never saw the held request: nothing to tell it.
                return;
            }
            upstream.send(bytes.to_vec());
        }
        Kind::Response => {
            if session.asks.answer(&msg, bytes) {
                return;
            }
            upstream.send(bytes.to_vec());
        }
    }
}

async fn request(session: &Arc<Session>, msg: &Message<'_>, bytes: &[u8], upstream: &LineWriter) {
    let Some(id) = msg.id_key() else { return };
    let method = msg.method().unwrap_or_default();
    match method {
        "tools/call" => {
            let params = match CallParams::parse(msg.params) {
                Ok(p) => p,
                Err(e) => {
                    session
                        .client_out
                        .send(error_response(Some(id.as_json()), ErrorCode::InvalidParams, &e, None));
                    return;
                }
            };
            let args = params.args();
            let annotations = session.pipeline.annotations(&session.ctx().server, &params.name);
            let ctx = session.ctx();
            let verdict = session
                .pipeline
                .tool_call_with(
                    &ctx,
                    &params.name,
                    &args,
                    annotations.as_ref(),
                    session.asks.can_elicit(),
                )
                .await;
            let era = Era::of_params(msg.params).unwrap_or(Era::Legacy);
            if verdict.must_ask() {
                ask(
                    session,
                    ctx,
                    verdict,
                    params.name,
                    args,
                    id,
                    bytes.to_vec(),
                    era,
                    upstream.clone(),
                );
                return;
            }
            if verdict.must_hold() {
                hold(
                    session,
                    ctx,
                    verdict,
                    params.name,
                    id,
                    bytes.to_vec(),
                    era,
                    Progress::token(msg.params),
                    upstream.clone(),
                );
                return;
            }
            enforce(session, verdict, params.name, id, bytes.to_vec(), era, upstream);
        }
        "tools/list" => {
            note_client(session, msg);
            session.pending.insert(id, Waiting::ToolsList);
            upstream.send(bytes.to_vec());
        }
        "initialize" => {
            note_client(session, msg);
            session.asks.note_capabilities(msg.params);
            session.pending.insert(id, Waiting::Other);
            upstream.send(bytes.to_vec());
        }
        _ => {
            session.pending.insert(id, Waiting::Other);
            upstream.send(bytes.to_vec());
        }
    }
}

/// Forwards an allowed (or approved) call, or answers a refused one.
fn enforce(
    session: &Session,
    verdict: Verdict,
    tool: String,
    id: IdKey,
    bytes: Vec<u8>,
    era: Era,
    upstream: &LineWriter,
) {
    if verdict.forward {
        session.pending.insert(
            id,
            Waiting::ToolCall {
                decision_id: verdict.decision_id,
                tool,
            },
        );
        upstream.send(bytes);
    } else {
        tracing::info!(%tool, effect = %verdict.decision.effect, decision = %verdict.decision_id, "call refused");
        session.client_out.send(refusal_result(
            id.as_json(),
            &verdict.message,
            &verdict.decision_id,
            era,
        ));
    }
}

/// Waits for a human's decision in a task of its own, so the client loop keeps reading (the
/// answer to this request comes whenever it is ready).
#[allow(clippy::too_many_arguments)]
fn hold(
    session: &Arc<Session>,
    ctx: CallContext,
    verdict: Verdict,
    tool: String,
    id: IdKey,
    bytes: Vec<u8>,
    era: Era,
    token: Option<serde_json::Value>,
    upstream: LineWriter,
) {
    let approval = verdict.approval.as_ref().map(|t| t.id.clone()).unwrap_or_default();
    tracing::info!(%tool, %approval, decision = %verdict.decision_id, "call held for approval");
    let progress = token.map(|t| {
        let out = session.client_out.clone();
        Progress::new(t, move |line| out.send(line))
    });
    let task_session = session.clone();
    let key = id.clone();
    let mut held = session.held.lock().unwrap_or_else(|e| e.into_inner());
    let task = tokio::spawn(async move {
        let session = task_session;
        let verdict = session.pipeline.hold(&ctx, &tool, verdict, progress).await;
        session.held.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        enforce(&session, verdict, tool, key, bytes, era, &upstream);
    });
    // Inserted under the lock the task needs to remove itself: it cannot finish first.
    held.insert(id, task.abort_handle());
}

/// Asks the user to confirm an `ask` call through the client's elicitation, in a task of its own.
#[allow(clippy::too_many_arguments)]
fn ask(
    session: &Arc<Session>,
    ctx: CallContext,
    verdict: Verdict,
    tool: String,
    args: serde_json::Value,
    id: IdKey,
    bytes: Vec<u8>,
    era: Era,
    upstream: LineWriter,
) {
    tracing::info!(%tool, decision = %verdict.decision_id, "asking the user to confirm the call");
    let timeout = session.pipeline.policy().approval_settings().hold_timeout;
    let task_session = session.clone();
    let key = id.clone();
    let mut held = session.held.lock().unwrap_or_else(|e| e.into_inner());
    let task = tokio::spawn(async move {
        let session = task_session;
        let target = format!("{}/{tool}", ctx.server);
        let answer = session
            .asks
            .ask(&session.client_out, &target, &args, &verdict.decision, timeout)
            .await;
        let verdict = session.pipeline.confirm(&ctx, &tool, verdict, answer).await;
        session.held.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        enforce(&session, verdict, tool, key, bytes, era, &upstream);
    });
    held.insert(id, task.abort_handle());
}

/// Stops holding a request the client cancelled; true when it was held here.
fn cancel_held(session: &Session, msg: &Message<'_>) -> bool {
    let Some(request_id) = msg
        .params
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p.get()).ok())
        .and_then(|p| p.get("requestId").cloned())
    else {
        return false;
    };
    let Ok(raw) = serde_json::value::to_raw_value(&request_id) else {
        return false;
    };
    let key = IdKey::from_raw(&raw);
    match session.held.lock().unwrap_or_else(|e| e.into_inner()).remove(&key) {
        Some(task) => {
            tracing::info!(request = %key.as_json(), "client cancelled a held call; its approval stays pending");
            task.abort();
            true
        }
        None => false,
    }
}

/// Remembers the client's name and version for audit events.
fn note_client(session: &Session, msg: &Message<'_>) {
    if let Some((name, version)) = steward_mcp::era::client_info(msg.params) {
        let mut ctx = session.ctx.lock().unwrap_or_else(|e| e.into_inner());
        ctx.client_name = Some(name);
        ctx.client_version = version;
    }
}
