//! The client loop: client stdin → policy → upstream stdin.

use std::sync::Arc;

use steward_mcp::jsonrpc::{error_response, ErrorCode};
use steward_mcp::tools::{CallParams, refusal_result};
use steward_mcp::{Era, Kind, Line, LineReader, LineWriter, Message};
use tokio::io::AsyncBufRead;

use super::pending::Waiting;
use super::Session;

/// Methods that must never reach the upstream without a decision.
const GOVERNED: [&str; 4] = ["tools/call", "tools/list", "resources/read", "prompts/get"];

pub(crate) async fn run<R: AsyncBufRead + Unpin>(session: Arc<Session>, mut input: LineReader<R>, upstream: LineWriter) {
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
                session.pipeline.refused_message(&session.ctx(), None, &format!("message of {bytes} bytes exceeds the limit"));
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

async fn handle(session: &Session, bytes: &[u8], upstream: &LineWriter) {
    let msg = match Message::parse(bytes) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "malformed message from the client; refused");
            session.client_out.send(error_response(None, e.code(), &e.to_string(), None));
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
                session.pipeline.refused_message(&session.ctx(), Some(method), "governed method sent without an id; dropped");
                return;
            }
            upstream.send(bytes.to_vec());
        }
        Kind::Response => {
            upstream.send(bytes.to_vec());
        }
    }
}

async fn request(session: &Session, msg: &Message<'_>, bytes: &[u8], upstream: &LineWriter) {
    let Some(id) = msg.id_key() else { return };
    let method = msg.method().unwrap_or_default();
    match method {
        "tools/call" => {
            let params = match CallParams::parse(msg.params) {
                Ok(p) => p,
                Err(e) => {
                    session.client_out.send(error_response(Some(id.as_json()), ErrorCode::InvalidParams, &e, None));
                    return;
                }
            };
            let args = params.args();
            let annotations = session.annotations.lock().unwrap_or_else(|e| e.into_inner()).get(&params.name).cloned();
            let ctx = session.ctx();
            let verdict = session.pipeline.tool_call(&ctx, &params.name, &args, annotations.as_ref()).await;
            if verdict.forward {
                session.pending.insert(id, Waiting::ToolCall { decision_id: verdict.decision_id, tool: params.name });
                upstream.send(bytes.to_vec());
            } else {
                let era = Era::of_params(msg.params).unwrap_or(Era::Legacy);
                tracing::info!(tool = %params.name, effect = %verdict.decision.effect, decision = %verdict.decision_id, "call refused");
                session.client_out.send(refusal_result(id.as_json(), &verdict.message, &verdict.decision_id, era));
            }
        }
        "tools/list" => {
            note_client(session, msg);
            session.pending.insert(id, Waiting::ToolsList);
            upstream.send(bytes.to_vec());
        }
        "initialize" => {
            note_client(session, msg);
            session.pending.insert(id, Waiting::Other);
            upstream.send(bytes.to_vec());
        }
        _ => {
            session.pending.insert(id, Waiting::Other);
            upstream.send(bytes.to_vec());
        }
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
